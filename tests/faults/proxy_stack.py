"""Real processes for the proxy's fault tests: legacy stubs and a proxy on free loopback ports.

Each is `python -m ...` in its own process, started by `running()`, stopped (SIGTERM, then SIGKILL)
when the block ends. Nothing here is a mock: the traffic crosses real sockets.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import free_port, wait_until_up

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match is not None
        return int(match.group(1)) * 1024


@dataclass
class Proxy(Process):
    admin_port: int

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(key) == value for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, *args], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def legacy_stub(workdir: Path, name: str = "legacy") -> Iterator[Process]:
    port = free_port()
    log = workdir / f"{name}.log"
    process = _start(["-m", "legacy_stub", "--host", "127.0.0.1", "--port", str(port)], log,
                     {"LEGACY_IMAGE_DELAY_S": "0"})  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
        yield Process(process, port, log)
    finally:
        _stop(process)


@contextmanager
def proxy(workdir: Path, config: dict[str, Any]) -> Iterator[Proxy]:
    path = workdir / "routes.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port, admin_port = free_port(), free_port()
    log = workdir / "proxy.log"
    args = ["-m", "proxy", "serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port),
            "--admin-host", "127.0.0.1", "--admin-port", str(admin_port)]  # fmt: skip
    process = _start(args, log)
    try:
        wait_until_up(f"http://127.0.0.1:{admin_port}/healthz", process)
        yield Proxy(process, port, log, admin_port)
    finally:
        _stop(process)


@contextmanager
def stack(workdir: Path, config_for: Any, *upstreams: str) -> Iterator[tuple[Proxy, dict[str, Process]]]:
    """Legacy stubs named `upstreams`, then a proxy whose config is `config_for({name: url})`."""
    with ExitStack() as exit_stack:
        started = {name: exit_stack.enter_context(legacy_stub(workdir, name)) for name in upstreams}
        front = exit_stack.enter_context(proxy(workdir, config_for({n: p.url for n, p in started.items()})))
        yield front, started
