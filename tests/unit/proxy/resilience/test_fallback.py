"""The fallback decision: which failures of the candidate replay the request to the primary."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.resilience.fallback import IDEMPOTENT, KINDS, FallbackPolicy, kind_of_error, kind_of_status, replay

ALL = FallbackPolicy(when=frozenset({"connect_error", "timeout", "5xx", "404"}), max_body_bytes=1024)


def test_a_listed_failure_of_a_get_is_replayed_and_named_as_the_reason() -> None:
    for kind in KINDS:
        verdict = replay(ALL, kind, method="GET", body_buffered=True)
        assert verdict.replay
        assert verdict.why == kind


def test_a_failure_that_is_not_listed_is_not_replayed() -> None:
    policy = FallbackPolicy(when=frozenset({"connect_error"}), max_body_bytes=1024)
    assert not replay(policy, "5xx", method="GET", body_buffered=True).replay
    assert not replay(policy, "timeout", method="GET", body_buffered=True).replay
    assert replay(policy, "circuit_open", method="GET", body_buffered=True).replay  # nothing was sent


def test_404_falls_back_for_reads_only() -> None:
    assert replay(ALL, "404", method="HEAD", body_buffered=True).replay
    assert not replay(ALL, "404", method="DELETE", body_buffered=True).replay
    assert not replay(ALL, "404", method="POST", body_buffered=True).replay


def test_a_post_is_replayed_only_when_nothing_can_have_reached_the_candidate() -> None:
    assert replay(ALL, "connect_error", method="POST", body_buffered=True).replay
    assert replay(ALL, "circuit_open", method="POST", body_buffered=True).replay
    for kind in ("reset", "timeout", "5xx"):
        verdict = replay(ALL, kind, method="POST", body_buffered=True)
        assert not verdict.replay
        assert "not idempotent" in verdict.why


def test_a_route_that_allows_it_replays_a_post_after_a_timeout() -> None:
    policy = FallbackPolicy(when=ALL.when, max_body_bytes=1024, replay_non_idempotent=True)
    assert replay(policy, "timeout", method="POST", body_buffered=True).replay
    assert not replay(policy, "404", method="POST", body_buffered=True).replay


def test_a_body_that_was_not_buffered_is_never_replayed() -> None:
    verdict = replay(ALL, "connect_error", method="PUT", body_buffered=False)
    assert not verdict.replay
    assert "max_body_bytes" in verdict.why


def test_statuses_and_errors_map_to_kinds() -> None:
    statuses = (200, 404, 499, 500, 503, 599)
    assert [kind_of_status(s) for s in statuses] == [None, "404", None, "5xx", "5xx", "5xx"]
    assert [kind_of_error(k) for k in ("connect", "timeout", "reset", "protocol")] == [
        "connect_error", "timeout", "reset", "reset",
    ]  # fmt: skip


def statuses_that_fall_back(policy: FallbackPolicy, method: str) -> set[int]:
    """Every response status that, through kind_of_status() and replay(), sends `method` to the primary."""
    return {
        status
        for status in range(100, 600)
        if (kind := kind_of_status(status)) is not None
        and replay(policy, kind, method=method, body_buffered=True).replay
    }


def test_a_request_falls_back_on_a_status_only_when_5xx_or_a_read_404_is_listed() -> None:
    assert not statuses_that_fall_back(FallbackPolicy(frozenset({"connect_error", "timeout"}), 10), "GET")
    only_404 = FallbackPolicy(frozenset({"404"}), 10)
    assert statuses_that_fall_back(only_404, "GET") == {404}
    assert not statuses_that_fall_back(only_404, "POST")
    assert statuses_that_fall_back(FallbackPolicy(frozenset({"5xx"}), 10), "GET") == set(range(500, 600))


@given(
    when=st.frozensets(st.sampled_from(["connect_error", "timeout", "5xx", "404"])),
    kind=st.sampled_from(KINDS),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"]),
    buffered=st.booleans(),
    allow=st.booleans(),
)
def test_a_non_idempotent_request_that_may_have_reached_the_candidate_is_replayed_only_when_allowed(
    when: frozenset[str], kind: str, method: str, buffered: bool, allow: bool
) -> None:
    policy = FallbackPolicy(when=when, max_body_bytes=1, replay_non_idempotent=allow)  # type: ignore[arg-type]
    verdict = replay(policy, kind, method=method, body_buffered=buffered)  # type: ignore[arg-type]
    if verdict.replay:
        assert buffered
        assert method in IDEMPOTENT or kind in ("connect_error", "circuit_open") or allow
        assert kind != "404" or method in ("GET", "HEAD")
