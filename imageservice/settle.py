"""Undoing a failed saga, and finishing in the background what the request itself could not.

Owns three things:
* `compensate`: delete the saga's blobs, release its key (each action retried inline, see
  compensation.py). A release that still fails is not given up: it goes on in the background.
* `release_later`: retry a key release with capped exponential backoff (Policy.settle) until it
  lands. A key is never left held by a request that is over just because the store blinked.
* `settle_later`: a commit whose outcome could not be read back. The blobs and the key are kept
  (deleting them could break a generation that did land); the generation is read again, with the
  same backoff, until the answer is known: landed → nothing to do (the key completed with it);
  not landed → compensate.

Every background job is counted (`imageservice_key_releases_total`, `imageservice_uncertain_commits_total`,
`imageservice_unsettled_keys`, `imageservice_abandoned_keys_total`) and logged. What runs out of
attempts, or is still running at shutdown after `Policy.shutdown_settle_s`, is logged at ERROR and
left for the key's in-progress expiry and `imageservice reconcile`. Does not decide *whether* a
commit landed on the request's path; the saga (persist.py) does that.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Awaitable, Callable

import structlog

from imageservice.compensation import Compensator
from imageservice.domain.idempotency import Claim
from imageservice.domain.ports import BlobStore, ImageRepository
from imageservice.metrics import ServiceMetrics
from imageservice.policy import Policy

__all__ = ["Settler"]

_log = structlog.get_logger("imageservice.saga")


def key_ref(claim: Claim) -> dict[str, object]:
    """What logs say about a key: a digest, never the client's key itself, and the reserved generation."""
    digest = hashlib.sha256(claim.record.key.encode()).hexdigest()[:16]
    return {"key_sha256": digest, "generation_id": claim.record.generation_id}


class Settler:
    def __init__(
        self, *, blobs: BlobStore, repository: ImageRepository, metrics: ServiceMetrics, policy: Policy
    ) -> None:
        self._blobs = blobs
        self._repository = repository
        self._metrics = metrics
        self._policy = policy
        self._undo = Compensator(
            metrics, attempts=policy.compensation_attempts, backoff_s=policy.compensation_backoff_s
        )
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._jobs)

    # ------------------------------------------------------------ undo, on the request's path

    async def compensate(self, blob_names: list[str], claim: Claim | None, *, cause: BaseException) -> None:
        _log.info(
            "saga_compensating", cause=type(cause).__name__, blobs=len(blob_names), key_held=claim is not None
        )
        await self._delete_blobs(blob_names)
        if claim is None:
            return
        release = functools.partial(self._repository.release, claim)
        if await self._undo.run("release_key", release, subject="key", deferred=True):
            self._metrics.key_releases.labels(result="ok").inc()
            return
        self.release_later(claim)

    async def _delete_blobs(self, names: list[str]) -> None:
        for name in reversed(names):
            await self._undo.run("delete_blob", functools.partial(self._blobs.delete, name), subject=name)

    # ------------------------------------------------------------ in the background

    def release_later(self, claim: Claim) -> None:
        """Release the key in the background; a no-op in the store if it is not (or no longer) ours."""
        self._metrics.key_releases.labels(result="deferred").inc()
        _log.warning("key_release_deferred", **key_ref(claim))
        self._start(self._release(claim))

    def settle_later(self, generation_id: str, blob_names: list[str], claim: Claim | None) -> None:
        _log.warning("commit_outcome_unknown", generation_id=generation_id, blobs=len(blob_names))
        self._start(self._settle(generation_id, blob_names, claim))

    def _start(self, job: Awaitable[None]) -> None:
        task = asyncio.ensure_future(self._tracked(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _tracked(self, job: Awaitable[None]) -> None:
        self._metrics.unsettled_keys.inc()
        try:
            await job
        except Exception:
            _log.exception("settling_crashed")
        finally:
            self._metrics.unsettled_keys.dec()

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[bool]], **context: object) -> bool:
        """Run `attempt` after each backoff delay until it returns True; False when attempts run out."""
        for number, delay in enumerate(self._policy.settle.delays(), start=1):
            await asyncio.sleep(delay)
            try:
                if await attempt():
                    return True
            except Exception as exc:  # a cancellation (shutdown) is not one: it goes through
                _log.warning(f"{what}_retry", attempt=number, error=type(exc).__name__, **context)
        return False

    async def _release(self, claim: Claim) -> None:
        async def attempt() -> bool:
            try:
                await self._repository.release(claim)
            except Exception:
                self._metrics.key_releases.labels(result="retried").inc()
                raise
            return True

        try:
            released = await self._retrying("key_release", attempt, **key_ref(claim))
        except asyncio.CancelledError:
            self._abandon("shutdown", "key_release_abandoned", key_ref(claim))
            raise
        if released:
            self._metrics.key_releases.labels(result="ok").inc()
            _log.info("key_released_in_background", **key_ref(claim))
            return
        self._metrics.key_releases.labels(result="gave_up").inc()
        self._abandon("release_gave_up", "key_release_gave_up", key_ref(claim))

    async def _settle(self, generation_id: str, blob_names: list[str], claim: Claim | None) -> None:
        found: list[bool] = []  # what the read that answered said

        async def attempt() -> bool:
            found.append(await self._repository.get(generation_id) is not None)
            return True  # any answer settles it

        context: dict[str, object] = {"generation_id": generation_id, "blobs": blob_names}
        keyed = claim is not None
        try:
            known = await self._retrying("commit_settle", attempt, **context)
        except asyncio.CancelledError:
            self._abandon("shutdown", "commit_settle_abandoned", context, keyed=keyed)
            raise
        if not known:
            self._abandon("commit_unresolved", "commit_unresolved", context, keyed=keyed)
            return
        landed = found[-1]
        self._metrics.uncertain_commits.labels(resolution="landed" if landed else "not_landed").inc()
        _log.info("commit_settled", landed=landed, generation_id=generation_id)
        if not landed:
            await self.compensate(blob_names, claim, cause=LookupError("the generation did not land"))

    def _abandon(self, reason: str, event: str, context: dict[str, object], *, keyed: bool = True) -> None:
        if keyed:
            self._metrics.abandoned_keys.labels(reason=reason).inc()
        _log.error(event, hint="left for its in-progress expiry or `imageservice reconcile`", **context)

    async def drain(self, timeout_s: float) -> None:
        """At shutdown: let background jobs finish for up to `timeout_s`, then cancel (and count) the rest."""
        if not self._jobs:
            return
        _, still = await asyncio.wait(set(self._jobs), timeout=timeout_s)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
