"""How many CPUs this process may use: `serve --workers auto` starts one worker for each.

The CPUs the scheduler lets it run on (os.sched_getaffinity: taskset, a cpuset, Docker's --cpuset-cpus),
and no more than its cgroup's CPU quota, rounded up (Docker's --cpus, a Kubernetes CPU limit): on a
64-core node a container limited to 2 CPUs gets 2 workers, not 64 throttled ones each holding its own
memory. At least 1, at most MAX_WORKERS. Reads /proc and /sys; `cpu_count` is the pure rule.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["MAX_WORKERS", "cpu_count", "quota_of", "usable_cpus"]

MAX_WORKERS = 64
_CGROUP = Path("/sys/fs/cgroup")


def cpu_count(affinity: int, quota: float | None) -> int:
    """Workers for `affinity` usable CPUs under a CPU quota of `quota` CPUs (None: no quota)."""
    count = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, min(count, MAX_WORKERS))


def quota_of(cpu_max: str) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` ("200000 100000": 2.0; "max 100000": no quota), or by
    cgroup v1's "quota period" pair read the same way ("-1 100000": no quota)."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] in ("max", "-1"):
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cpus() -> int:
    return cpu_count(len(os.sched_getaffinity(0)), _cgroup_quota())


def _cgroup_quota() -> float | None:
    """The tightest quota on the way from this process's cgroup (v2) up to the root; else cgroup v1's."""
    found = [quota for quota in map(quota_of, _v2_cpu_max() or _v1_cpu_max()) if quota is not None]
    return min(found) if found else None


def _v2_cpu_max() -> list[str]:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return []
    here, out = _CGROUP / path.lstrip("/"), []
    for directory in (here, *here.parents):
        if not directory.is_relative_to(_CGROUP):
            break
        out.extend(_read(directory / "cpu.max"))
    return out


def _v1_cpu_max() -> list[str]:
    for controller in ("cpu", "cpu,cpuacct"):
        quota = _read(_CGROUP / controller / "cpu.cfs_quota_us")
        period = _read(_CGROUP / controller / "cpu.cfs_period_us")
        if quota and period:
            return [f"{quota[0]} {period[0]}"]
    return []


def _read(path: Path) -> list[str]:
    try:
        return [path.read_text().strip()]
    except OSError:
        return []
