"""What scenarios hand to the report: rows of the table, raw per-round numbers, chart data, notes.

Also the run settings (durations, rounds, cores) and the shared way to start our proxy, as it is in
this tree or as it was at a baseline commit (bench.baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import baseline as baselines
from bench import configs
from bench.procs import Proc, Procs, free_port, python
from bench.stats import Summary


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    measure: str
    ours: Summary | None
    reference: Summary | None = None
    ratio: Summary | None = None
    target: str = ""
    met: bool | None = None  # None: no target, or not measurable
    unit: str = ""


@dataclass
class ScenarioResult:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    charts: dict[str, Any] = field(default_factory=dict)  # chart name -> data for bench.charts
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunSettings:
    rounds: int = 3
    saturation_s: float = 5.0
    paced_s: float = 8.0
    rate: float = 500.0
    big_s: float = 5.0
    shadow_s: float = 10.0
    shadow_rate: float = 200.0
    migration_s: float = 20.0
    profile_s: float = 8.0
    soak_s: float = 600.0
    sut_cpus: str = "0"  # the system under test (our proxy, nginx)
    load_cpus: str = "1"  # the load generator and the upstream

    @classmethod
    def quick(cls) -> RunSettings:
        """Seconds instead of minutes: to check that everything runs, not to read the numbers."""
        return cls(rounds=3, saturation_s=1, paced_s=1, big_s=1, shadow_s=1, migration_s=3, profile_s=1,
                   soak_s=20)  # fmt: skip


@dataclass
class Context:
    workdir: Path
    procs: Procs
    settings: RunSettings
    baseline: baselines.Baseline | None = None  # --baseline REF: our proxy at REF, in scenario 1


@dataclass(frozen=True, slots=True)
class RunningProxy:
    proc: Proc
    port: int
    admin_ports: tuple[int, ...]
    dropped_flags: tuple[str, ...] = ()  # serve options a baseline's CLI lacks, left out of its argv

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_proxy(ctx: Context, name: str, doc: dict[str, Any], *, cpus: str | None, workers: int = 1,
                env: dict[str, str] | None = None,
                baseline: baselines.Baseline | None = None) -> RunningProxy:  # fmt: skip
    """`python -m proxy serve` as shipped (access log, metrics, request ids on), logs to a file.

    With a baseline: the same venv python and the same argv, run in the baseline's worktree so that
    its `proxy` and `strangler_common` are the ones imported (checked once the process is up).
    """
    config = ctx.workdir / f"{name}.routes.yaml"
    config.write_text(configs.dump(doc), encoding="utf-8")
    port, admin = free_port(), free_port()
    admins = (admin,)  # with --workers N too: the parent's one admin listener answers for every worker
    argv = [python(), "-m", "proxy", "serve", "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port), "--admin-host", "127.0.0.1", "--admin-port", str(admin)]  # fmt: skip
    if workers > 1:
        argv += ["--workers", str(workers)]
    dropped: list[str] = []
    cwd = None
    if baseline is not None:
        argv, dropped = baseline.fit(argv)
        env, cwd = {**(env or {}), **baseline.env()}, baseline.path
    health = f"http://127.0.0.1:{admin}/healthz"
    proc = ctx.procs.start(name, argv, cpus=cpus, env=env, health_url=health, cwd=cwd)
    if baseline is not None:
        baselines.check_process(baseline, proc.pid)
    return RunningProxy(proc, port, admins, tuple(dropped))


def start_upstream(ctx: Context, name: str, *, cpus: str | None, delay_s: float = 0.0) -> tuple[Proc, str]:
    port = free_port()
    argv = [python(), "-m", "bench.upstream", "--port", str(port), "--delay", str(delay_s)]
    proc = ctx.procs.start(name, argv, cpus=cpus, health_url=f"http://127.0.0.1:{port}/healthz")
    return proc, f"http://127.0.0.1:{port}"
