"""Where the proxy's time goes: py-spy's collapsed stacks summarized by category and by function.

summarize() is pure: each sample is charged to the innermost frame that belongs to a known category
(so a structlog call made by the handler counts as 'access log', not 'handler'). record() runs py-spy
against a live process.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (  # the first that matches a file wins
    (
        "routing decision",
        ("proxy/routing/", "proxy/config/paths.py", "proxy/dataplane/requestfacts.py",
         "proxy/routing.py", "proxy/rules.py", "proxy/bucketing.py", "proxy/paths.py", "proxy/clientip.py"),
    ),
    ("metrics", ("proxy/metrics/", "prometheus_client/")),
    ("access log", ("structlog/", "logging/", "strangler_common/logs", "strangler_common/linebatch",
                    "json/")),
    ("shadow", ("proxy/shadow",)),
    ("http1 server (client side)", ("proxy/dataplane/http1/", "proxy/dataplane/listener.py", "httptools/")),
    ("upstream client (httptools)", ("proxy/upstream/",)),
    (
        "proxy handler + forwarding",
        ("proxy/dataplane/", "proxy/resilience/", "proxy/client.py",
         "proxy/handler.py", "proxy/forwarding.py", "proxy/upstreams.py"),
    ),
    (
        "aiohttp client (upstream side)",
        ("aiohttp/client", "aiohttp/connector", "aiohttp/streams", "aiohttp/tracing", "yarl/"),
    ),
    (
        "aiohttp server (client side)",
        (
            "aiohttp/web",
            "aiohttp/http_",
            "aiohttp/helpers",
            "aiohttp/base_protocol",
            "multidict/",
            "strangler_common/web",
        ),
    ),
    ("asyncio / event loop", ("asyncio/", "uvloop/")),
)  # fmt: skip
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    samples: int
    by_category: list[tuple[str, float]]  # share of samples, largest first
    top_functions: list[tuple[str, float]]  # innermost frames by share of samples

    def share(self, category: str) -> float:
        return dict(self.by_category).get(category, 0.0)


def category_of(file: str) -> str | None:
    for name, needles in CATEGORIES:
        if any(needle in file for needle in needles):
            return name
    return None


def summarize(collapsed: str, *, top: int = 12) -> ProfileSummary:
    """Parse py-spy's `--format raw` output ('frame;frame;... count' per line)."""
    categories: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        functions[frames[-1]] += count
        charged = "other"
        for frame in reversed(frames):
            match = _FRAME.match(frame)
            found = category_of(match["file"]) if match else None
            if found is not None:
                charged = found
                break
        categories[charged] += count
    if total == 0:
        return ProfileSummary(0, [], [])
    return ProfileSummary(
        samples=total,
        by_category=[(name, n / total) for name, n in categories.most_common()],
        top_functions=[(name, n / total) for name, n in functions.most_common(top)],
    )


def py_spy() -> str:
    """py-spy from the virtualenv the bench runs in (pip-installed there), else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else "py-spy"


def record(pid: int, *, duration_s: float, out: Path, load: Callable[[], object] | None = None,
           rate: int = 250) -> ProfileSummary:  # fmt: skip
    """py-spy on a running process while `load()` runs (non-blocking sampling; Python frames only)."""
    argv = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
            "--rate", str(rate), "--format", "raw", "--function", "--nonblocking",
            "-o", str(out)]  # fmt: skip
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if load is not None:
            load()
        _, err = spy.communicate(timeout=duration_s + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.decode(errors='replace')[-500:]}")
    return summarize(out.read_text(errors="replace"))
