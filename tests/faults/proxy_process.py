"""`python -m proxy serve` as a real process on 127.0.0.1, for the proxy's fault tests (reload, fds,
Expect, admin): its JSON log lines are collected as they come, its metrics read from the admin port.

The process can be started with a chosen open-file limit (set in the child before the proxy runs).
Every wait is bounded by WAIT_S; the bound is a deadline, never the thing a test asserts.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.proxy.conftest import closed_port

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0
TOKEN = "fault-suite-admin-token-0123456789"
# Run the proxy's CLI after setting RLIMIT_NOFILE to argv[1]:argv[2] (the limit a service manager gives).
_WITH_NOFILE = (
    "import resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "from proxy.__main__ import main; sys.exit(main(sys.argv[3:]))"
)


@dataclass
class Served:
    process: asyncio.subprocess.Process
    port: int
    admin_port: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event]

    async def wait_for_log(self, event: str, **fields: Any) -> dict[str, Any]:
        async def found() -> dict[str, Any]:
            while True:
                for line in self.logged(event):
                    if all(line.get(k) == v for k, v in fields.items()):
                        return line
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(found(), WAIT_S)

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
        timeout = aiohttp.ClientTimeout(total=WAIT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{self.admin}/metrics") as got,
        ):
            text = await got.text()
        total = 0.0
        for line in text.splitlines():
            if not (line.startswith(name + "{") or line.startswith(name + " ")):
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(key) == value for key, value in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


async def collect_logs(served: Served, stream: asyncio.StreamReader) -> None:
    """Keep every JSON line the process writes (a line that is not JSON is kept as text)."""
    async for raw in stream:
        try:
            served.lines.append(json.loads(raw))
        except ValueError:
            served.lines.append({"event": "(not json)", "text": raw.decode(errors="replace")})
        served.changed.set()


@asynccontextmanager
async def serve_proxy(
    config: Path, *, args: Sequence[str] = (), nofile: tuple[int, int] | None = None
) -> AsyncIterator[Served]:
    """Start the proxy on `config` and wait for `proxy_listening`; SIGTERM (then SIGKILL) at the end."""
    port, admin_port = closed_port(), closed_port()
    cli = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
           "--admin-host", "127.0.0.1", "--admin-port", str(admin_port), *args]  # fmt: skip
    launch = ["-m", "proxy", *cli] if nofile is None else ["-c", _WITH_NOFILE, *map(str, nofile), *cli]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *launch, cwd=REPO,
        env={**os.environ, "STRANGLER_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    served = Served(process, port, admin_port)
    collecting = asyncio.ensure_future(collect_logs(served, process.stderr))
    try:
        try:
            await served.wait_for_log("proxy_listening")
        except TimeoutError:
            raise AssertionError(f"the proxy did not start: {served.lines[-5:]}") from None
        yield served
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), WAIT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait_for(collecting, WAIT_S)
