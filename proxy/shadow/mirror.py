"""Shadow mode (parallel run): mirror a primary-served request to the candidate, compare, count, keep.

Owns: Shadower, one per app: the shadow ClientSession, the in-flight bounds, the per-minute budgets, the
signed marker, the shadow breakers, the noise memory, the mismatch store and the running shadow tasks;
begin() decides whether a request is mirrored at all; keep_mismatch() keeps a mismatch with its whole
bodies (counted) and user_key() says, hashed, whom it was for. Owns no decision about what to mirror (the
route's compiled ShadowPolicy: policy.py) or what differs (compare.py); one mirrored request is a
ShadowCall (call.py), its HTTP exchanges are in exchange.py.

The client never waits for the candidate. forwarding.forward() tees what it streams into the call
(request chunks, then the primary's answer) without awaiting anything here; the buffers stop at
`max_body_bytes` (the shadow is then skipped and counted). The candidate is called in its own task,
with its own timeout, only once the client has the primary's whole answer (the handler calls
ShadowCall.start after writing it): mirroring never competes with the request it mirrors. The
comparison runs in that task. Every request a shadowed route serves from its primary ends with
exactly one `strangler_shadow_requests_total` outcome.

A dead candidate must not cost the proxy work on every request either: the Shadower keeps its own
circuit breaker per candidate (resilience/breaker.py, default policy). After consecutive connection
failures the copies are not even started (outcome `error`, counted) until a probe after the back-off
gets through.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping

from multidict import CIMultiDict

from proxy.metrics import ProxyMetrics
from proxy.resilience.breaker import BreakerPolicy, Breakers, CircuitBreaker
from proxy.resilience.memory import Budget
from proxy.routing import CompiledRoute, RouteTable, UpstreamSpec
from proxy.shadow.budget import TokenBucket
from proxy.shadow.call import Outcome, ShadowCall
from proxy.shadow.compare import Answer
from proxy.shadow.mismatches import Mismatch, MismatchStore
from proxy.shadow.noise import NoiseMemory
from proxy.shadow.policy import ShadowPolicy, compile_shadow
from proxy.shadow.samples import Bodies
from proxy.shadow.userkey import user_key
from proxy.upstream import Pool
from strangler_common.shadowmark import SHADOW_HEADER, sign

__all__ = ["Shadower"]

_SHADOW_BREAKER = BreakerPolicy()  # 5 connection failures, then 5 s doubling up to 60 s


class Shadower:
    def __init__(
        self, metrics: ProxyMetrics, *, store: MismatchStore | None = None, key: bytes | None = None,
        memory: Budget | None = None,
    ) -> None:  # fmt: skip
        self.metrics = metrics
        # Every buffered byte of a copy (request, both answers) is taken from the process's memory
        # budget first; a copy that does not fit is skipped (skipped_memory), never grown past it.
        self.memory = memory if memory is not None else Budget(64 * 1024 * 1024)
        self.store = store or MismatchStore()
        self.noise = NoiseMemory()
        self.key = key  # signs the marker; None: copies go unmarked and the candidate stores them
        self.in_flight: dict[str, int] = {}
        self._budgets: dict[str, tuple[int, TokenBucket]] = {}  # route -> (max_per_minute, its bucket)
        # route -> its compiled shadow policy, for the table being served (follow() keeps it in step)
        self.policies: dict[str, ShadowPolicy] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._pools: dict[tuple[str, str | None], Pool] = {}  # (url, ca_bundle) -> the shadow path's pool
        self._breakers = Breakers(clock=time.monotonic)  # the shadow path's own, not the live traffic's
        self._user_hash_key = key or secrets.token_bytes(32)  # hashes the user key of a kept mismatch
        self._table: RouteTable | None = None  # the table being served (its trusted proxies)

    def breaker(self, upstream: UpstreamSpec) -> CircuitBreaker:
        return self._breakers.for_upstream(upstream.name, upstream.url, _SHADOW_BREAKER)

    def pool(self, upstream: UpstreamSpec) -> Pool:
        """The shadow path's own keep-alive pool to `upstream` (the same protocol-level client as the live
        path): shadow traffic never takes connections from the candidate's real traffic. Opened on the
        first copy (an app that never shadows opens none); a reload that re-points an upstream opens a
        new one and the old one is closed with the Shadower."""
        key = (upstream.url, upstream.ca_bundle)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = Pool(upstream.url, ca_bundle=upstream.ca_bundle)
        return pool

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))

    def begin(
        self,
        route: CompiledRoute,
        *,
        method: str,
        sample_key: str,
        request_id: str,
        path: str,
        query: str,
        headers: CIMultiDict[str],
        content_length: int | None,
        candidate: UpstreamSpec,
        primary: UpstreamSpec,
    ) -> ShadowCall | None:
        """A ShadowCall to tee the exchange into, or None (the skip is already counted)."""
        policy = self.policies.get(route.name)
        if policy is None:
            return None
        skip: Outcome | None = policy.skip_reason(method, sample_key)
        if skip is None and content_length is not None and content_length > policy.max_body_bytes:
            skip = "skipped_body"
        if skip is None and self.in_flight.get(route.name, 0) >= policy.max_in_flight:
            skip = "dropped_full"
        if skip is None and self.breaker(candidate).refusing():
            skip = "error"  # the candidate is known to be unreachable: do not even buffer a copy
        if skip is None and policy.max_per_minute is not None and not self._spend(route.name, policy):
            skip = "skipped_budget"  # last: a token is spent only on a copy that is really sent
        if skip is not None:
            self.metrics.shadow_outcome(route.name, skip)
            return None
        self.in_flight[route.name] = self.in_flight.get(route.name, 0) + 1
        return ShadowCall(self, route.name, policy, method=method, request_id=request_id, path=path,
                          query=query, headers=headers, candidate=candidate, primary=primary)  # fmt: skip

    def _spend(self, route: str, policy: ShadowPolicy) -> bool:
        limit = policy.max_per_minute
        assert limit is not None
        now = time.monotonic()
        known = self._budgets.get(route)
        if known is None or known[0] != limit:  # a reload that changes the budget starts a full bucket
            known = self._budgets[route] = (limit, TokenBucket(limit, now=now))
        return known[1].take(now)

    def marked(self, headers: CIMultiDict[str]) -> CIMultiDict[str]:
        """The copy's headers: the client's (internal headers already stripped) plus, with a key, the
        signed marker for this moment. Without a key the copy goes as a normal request."""
        out = CIMultiDict(headers)
        if self.key is not None:
            out[SHADOW_HEADER] = sign(self.key, out.get("X-Request-ID", ""), now=time.time())
        return out

    def release(self, route: str) -> None:
        left = self.in_flight.get(route, 0) - 1
        if left > 0:
            self.in_flight[route] = left
        else:
            self.in_flight.pop(route, None)

    def keep_mismatch(
        self, mismatch: Mismatch, policy: ShadowPolicy, primary: Answer, candidate: Answer
    ) -> None:
        """Keep a mismatch, with both whole bodies when they are JSON or images and fit the route's budget
        (counted in strangler_shadow_bodies_total)."""
        bodies = Bodies.of(primary, candidate)
        recorded = self.store.record(mismatch, keep=policy.keep_mismatches, bodies=bodies,
                                     budget=policy.keep_bodies_bytes)  # fmt: skip
        self.metrics.shadow_bodies(mismatch.route, recorded.bodies.result, dropped=recorded.bodies.dropped)

    def user_key(self, policy: ShadowPolicy, headers: Mapping[str, str], query: str) -> str | None:
        """Who a mismatch was for: the route's sticky key in the copy, hashed (userkey.py)."""
        trusted = self._table.trusted_proxies if self._table is not None else ()
        return user_key(policy.sticky_key, headers, query, key=self._user_hash_key, trusted=trusted)

    def follow(self, table: RouteTable) -> list[str]:
        """After a (re)load: noise learned under a changed comparison goes, budgets of gone routes go.
        Returns the routes whose noise was dropped."""
        self._table = table
        shadowed = table.shadowed.items()
        compiled = {name: compile_shadow(route.shadow, salt=route.salt, sticky_key=route.sticky_key)
                    for name, route in shadowed}  # fmt: skip
        self.policies = {name: policy for name, policy in compiled.items() if policy is not None}
        for name in [name for name in self._budgets if name not in self.policies]:
            del self._budgets[name]
        return self.noise.follow({name: policy.noise_fingerprint for name, policy in self.policies.items()})
