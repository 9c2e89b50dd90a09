"""Real processes for the bench: started on free loopback ports, pinned with taskset, measured, stopped.

Owns process lifetimes (a Procs context stops everything it started, SIGTERM then SIGKILL to each
process group) and the /proc readings the report needs: CPU seconds and RSS of a process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python() -> str:
    return sys.executable


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """argv run by `taskset -c cpus` (taskset execs, so the pid stays the program's own)."""
    return ["taskset", "-c", cpus, *argv] if cpus else list(argv)


def tree(pid: int) -> list[int]:
    """pid and all its descendants (nginx's workers, the proxy's pre-forked workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in _listdir(f"/proc/{current}/task"):
            try:
                todo.extend(int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split())
            except OSError:
                continue
    return out


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of the given processes (not their children's waited-for time)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_bytes(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(tree(self.pid))

    def rss(self) -> int:
        return rss_bytes(tree(self.pid))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int:
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode

    def kill(self) -> int:
        """SIGKILL, no drain: for backends whose queued work the next measurement must not inherit."""
        if self.popen.poll() is None:
            self._signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        return self.popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Starts processes into `workdir` (one log file each) and stops them all on exit."""

    workdir: Path
    started: list[Proc] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: str | None = None,
        env: dict[str, str] | None = None,
        health_url: str | None = None,
        deadline_s: float = 30.0,
        cwd: Path | None = None,
    ) -> Proc:
        log = self.workdir / f"{name}.log"
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                pinned(argv, cpus), cwd=cwd or REPO, env=full_env, stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.started.append(proc)
        if health_url is not None:
            wait_http(health_url, proc, deadline_s)
        return proc

    def stop(self, proc: Proc, *, kill: bool = False) -> int:
        code = proc.kill() if kill else proc.stop()
        if proc in self.started:
            self.started.remove(proc)
        return code

    def __enter__(self) -> Procs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()


def wait_http(url: str, proc: Proc, deadline_s: float = 30.0) -> None:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                if response.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: {url} did not answer within {deadline_s} s:\n{proc.tail()}")
