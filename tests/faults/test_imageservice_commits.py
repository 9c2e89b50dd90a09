"""Issue 12, finding 2: when a commit's outcome is unknown, keep the images; never answer 201 with
file URLs that 404.

The commit is one DynamoDB TransactWriteItems (the generation and the completed key). Here its
acknowledgement is lost (the proxy lets moto apply it and cuts the answer), or it never arrives
(frozen), while the read that could tell fails too. On the image service as a real process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from imageservice.adapters.aws import AwsClients
from tests.faults.conftest import (
    BOTO_ATTEMPTS,
    BUCKET,
    SERVICE_ROOT,
    Service,
    ServiceFactory,
    assert_files_served,
    aws_env,
    eventually,
    settled,
)
from tests.faults.faultproxy import Call, Rule, ThreadedFaultProxy

COMMIT, READ = Call.dynamodb("TransactWriteItems"), Call.dynamodb("GetItem")


def stored_blobs(moto: AwsClients) -> list[str]:
    listing = moto.s3.list_objects_v2(Bucket=BUCKET, Prefix="images/")
    return sorted(item["Key"].removeprefix("images/") for item in listing.get("Contents", []))


def blobs_of(reply_body: Any) -> list[str]:
    return sorted(image["name"] for image in reply_body["images"])


def test_a_commit_whose_answer_was_lost_is_read_again_and_answered_201_with_its_files(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    faults.add_rule(Rule(COMMIT, "drop_response"))  # it lands; botocore's retry meets it and is refused
    # And the next reads fail: two whole read-backs here, every attempt of each (before the fix, with
    # botocore's default of 4 attempts, that was the one read the saga made before deleting the images).
    faults.add_rule(Rule(READ, "refuse", times=2 * BOTO_ATTEMPTS))

    first = service.post("key-lost-commit")

    assert faults.faults["drop_response TransactWriteItems"] == 1
    assert faults.faults["refuse GetItem"] == 2 * BOTO_ATTEMPTS
    assert_files_served(service, first)
    replay = service.post("key-lost-commit")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert_files_served(service, replay)
    assert stored_blobs(moto) == blobs_of(first.body)


def test_when_no_read_can_tell_the_images_stay_and_the_retry_replays_them_once_the_store_is_back(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    faults.add_rule(Rule(COMMIT, "drop_response"))
    faults.add_rule(Rule(READ, "refuse", times=None))  # nothing can be read until the fault is lifted

    during = service.post("key-unknown-commit")

    assert (during.status, during.code) == (503, "storage_unavailable")
    assert faults.faults["drop_response TransactWriteItems"] == 1
    faults.passthrough()

    replay = settled(service, "key-unknown-commit")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert_files_served(service, replay)  # before the fix: 201, and every file URL a 404
    eventually(lambda: service.metric("imageservice_unsettled_keys") == 0, "the commit settled")
    assert service.metric("imageservice_uncertain_commits_total", resolution="unknown") == 1
    assert service.metric("imageservice_uncertain_commits_total", resolution="landed") == 1
    assert stored_blobs(moto) == blobs_of(replay.body)


def test_a_commit_that_never_arrived_is_settled_as_not_landed_and_the_retry_generates_again(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    faults.add_rule(Rule(COMMIT, "freeze", times=None))  # held by the proxy, never applied
    faults.add_rule(Rule(READ, "refuse", times=None))

    during = service.post("key-frozen-commit")

    assert (during.status, during.code) == (503, "storage_unavailable")
    assert faults.faults["freeze TransactWriteItems"] == BOTO_ATTEMPTS
    assert len(stored_blobs(moto)) == 2  # kept while nobody can tell
    assert service.post("key-frozen-commit").status == 409  # the key waits for the answer
    faults.passthrough()

    retried = settled(service, "key-frozen-commit")
    assert "Idempotent-Replayed" not in retried.headers
    assert_files_served(service, retried)
    eventually(lambda: service.metric("imageservice_unsettled_keys") == 0, "the commit settled")
    assert service.metric("imageservice_uncertain_commits_total", resolution="not_landed") == 1
    assert stored_blobs(moto) == blobs_of(retried.body)  # the first attempt's images were removed


def reconcile(env: dict[str, str], *flags: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "imageservice", "reconcile", "--min-age-s", "0", *flags],
        env=env,
        cwd=SERVICE_ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_reconcile_frees_the_key_of_a_service_that_died_while_its_commit_was_unknown(
    tmp_path: Path, moto: AwsClients, faults: ThreadedFaultProxy, serve: ServiceFactory
) -> None:
    service = serve(aws_env(tmp_path, faults))
    faults.add_rule(Rule(COMMIT, "refuse", times=None))  # cut on the way: nobody can tell it never arrived
    faults.add_rule(Rule(READ, "refuse", times=None))
    assert service.post("key-crash").status == 503
    service.kill()  # before anything could be settled: blobs without a record, a key held by nobody
    faults.passthrough()
    orphans = stored_blobs(moto)
    assert len(orphans) == 2
    again: Service = serve(aws_env(tmp_path, faults))
    assert again.post("key-crash").status == 409  # for the rest of the dead holder's 15 minutes...

    env = {
        **aws_env(tmp_path, faults),
        "AWS_ENDPOINT_URL": moto_url_of(moto),
    }  # reconcile: straight to the store
    dry = reconcile(env, "--stale-claim-s", "0", "--dry-run")
    assert (dry["orphans"], dry["abandoned_claims"], dry["freed_keys"]) == (orphans, ["key-crash"], [])
    assert stored_blobs(moto) == orphans
    done = reconcile(env, "--stale-claim-s", "0")
    assert (done["removed"], done["freed_keys"], done["failed"]) == (orphans, ["key-crash"], [])

    assert_files_served(again, again.post("key-crash"))  # ...unless reconcile frees it
    assert reconcile(env, "--stale-claim-s", "0")["orphans"] == []


def moto_url_of(moto: AwsClients) -> str:
    assert moto.settings.endpoint_url is not None
    return moto.settings.endpoint_url
