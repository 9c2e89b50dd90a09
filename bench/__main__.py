"""`python -m bench [scenario] [--quick] [--baseline REF]`: run the benchmarks against real local processes.

Usage:
  python -m bench                      every scenario but the soak; report in bench/results/<date>.*
  python -m bench passthrough|workers|shadow|migration|routing    one scenario; report in var/bench/
  python -m bench soak [--duration S]  10 minutes of mixed traffic with reloads (make soak)
  python -m bench traffic ...          bench.traffic's own command line
  --quick                              seconds instead of minutes: checks that it runs, not the numbers
  --baseline REF                       passthrough (alone or in all) also runs our proxy as it was at git
                                       REF, side by side in the same rounds (bench/baseline.py)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import baseline as baselines
from bench import charts, machine, report
from bench.model import Context, RunSettings, ScenarioResult
from bench.procs import REPO, Procs
from bench.profiling import py_spy

SCENARIOS = ("passthrough", "workers", "shadow", "migration", "routing")
BASELINE_SCENARIOS = ("all", "passthrough")  # with all, the baseline joins the passthrough scenario
TOOLS = ("wrk", "hey", "nginx", "taskset")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", nargs="?", default="all", choices=("all", *SCENARIOS, "soak"))
    parser.add_argument("--quick", action="store_true", help="seconds instead of minutes")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=None, help="soak seconds (default 600)")
    parser.add_argument("--out", type=Path, default=None,
                        help="report directory (default bench/results for all, else var/bench)")  # fmt: skip
    parser.add_argument("--baseline", metavar="REF", default=None,
                        help="also run our proxy as it was at git commit/ref REF in the pass-through "
                             "scenario, side by side (passthrough, or all)")  # fmt: skip
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.baseline is not None and args.scenario not in BASELINE_SCENARIOS:
        parser.error(f"--baseline applies to the passthrough scenario (or all), not {args.scenario}")
    if args.baseline is not None and not args.baseline.strip():
        parser.error("--baseline needs a git commit or ref")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["traffic"]:
        try:
            traffic = importlib.import_module("bench.traffic")  # written separately; imported only when asked
        except ModuleNotFoundError as exc:
            if exc.name != "bench.traffic":
                raise
            print("bench.traffic is not installed in this tree", file=sys.stderr)
            return 2
        return int(traffic.main(args_list[1:]))
    args = parse_args(args_list)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if shutil.which(py_spy()) is None:
        missing.append("py-spy")
    if missing:
        print(f"missing tools: {', '.join(missing)} (make bench installs them)", file=sys.stderr)
        return 2
    settings = RunSettings.quick() if args.quick else RunSettings()
    if args.rounds is not None:
        settings = dataclasses.replace(settings, rounds=max(1, args.rounds))
    if args.duration is not None:
        settings = dataclasses.replace(settings, soak_s=args.duration)
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    committed = args.scenario in ("all", "soak")
    out = args.out or (REPO / "bench" / "results" if committed else REPO / "var" / "bench")
    baseline = None
    if args.baseline is not None:
        try:
            baseline = baselines.prepare(args.baseline)
        except baselines.BaselineError as exc:
            print(f"--baseline {args.baseline}: {exc}", file=sys.stderr)
            return 2
        print(f"[bench] baseline {baseline.ref} = {baseline.sha} in {baseline.path}", file=sys.stderr)
    suffix = "" if args.scenario == "all" else f"-{args.scenario}"
    return _run(names, settings, out, suffix=suffix, baseline=baseline)


def _run(names: Sequence[str], settings: RunSettings, out: Path, *, suffix: str,
         baseline: baselines.Baseline | None = None) -> int:  # fmt: skip
    started = time.monotonic()
    results: list[ScenarioResult] = []
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            module = importlib.import_module(f"bench.scenarios.{name}")
            scenario: Callable[[Context], ScenarioResult] = module.run
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                with Procs(workdir) as procs:
                    results.append(scenario(Context(workdir, procs, settings, baseline)))
            except Exception as exc:  # one broken scenario must not lose the others' numbers
                traceback.print_exc()
                failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"[bench] {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    _write(results, failures, settings, out, suffix, baseline)
    print(f"[bench] total {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 1 if failures else 0


def _write(results: list[ScenarioResult], failures: dict[str, str], settings: RunSettings, out: Path,
           suffix: str, baseline: baselines.Baseline | None = None) -> None:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    stem = f"{date}{suffix}"
    chart_files = []
    for result in results:
        for key, data in result.charts.items():
            path = out / f"{stem}-{key}.png"
            if key.startswith("latency") or key == "shadow":
                charts.latency_bars(data, path, title=f"{result.title} ({date})")
            elif key == "before_after":
                charts.before_after(data, path, title=f"{result.title} ({date})")
            else:
                continue
            chart_files.append(path.name)
    about = machine.describe()
    config = dataclasses.asdict(settings)
    (out / f"{stem}.md").write_text(
        report.render_markdown(
            results,
            machine=about,
            date=date,
            settings=config,
            charts=chart_files,
            failures=failures,
            baseline=baseline,
        ),
        encoding="utf-8",
    )
    data = report.to_json(results, machine=about, date=date, settings=config, failures=failures,
                          baseline=baseline)  # fmt: skip
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    print(report.table([row for r in results for row in r.rows]))
    print(f"[bench] report: {out / (stem + '.md')}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
