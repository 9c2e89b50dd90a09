"""Pure parsers of the load generators' text output: wrk (with --latency) and hey's summary.

Units follow the tools: wrk prints us/ms/s/m and B/KB/MB/GB (powers of 1024); hey prints seconds
with four decimals, so its latencies have 0.1 ms resolution.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


class ParseError(ValueError):
    """The text is not what the tool prints; the message says which part is missing."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    requests_per_s: float
    bytes_per_s: float
    latency_percentiles_s: dict[int, float] = field(default_factory=dict)  # 50, 75, 90, 99
    socket_errors: int = 0
    non_2xx_3xx: int = 0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx_3xx


@dataclass(frozen=True, slots=True)
class HeyResult:
    total_s: float
    requests_per_s: float
    latency_percentiles_s: dict[int, float]  # 10, 25, 50, 75, 90, 95, 99
    status_counts: dict[int, int]
    error_counts: dict[str, int]

    @property
    def responses(self) -> int:
        return sum(self.status_counts.values())

    @property
    def errors(self) -> int:
        """Transport errors plus responses outside 2xx/3xx."""
        bad = sum(n for code, n in self.status_counts.items() if not 200 <= code < 400)
        return bad + sum(self.error_counts.values())


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ParseError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS[match[2]]


def parse_size(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(B|KB|MB|GB|TB)", text.strip())
    if match is None:
        raise ParseError(f"not a wrk size: {text!r}")
    return float(match[1]) * _SIZE_UNITS[match[2]]


def parse_wrk(text: str) -> WrkResult:
    total = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+), ([0-9.]+\w+) read", text, re.M)
    rate = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    transfer = re.search(r"^Transfer/sec:\s*([0-9.]+\w+)", text, re.M)
    if total is None or rate is None or transfer is None:
        raise ParseError("wrk output without its totals (requests in, Requests/sec, Transfer/sec)")
    percentiles = {
        int(m[1]): parse_duration(m[2])
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+([0-9.]+\w+)\s*$", text, re.M)
    }
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_ok = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    return WrkResult(
        requests=int(total[1]),
        duration_s=parse_duration(total[2]),
        requests_per_s=float(rate[1]),
        bytes_per_s=parse_size(transfer[1]),
        latency_percentiles_s=percentiles,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
        non_2xx_3xx=int(non_ok[1]) if non_ok else 0,
    )


def parse_hey(text: str) -> HeyResult:
    total = re.search(r"^\s*Total:\s*([0-9.]+) secs", text, re.M)
    rate = re.search(r"^\s*Requests/sec:\s*([0-9.]+)", text, re.M)
    if total is None or rate is None:
        raise ParseError("hey output without its summary (Total, Requests/sec)")
    percentiles = {int(m[1]): float(m[2]) for m in re.finditer(r"^\s*(\d+)% in ([0-9.]+) secs", text, re.M)}
    statuses = {int(m[1]): int(m[2]) for m in re.finditer(r"^\s*\[(\d+)\]\s+(\d+) responses", text, re.M)}
    errors: dict[str, int] = {}
    _, found, tail = text.partition("Error distribution:")
    if found:
        for m in re.finditer(r"^\s*\[(\d+)\]\s+(.+?)\s*$", tail, re.M):
            errors[m[2]] = errors.get(m[2], 0) + int(m[1])
    return HeyResult(
        total_s=float(total[1]),
        requests_per_s=float(rate[1]),
        latency_percentiles_s=percentiles,
        status_counts=statuses,
        error_counts=errors,
    )


@dataclass(frozen=True, slots=True)
class PacedResult:
    """What bench/paced.lua prints: counts and latency percentiles in microseconds."""

    requests: int
    duration_s: float
    errors: int
    status_errors: int
    p50_s: float
    p90_s: float
    p99_s: float
    p999_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def parse_paced(text: str) -> PacedResult:
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise ParseError("wrk output without the BENCHJSON line of bench/paced.lua")
    try:
        data = json.loads(line.removeprefix("BENCHJSON "))
        return PacedResult(
            requests=int(data["requests"]),
            duration_s=data["duration_us"] / 1e6,
            errors=int(data["errors"]),
            status_errors=int(data["status_errors"]),
            p50_s=data["p50_us"] / 1e6,
            p90_s=data["p90_us"] / 1e6,
            p99_s=data["p99_us"] / 1e6,
            p999_s=data["p999_us"] / 1e6,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"malformed BENCHJSON line: {exc}") from None
