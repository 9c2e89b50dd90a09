"""Our proxy as it was at an earlier commit: the third candidate of `python -m bench --baseline REF`.

Owns the disposable worktree of REF (var/bench/baseline-<shortsha>, detached; reused when it is already
there at that commit), the environment that makes a process import that tree's `proxy` and
`strangler_common` instead of the main ones (and the proof that it does), and fitting today's `serve`
argv to the flags that commit's CLI knows. Towards the main worktree git is used read-only
(`rev-parse`, `worktree add --detach`): never a commit, checkout or stash, never its branch or index.
Does not start or measure anything; bench.model.start_proxy does, with a Baseline in hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import REPO, python

PACKAGES = ("proxy", "strangler_common")
REQUIRED_FLAGS = frozenset({"--config", "--port", "--admin-port"})  # without these it cannot be measured
_FLAG = re.compile(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)")
_IMPORTS = (
    "import importlib, json; "
    f"print(json.dumps({{n: importlib.import_module(n).__file__ for n in {PACKAGES!r}}}))"
)


class BaselineError(RuntimeError):
    """REF is not a commit, its worktree is in the way, or the baseline would not be the old code."""


@dataclass(frozen=True, slots=True)
class Baseline:
    ref: str  # as given on the command line
    sha: str
    short: str
    path: Path  # the worktree
    serve_flags: frozenset[str] = frozenset()  # long options of that commit's `proxy serve`
    imports: Mapping[str, str] = field(default_factory=dict)  # package -> the __init__.py it resolves to

    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.path)}

    def fit(self, argv: Sequence[str]) -> tuple[list[str], list[str]]:
        return fit_argv(argv, self.serve_flags)

    def describe(self) -> dict[str, str]:
        """What the report and the JSON say about it: the ref as given and the commit it named."""
        return {"ref": self.ref, "sha": self.sha}


def worktree_path(root: Path, short: str) -> Path:
    return root / "var" / "bench" / f"baseline-{short}"


def parse_flags(help_text: str) -> frozenset[str]:
    """The long options in an argparse `--help`'s usage ('--admin-port', '--workers', ...).

    Only the usage block (up to the first blank line) lists every option and nothing else; the
    descriptions below it may mention options of other commands.
    """
    usage = help_text.strip().split("\n\n", 1)[0]
    return frozenset(_FLAG.findall(usage))


def fit_argv(argv: Sequence[str], flags: frozenset[str]) -> tuple[list[str], list[str]]:
    """argv without the options `flags` lacks (each with its value), and the names left out.

    Leaving out an option the old CLI never had runs the old code with its own default, which is
    what that commit shipped; an option the bench cannot do without raises instead.
    """
    kept: list[str] = []
    dropped: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name = token.split("=", 1)[0]
        if not name.startswith("--") or name in flags:
            kept.append(token)
            i += 1
            continue
        dropped.append(name)
        takes_value = "=" not in token and i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
        i += 2 if takes_value else 1
    missing = REQUIRED_FLAGS.intersection(dropped)
    if missing:
        raise BaselineError(f"the baseline's `proxy serve` lacks {', '.join(sorted(missing))}")
    return kept, dropped


def outside(imports: Mapping[str, str], tree: Path) -> list[str]:
    """The packages that would not be imported from `tree` (an empty list is the proof wanted)."""
    root = tree.resolve()
    return [name for name in PACKAGES if not Path(imports.get(name, "/")).resolve().is_relative_to(root)]


def prepare(ref: str, *, repo: Path = REPO, interpreter: str | None = None) -> Baseline:
    """Resolve REF, make or reuse its worktree, read its serve flags, prove what it imports."""
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", what=f"{ref!r} is not a commit")
    short = _git(repo, "rev-parse", "--short", sha)
    path = worktree_path(repo, short)
    _ensure_worktree(repo, path, sha)
    exe = interpreter or python()
    baseline = Baseline(ref, sha, short, path)
    imports: dict[str, str] = json.loads(_run_in(baseline, [exe, "-c", _IMPORTS]))
    wrong = outside(imports, path)
    if wrong:
        raise BaselineError(f"the baseline would import {', '.join(wrong)} from elsewhere: {imports}")
    flags = parse_flags(_run_in(baseline, [exe, "-m", "proxy", "serve", "--help"]))
    return Baseline(ref, sha, short, path, flags, imports)


def tree_state(repo: Path = REPO) -> str:
    """What 'now' is: 'HEAD a074350' or 'HEAD a074350 + uncommitted changes to 3 files of proxy/...'."""
    head = _git(repo, "rev-parse", "--short", "HEAD")
    changed = _git(repo, "status", "--porcelain", "--", *PACKAGES).splitlines()
    if not changed:
        return f"HEAD {head}"
    return f"HEAD {head} + uncommitted changes to {len(changed)} files of {'/, '.join(PACKAGES)}/"


def check_process(baseline: Baseline, pid: int) -> None:
    """The running baseline proxy works in its worktree (where `python -m` looks first) with its
    PYTHONPATH: the environment in which prepare() saw `proxy` and `strangler_common` imported from it."""
    cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    if cwd.resolve() != baseline.path.resolve():
        raise BaselineError(f"the baseline proxy (pid {pid}) runs in {cwd}, not {baseline.path}")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    wanted = f"PYTHONPATH={baseline.path}".encode()
    if wanted not in environ:
        raise BaselineError(f"the baseline proxy (pid {pid}) does not run with {wanted.decode()}")


def _ensure_worktree(repo: Path, path: Path, sha: str) -> None:
    if path.exists():
        top = _git(path, "rev-parse", "--show-toplevel", what=f"{path} is not a git worktree")
        if Path(top).resolve() != path.resolve():
            raise BaselineError(f"{path} is in the way and is not a worktree; it is disposable: remove it")
        head = _git(path, "rev-parse", "HEAD")
        dirty = _git(path, "status", "--porcelain", "--untracked-files=no")
        if head == sha and not dirty:
            return
        raise BaselineError(
            f"{path} is in the way (at {head[:12]}{', with local changes' if dirty else ''}, wanted "
            f"{sha[:12]}); it is disposable: git worktree remove --force {path}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # --force only overrides a registration whose directory was deleted (make clean removes var/)
    _git(repo, "worktree", "add", "--quiet", "--detach", "--force", str(path), sha)


def _run_in(baseline: Baseline, argv: Sequence[str]) -> str:
    done = subprocess.run(
        argv, cwd=baseline.path, env={**os.environ, **baseline.env()}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BaselineError(f"{' '.join(argv[1:])} at {baseline.short} failed:\n{done.stderr.strip()}")
    return done.stdout


def _git(cwd: Path, *args: str, what: str = "") -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise BaselineError(what or f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()
