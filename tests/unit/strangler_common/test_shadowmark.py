"""The signed shadow marker: only the key's holder can mark a request as a shadow copy."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from strangler_common.shadowmark import MAX_SKEW_S, ShadowGate, Verdict, sign, verify

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_the_proxys_signature_checks_out_for_its_request_id() -> None:
    assert verify(KEY, sign(KEY, "req-1", now=NOW), "req-1", now=NOW) == "signed"


def test_a_bare_or_legacy_marker_is_unsigned() -> None:
    for value in ("1", "true", "", "v1", "v1.123", "v2.1.abc", "v1.x." + "0" * 64, "v1.²." + "0" * 64):
        assert verify(KEY, value, "req-1", now=NOW) == "unsigned", value


def test_a_signature_for_another_request_id_or_under_another_key_is_forged() -> None:
    marker = sign(KEY, "req-1", now=NOW)
    assert verify(KEY, marker, "req-2", now=NOW) == "forged"
    assert verify(KEY, marker, None, now=NOW) == "forged"
    assert verify(b"z" * 32, marker, "req-1", now=NOW) == "forged"


def test_a_tampered_timestamp_breaks_the_signature() -> None:
    _, stamp, digest = sign(KEY, "req-1", now=NOW).split(".")
    assert verify(KEY, f"v1.{int(stamp) + 1}.{digest}", "req-1", now=NOW) == "forged"


def test_a_marker_is_valid_only_for_a_short_time_either_side_of_now() -> None:
    marker = sign(KEY, "req-1", now=NOW)
    assert verify(KEY, marker, "req-1", now=NOW + MAX_SKEW_S) == "signed"
    assert verify(KEY, marker, "req-1", now=NOW + MAX_SKEW_S + 1) == "expired"
    assert verify(KEY, marker, "req-1", now=NOW - MAX_SKEW_S - 1) == "expired"


def test_without_a_key_every_marker_is_ignored_and_no_marker_is_absent() -> None:
    assert verify(None, sign(KEY, "req-1", now=NOW), "req-1", now=NOW) == "ignored"
    assert verify(KEY, None, "req-1", now=NOW) == "absent"


def test_the_signature_is_the_documented_hmac_sha256() -> None:
    expected = hmac.new(KEY, b"v1.1800000000.req-1", hashlib.sha256).hexdigest()
    assert sign(KEY, "req-1", now=NOW) == f"v1.1800000000.{expected}"


def test_the_gate_reports_every_marker_it_saw_and_honours_only_a_signed_one() -> None:
    seen: list[Verdict] = []
    gate = ShadowGate(KEY, report=seen.append, clock=lambda: NOW)
    assert gate.is_shadow(sign(KEY, "r", now=NOW), "r")
    assert not gate.is_shadow("1", "r")
    assert not gate.is_shadow(sign(b"x" * 32, "r", now=NOW), "r")
    assert not gate.is_shadow(None, "r")
    assert seen == ["signed", "unsigned", "forged"]
    unarmed = ShadowGate(None, report=seen.append, clock=lambda: NOW)
    assert not unarmed.armed
    assert not unarmed.is_shadow(sign(KEY, "r", now=NOW), "r")
    assert seen[-1] == "ignored"


@given(value=st.text(max_size=120), request_id=st.text(max_size=40))
def test_no_guess_without_the_key_is_ever_accepted(value: str, request_id: str) -> None:
    assert verify(KEY, value, request_id, now=NOW) != "signed"
