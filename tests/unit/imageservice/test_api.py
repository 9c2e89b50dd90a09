from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from imageservice.domain.errors import ContentPolicy, DomainError, GeneratorTimeout, Overloaded, RateLimited
from imageservice.domain.model import GenerationRequest
from imageservice.entrypoints.api import ApiError, from_domain, parse_body, parse_limit
from imageservice.metrics import ServiceMetrics

METRICS = ServiceMetrics(CollectorRegistry())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _parse(body: bytes, content_type: str) -> GenerationRequest | ApiError:
    try:
        return parse_body(METRICS, body, content_type)
    except ApiError as exc:
        return exc


@given(st.binary(max_size=300))
def test_any_bytes_are_either_a_request_or_a_contract_error(body: bytes) -> None:
    outcome = _parse(body, "application/json")
    if isinstance(outcome, ApiError):
        assert outcome.status in {400, 413}
    else:
        assert isinstance(outcome, GenerationRequest)


@given(json_values)
def test_any_json_value_is_either_a_request_or_a_400_naming_a_reason(value: object) -> None:
    outcome = _parse(json.dumps(value).encode(), "application/json; charset=utf-8")
    if isinstance(outcome, ApiError):
        assert outcome.status == 400
        assert outcome.code == "invalid_request"
        assert outcome.message


def test_defaults_are_applied_as_the_contract_says() -> None:
    parsed = parse_body(METRICS, b'{"prompt": "x"}', "application/json")
    assert (parsed.n, str(parsed.size)) == (1, "1024x1024")


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (ContentPolicy("no"), 422, None),
        (RateLimited("slow down", retry_after_s=7), 429, "7"),
        (Overloaded("busy", retry_after_s=2), 503, "2"),
        (GeneratorTimeout("late"), 504, None),
    ],
)
def test_domain_errors_map_to_the_contract_status(
    error: DomainError, status: int, retry_after: str | None
) -> None:
    mapped = from_domain(error)
    assert mapped.status == status
    assert mapped.code == error.code
    assert mapped.headers.get("Retry-After") == retry_after


@pytest.mark.parametrize("raw", ["0", "101", "-1", "ten", "1.5", ""])
def test_a_limit_outside_1_to_100_is_refused(raw: str) -> None:
    with pytest.raises(ApiError, match="limit"):
        parse_limit(raw)
