"""Issue 12, finding 1: idempotency keys must not stick after a storage fault.

On the image service as a real process, with real stores: S3 + DynamoDB (moto over HTTP, behind the
fault proxy) and files + SQLite on a data folder that fills up. Each test makes the fault happen,
checks that it did (the proxy's counters, the service's metrics), lifts it, and then retries with the
same key like a client would: every key must complete within a bounded time, never answer 409 for
the rest of its 15-minute in-progress window.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from imageservice.adapters.aws import AwsClients
from imageservice.adapters.dynamodb_repo import DynamoDbRepository
from tests.faults.conftest import (
    PATIENCE_S,
    GatedOpenAI,
    Service,
    ServiceFactory,
    assert_files_served,
    aws_env,
    base_env,
    eventually,
    settled,
)
from tests.faults.faultproxy import ANY, Call, Rule, ThreadedFaultProxy


def held_keys(moto: AwsClients) -> list[str]:
    return asyncio.run(DynamoDbRepository(moto).held_keys())


def release_failed_inline(service: Service) -> bool:
    """The request's own attempts to release its key all failed (counted the same before the fix)."""
    return service.metric("imageservice_compensations_total", step="release_key", result="failed") == 1


def test_a_claim_whose_answer_was_lost_is_ours_and_the_very_first_request_succeeds(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    # The claim's PutItem lands, its answer is lost, botocore sends it again and meets our own claim.
    faults.add_rule(Rule(Call.dynamodb("PutItem"), "drop_response"))

    first = service.post("key-lost-answer")

    assert faults.faults["drop_response PutItem"] == 1
    assert faults.calls.count("PutItem") == 2  # the retried put did happen
    assert_files_served(service, first)
    replay = service.post("key-lost-answer")
    assert replay.status == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.body == first.body


def test_after_a_storage_outage_every_retry_with_the_same_key_completes(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    # S3 and DynamoDB become unreachable right after the first key is claimed: its images cannot be
    # stored, and releasing the key fails too, however often the request itself tries.
    faults.add_rule(Rule(ANY, "refuse", times=None, armed_by=Call.dynamodb("PutItem")))

    during = [service.post("key-outage-1"), service.post("key-outage-2")]

    assert [(reply.status, reply.code) for reply in during] == [(503, "storage_unavailable")] * 2
    assert faults.faults["refuse DeleteItem"] >= 1  # releasing the key really failed during the outage
    assert release_failed_inline(service)
    faults.passthrough()  # the outage is over

    for key in ("key-outage-1", "key-outage-2"):
        assert_files_served(service, settled(service, key))
    # Both keys were released in the background: the first one's release failed, and the second one's
    # claim failed in a way that cannot tell whether it landed (here it had not: a no-op).
    assert service.metric("imageservice_key_releases_total", result="deferred") == 2
    assert service.metric("imageservice_key_releases_total", result="ok") == 2
    assert service.metric("imageservice_unsettled_keys") == 0
    assert held_keys(moto) == []


def test_a_claim_that_landed_but_whose_answer_and_retries_were_lost_does_not_hold_the_key(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    faults.add_rule(Rule(Call.dynamodb("PutItem"), "drop_response"))  # it lands, the answer is lost,
    faults.add_rule(Rule(ANY, "refuse", times=None, armed_by=Call.dynamodb("PutItem")))  # then an outage

    during = service.post("key-lost-claim")

    assert (during.status, during.code) == (503, "storage_unavailable")
    assert faults.faults["drop_response PutItem"] == 1
    assert held_keys(moto) == ["key-lost-claim"]  # held by a request that has already answered
    faults.passthrough()

    assert_files_served(service, settled(service, "key-lost-claim"))
    assert service.metric("imageservice_key_releases_total", result="ok") == 1


# ------------------------------------------------------------------ local storage: the disk fills up


@dataclass
class FullDisk:
    """A data folder whose writes can be made to fail for real: `fill` and `clear` the fault."""

    kind: str
    data_dir: Path

    def fill(self, pid: int) -> None:
        if self.kind == "tmpfs":  # take every free byte of the small tmpfs
            fd = os.open(self.data_dir / "ballast", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                assert _write_until_refused(fd) == errno.ENOSPC
            finally:
                os.close(fd)
        else:  # no privileges needed: the service may not grow any file any more (EFBIG)
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))

    def clear(self, pid: int) -> None:
        if self.kind == "tmpfs":
            (self.data_dir / "ballast").unlink()
        else:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, resource.getrlimit(resource.RLIMIT_FSIZE))


def _write_until_refused(fd: int) -> int:
    while True:
        try:
            os.write(fd, b"\0" * 65536)
        except OSError as exc:
            return exc.errno or 0


@pytest.fixture(params=["tmpfs", "rlimit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FullDisk]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "rlimit":
        yield FullDisk("rlimit", data_dir)
        return
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(data_dir)], capture_output=True, check=False
    )
    if mount.returncode != 0:
        pytest.skip(
            f"mounting a tmpfs needs root here ({mount.stderr.decode().strip()}); 'rlimit' runs anyway"
        )
    try:
        yield FullDisk("tmpfs", data_dir)
    finally:
        if subprocess.run(["umount", str(data_dir)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(data_dir)], capture_output=True, check=False)


def test_after_the_disk_filled_up_every_retry_with_the_same_key_completes(
    disk: FullDisk, gated_openai: GatedOpenAI, serve: ServiceFactory
) -> None:
    service = serve(base_env(disk.data_dir, **gated_openai.env()))
    pid = _pid(service)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(service.post, "key-disk")
        assert gated_openai.started.wait(PATIENCE_S)  # the key is claimed, the picture is being painted
        disk.fill(pid)
        gated_openai.gate.set()
        during = pending.result(timeout=PATIENCE_S)

    assert (during.status, during.code) == (503, "storage_unavailable")
    # SQLite could not write the release either ("database or disk is full" / "disk I/O error").
    assert release_failed_inline(service)
    disk.clear(pid)

    assert_files_served(service, settled(service, "key-disk"))
    assert service.metric("imageservice_key_releases_total", result="deferred") == 1
    eventually(lambda: service.metric("imageservice_unsettled_keys") == 0, "the release settled")
    assert service.metric("imageservice_key_releases_total", result="ok") == 1
    assert not list((disk.data_dir / "images").glob(".*.tmp"))  # no half-written file left behind


def _pid(service: Service) -> int:
    assert service.process is not None
    return service.process.pid
