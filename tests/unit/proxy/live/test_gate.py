"""When the watcher reads routes.yaml: on a first look, a moved signature, while a change settles, and at
each backstop; never for an unchanged file in between (pure)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.live.gate import Gate, Signature

FILE: Signature = (2049, 100, 1234, 1_700_000_000_000_000_000, 1_700_000_000_000_000_000)


def moved(field: int, by: int = 1) -> Signature:
    values = list(FILE)
    values[field] += by
    return (values[0], values[1], values[2], values[3], values[4])


def read_at(now: float, backstop_s: float = 30.0) -> Gate:
    gate = Gate(backstop_s)
    assert gate.must_read(FILE, now=now, settling=False) == "first"
    gate.read(FILE, now=now)
    return gate


def test_an_unchanged_file_is_not_read_again_before_the_backstop() -> None:
    gate = read_at(0.0)
    assert [gate.must_read(FILE, now=t / 2, settling=False) for t in range(1, 60)] == [None] * 59


def test_the_backstop_reads_an_unchanged_file_and_the_next_one_is_a_backstop_later() -> None:
    gate = read_at(0.0)
    assert gate.must_read(FILE, now=30.0, settling=False) == "backstop"
    gate.read(FILE, now=30.0)
    assert gate.must_read(FILE, now=59.9, settling=False) is None
    assert gate.must_read(FILE, now=60.0, settling=False) == "backstop"


@pytest.mark.parametrize(
    ("field", "what"),
    [(0, "st_dev"), (1, "st_ino: renamed into place, a symlink swapped"), (2, "st_size"), (3, "st_mtime_ns"),
     (4, "st_ctime_ns")],
)  # fmt: skip
def test_a_change_of_any_field_of_the_signature_is_read_at_once(field: int, what: str) -> None:
    gate = read_at(0.0)
    assert gate.must_read(moved(field), now=0.5, settling=False) == "changed", what


def test_a_change_that_settles_is_read_every_check_until_it_is_told_otherwise() -> None:
    gate = read_at(0.0)
    assert gate.must_read(FILE, now=0.5, settling=True) == "settling"
    gate.read(FILE, now=0.5)
    assert gate.must_read(FILE, now=1.0, settling=False) is None


def test_a_failed_or_stale_read_is_tried_again_on_the_next_check() -> None:
    gate = read_at(0.0)
    gate.forget()
    assert gate.must_read(FILE, now=0.5, settling=False) == "first"


def test_what_is_remembered_is_the_signature_taken_before_the_read() -> None:
    # The file changed between the stat and the read: the next check sees the newer signature as a change.
    gate = Gate()
    gate.read(FILE, now=0.0)
    assert gate.must_read(moved(2, by=10), now=0.5, settling=False) == "changed"


@given(checks=st.lists(st.floats(0, 1000, allow_nan=False), max_size=50), backstop_s=st.floats(0.1, 100))
def test_an_unchanged_file_is_read_at_most_once_a_backstop(checks: list[float], backstop_s: float) -> None:
    gate = read_at(0.0, backstop_s)
    reads = [0.0]
    for now in sorted(checks):
        if gate.must_read(FILE, now=now, settling=False) is not None:
            gate.read(FILE, now=now)
            reads.append(now)
    assert all(later - earlier >= backstop_s for earlier, later in itertools.pairwise(reads))


def test_the_backstop_must_be_a_positive_time() -> None:
    with pytest.raises(ValueError, match="backstop_s"):
        Gate(0)
