"""Idempotency records: expiry decided in code, what an existing record means, whose claim it is."""

from __future__ import annotations

import pytest

from imageservice.domain.errors import InProgress, KeyReused
from imageservice.domain.idempotency import ClaimTerms, IdempotencyRecord, KeyStatus, check_existing

GID = "img_" + "0" * 32


def record(status: KeyStatus, *, expires: float = 100, in_progress_expires: float = 50) -> IdempotencyRecord:
    return IdempotencyRecord(
        "k",
        "fp",
        status,
        "owner",
        expires,
        in_progress_expires,
        GID if status is KeyStatus.COMPLETED else None,
    )


def test_a_record_dies_at_its_expiry_even_if_the_store_still_has_it() -> None:
    assert record(KeyStatus.COMPLETED).is_live(99)
    assert not record(KeyStatus.COMPLETED).is_live(101)
    assert record(KeyStatus.IN_PROGRESS).is_live(49)
    assert not record(KeyStatus.IN_PROGRESS).is_live(51)  # a crashed holder frees its key
    assert record(KeyStatus.COMPLETED).is_live(51)  # a completed one is kept for replays


def test_an_existing_record_means_reused_in_progress_or_replay() -> None:
    with pytest.raises(KeyReused):
        check_existing(record(KeyStatus.COMPLETED), "other")
    with pytest.raises(InProgress):
        check_existing(record(KeyStatus.IN_PROGRESS), "fp")
    assert check_existing(record(KeyStatus.COMPLETED), "fp") == GID


def test_a_claim_met_again_is_ours_only_while_in_progress_and_under_our_owner_token() -> None:
    assert record(KeyStatus.IN_PROGRESS).held_by("owner")
    assert not record(KeyStatus.IN_PROGRESS).held_by("someone-else")
    assert not record(KeyStatus.COMPLETED).held_by("owner")  # completed: a replay, not a claim


def test_a_claim_is_abandoned_once_its_window_passed_or_it_is_older_than_the_stale_age() -> None:
    claim = IdempotencyRecord.claimed(
        ClaimTerms("k", "fp", owner="o", now=1000.0, ttl_s=3600, in_progress_ttl_s=900, generation_id=GID)
    )
    assert claim.generation_id == GID
    assert not claim.is_abandoned(1100.0, in_progress_ttl_s=900, stale_after_s=900)
    assert claim.is_abandoned(1901.0, in_progress_ttl_s=900, stale_after_s=900)  # window passed
    assert claim.is_abandoned(1100.0, in_progress_ttl_s=900, stale_after_s=60)  # older than asked
    assert not claim.is_abandoned(5000.0, in_progress_ttl_s=900, stale_after_s=60)  # dead record: TTL's job
    completed = record(KeyStatus.COMPLETED)
    assert not completed.is_abandoned(99.0, in_progress_ttl_s=900, stale_after_s=0)
