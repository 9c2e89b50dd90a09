from __future__ import annotations

from legacy_stub.idempotency import ClaimOutcome, IdempotencyTable, StoredResponse, fingerprint

DONE = StoredResponse(201, {"id": "leg_1"})


def test_equal_json_values_have_equal_fingerprints_whatever_the_key_order() -> None:
    assert fingerprint({"prompt": "a", "n": 1}) == fingerprint({"n": 1, "prompt": "a"})
    assert fingerprint({"prompt": "a"}) != fingerprint({"prompt": "b"})


def test_a_free_key_is_claimed_then_in_progress_then_replayed() -> None:
    table = IdempotencyTable(max_keys=10)

    assert table.claim("k", "f").outcome is ClaimOutcome.CLAIMED
    assert table.claim("k", "f").outcome is ClaimOutcome.IN_PROGRESS
    table.complete("k", DONE)
    replay = table.claim("k", "f")
    assert replay.outcome is ClaimOutcome.REPLAY
    assert replay.response == DONE


def test_a_key_with_another_body_is_reused_whether_running_or_done() -> None:
    table = IdempotencyTable(max_keys=10)
    table.claim("k", "f")

    assert table.claim("k", "other").outcome is ClaimOutcome.REUSED
    table.complete("k", DONE)
    assert table.claim("k", "other").outcome is ClaimOutcome.REUSED


def test_a_released_key_can_be_claimed_again_but_a_completed_one_is_never_released() -> None:
    table = IdempotencyTable(max_keys=10)
    table.claim("k", "f")
    table.release("k")
    assert table.claim("k", "other").outcome is ClaimOutcome.CLAIMED

    table.complete("k", DONE)
    table.release("k")
    assert table.claim("k", "f").outcome is ClaimOutcome.REUSED
    assert table.claim("k", "other").outcome is ClaimOutcome.REPLAY


def test_beyond_its_bound_the_table_forgets_completed_keys_but_never_a_running_one() -> None:
    table = IdempotencyTable(max_keys=2)
    table.claim("running", "f")
    table.claim("done", "f")
    table.complete("done", DONE)

    table.claim("new", "f")

    assert len(table) == 2
    assert table.claim("running", "f").outcome is ClaimOutcome.IN_PROGRESS
    assert table.claim("done", "other").outcome is ClaimOutcome.CLAIMED
