"""The whole stack as `make run` starts it: honcho, the Procfile, the shipped routes.yaml."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from strangler_common.devkey import ensure_key

REPO = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], deadline_s: float = STARTUP_DEADLINE_S) -> None:
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise AssertionError(f"the stack exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up within {deadline_s} s")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    legacy: str
    imageservice: str
    proxy: str
    admin: str
    routes_file: Path
    output_file: Path

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode

    def output(self) -> str:
        return self.output_file.read_text(errors="replace")


def stack_env(workdir: Path, ports: dict[str, int]) -> dict[str, str]:
    """The environment `make run` is started with here: this venv first on PATH, the test's ports, no
    image delay, state under `workdir`, and no shadow key of the caller's own."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("STRANGLER_SHADOW_KEY")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "LEGACY_PORT": str(ports["legacy"]),
        "IMAGESERVICE_PORT": str(ports["imageservice"]),
        "PROXY_PORT": str(ports["proxy"]),
        "PROXY_ADMIN_PORT": str(ports["admin"]),
        "LEGACY_IMAGE_DELAY_S": "0",
        "IMAGESERVICE_DATA_DIR": str(workdir / "imageservice"),
    }


@contextmanager
def running_stack(
    workdir: Path, ports: dict[str, int], routes_text: str, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """Start the Procfile under honcho, as `make run` does, on the given free ports; stop it on exit.
    Like `make run`, it generates a shadow-signing key shared by the three services."""
    routes_file = workdir / "routes.yaml"
    routes_file.write_text(routes_text)
    key_file = workdir / "shadow.key"
    ensure_key(key_file)
    env = {
        **stack_env(workdir, ports),
        "ROUTES_FILE": str(routes_file),
        "STRANGLER_ADMIN_TOKEN": "e2e-token",
        "STRANGLER_SHADOW_KEY_FILE": str(key_file),
        **(extra_env or {}),
    }
    output_file = workdir / "honcho.log"
    with output_file.open("wb") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "honcho"), "--procfile", "Procfile", "--no-colour", "start"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(
        process=process,
        legacy=f"http://127.0.0.1:{ports['legacy']}",
        imageservice=f"http://127.0.0.1:{ports['imageservice']}",
        proxy=f"http://127.0.0.1:{ports['proxy']}",
        admin=f"http://127.0.0.1:{ports['admin']}",
        routes_file=routes_file,
        output_file=output_file,
    )
    try:
        for url in (f"{stack.legacy}/healthz", f"{stack.imageservice}/healthz", f"{stack.admin}/healthz"):
            wait_until_up(url, process)
        yield stack
    finally:
        stack.stop()


def shipped_routes(ports: dict[str, int]) -> str:
    """The shipped routes.yaml, its upstreams moved to the test's ports."""
    routes = (REPO / "routes.yaml").read_text()
    routes = routes.replace("127.0.0.1:8081", f"127.0.0.1:{ports['legacy']}")
    return routes.replace("127.0.0.1:8082", f"127.0.0.1:{ports['imageservice']}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("legacy", "imageservice", "proxy", "admin")}
    with running_stack(workdir, ports, shipped_routes(ports)) as running:
        yield running
