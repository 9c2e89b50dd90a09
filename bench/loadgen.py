"""The load generators: wrk (saturation, closed loop) and hey (fixed rate), run as subprocesses.

Both are Debian packages (`make bench` installs them). Pinning: the caller passes the CPU list the
generator may use; the system under test gets the other core.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.parse import HeyResult, PacedResult, WrkResult, parse_hey, parse_paced, parse_wrk
from bench.procs import pinned


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str


def wrk(url: str, *, connections: int, duration_s: float, threads: int = 1, cpus: str | None = None,
        headers: dict[str, str] | None = None) -> WrkResult:  # fmt: skip
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency",
            "--timeout", "10s"]  # fmt: skip
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = _run(pinned([*argv, url], cpus), timeout_s=duration_s + 30)
    return parse_wrk(out)


def hey(url: str, *, rate: float, concurrency: int, duration_s: float, cpus: str | None = None,
        method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None,
        timeout_s: int = 20) -> HeyResult:  # fmt: skip
    """`rate` requests per second in total, spread over `concurrency` workers (hey's -q is per worker)."""
    running = hey_start(url, rate=rate, concurrency=concurrency, duration_s=duration_s, cpus=cpus,
                        method=method, body=body, headers=headers, timeout_s=timeout_s)  # fmt: skip
    return hey_finish(running, timeout_s=duration_s + timeout_s + 30)


def hey_start(url: str, *, rate: float, concurrency: int, duration_s: float, cpus: str | None = None,
              method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None,
              timeout_s: int = 20) -> subprocess.Popen[str]:  # fmt: skip
    """Start hey in the background (the soak runs several at once); hey_finish() collects it."""
    per_worker = rate / concurrency
    argv = ["hey", "-z", f"{max(1, round(duration_s))}s", "-c", str(concurrency), "-q", f"{per_worker:g}",
            "-m", method, "-t", str(timeout_s)]  # fmt: skip
    if body is not None:
        argv += ["-d", body, "-T", "application/json"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    return subprocess.Popen(
        pinned([*argv, url], cpus), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def hey_finish(running: subprocess.Popen[str], *, timeout_s: float) -> HeyResult:
    try:
        out, err = running.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        running.kill()
        running.communicate()
        raise
    if running.returncode != 0:
        raise RuntimeError(f"hey failed ({running.returncode}): {err.strip()[:500]}")
    return parse_hey(out)


def _run(argv: list[str], *, timeout_s: float) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return done.stdout


PACED_SCRIPT = Path(__file__).with_name("paced.lua")


def paced(url: str, *, rate: float, connections: int, duration_s: float, cpus: str | None = None,
          headers: dict[str, str] | None = None) -> PacedResult:  # fmt: skip
    """About `rate` requests/s: each connection pauses 1000*connections/rate - 1 ms after a response
    (the 1 ms stands for the response time); the achieved rate is in the result."""
    pause_ms = max(0, round(1000 * connections / rate) - 1)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
            "-s", str(PACED_SCRIPT)]  # fmt: skip
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    out = _run(pinned([*argv, url, "--", str(pause_ms)], cpus), timeout_s=duration_s + 30)
    return parse_paced(out)
