from __future__ import annotations

from pathlib import Path

import pytest

from bench.parse import ParseError, parse_duration, parse_hey, parse_paced, parse_size, parse_wrk

SAMPLES = Path(__file__).with_name("samples")


def test_wrk_latency_output_gives_rate_totals_and_percentiles_in_seconds() -> None:
    result = parse_wrk((SAMPLES / "wrk_latency.txt").read_text())
    assert result.requests == 52756
    assert result.duration_s == pytest.approx(2.01)
    assert result.requests_per_s == pytest.approx(26254.75)
    assert result.bytes_per_s == pytest.approx(5.13 * 1024**2)
    assert result.latency_percentiles_s == pytest.approx({50: 296e-6, 75: 358e-6, 90: 1.22e-3, 99: 4.01e-3})
    assert result.errors == 0


def test_wrk_socket_errors_and_bad_statuses_are_counted() -> None:
    text = (
        (SAMPLES / "wrk_latency.txt")
        .read_text()
        .replace(
            "Requests/sec:",
            "  Socket errors: connect 1, read 2, write 3, timeout 4\n"
            "  Non-2xx or 3xx responses: 5\nRequests/sec:",
        )
    )
    result = parse_wrk(text)
    assert (result.socket_errors, result.non_2xx_3xx, result.errors) == (10, 5, 15)


def test_wrk_output_without_totals_is_refused() -> None:
    with pytest.raises(ParseError, match="totals"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("text", "seconds"), [("296.00us", 296e-6), ("1.22ms", 1.22e-3), ("2.00s", 2.0), ("1.50m", 90.0)]
)
def test_wrk_durations_convert_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_wrk_sizes_are_powers_of_1024() -> None:
    assert parse_size("10.31MB") == pytest.approx(10.31 * 1024**2)
    assert parse_size("512B") == 512
    with pytest.raises(ParseError):
        parse_size("12 parsecs")


def test_hey_summary_gives_percentiles_and_the_status_distribution() -> None:
    result = parse_hey((SAMPLES / "hey_ok.txt").read_text())
    assert result.requests_per_s == pytest.approx(99.5704)
    assert result.latency_percentiles_s[50] == pytest.approx(0.0005)
    assert result.latency_percentiles_s[99] == pytest.approx(0.0058)
    assert result.status_counts == {200: 200}
    assert (result.responses, result.errors) == (200, 0)


def test_hey_transport_errors_count_as_errors() -> None:
    result = parse_hey((SAMPLES / "hey_refused.txt").read_text())
    assert result.responses == 0
    assert result.errors == 3
    assert "connection refused" in next(iter(result.error_counts))


def test_hey_error_statuses_count_as_errors_but_redirects_do_not() -> None:
    text = (
        (SAMPLES / "hey_ok.txt")
        .read_text()
        .replace("[200]\t200 responses", "[200]\t190 responses\n  [302]\t5 responses\n  [502]\t5 responses")
    )
    assert parse_hey(text).errors == 5


def test_the_paced_script_line_gives_microsecond_percentiles() -> None:
    result = parse_paced((SAMPLES / "wrk_paced.txt").read_text())
    assert result.requests == 1543
    assert result.p50_s == pytest.approx(184e-6)
    assert result.p99_s == pytest.approx(640e-6)
    assert result.requests_per_s == pytest.approx(1543 / 3.00396)


def test_wrk_output_without_the_paced_line_is_refused() -> None:
    with pytest.raises(ParseError, match="BENCHJSON"):
        parse_paced((SAMPLES / "wrk_latency.txt").read_text())
    with pytest.raises(ParseError, match="malformed"):
        parse_paced('BENCHJSON {"requests": 1}\n')
