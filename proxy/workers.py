"""`strangler-proxy serve --workers auto|N`: N worker processes on one public port, behind one admin port.

Model: the parent checks the config, reserves the public port, makes a private directory (0700) for the
workers' admin sockets and starts N workers (supervisor.py). Each worker is a complete single-process
proxy (proxy.server.serve): its public socket is bound with SO_REUSEPORT, so the kernel spreads new
connections over the workers, and its admin app listens on its own unix socket in that directory, which
only this user can reach. Nothing is shared between workers at run time. Once every worker listens, the
parent opens the one admin listener (--admin-host/--admin-port), which answers for all of them by asking
each (admin/fanout.py): one /metrics covering every worker, POST /reload reaching every worker, and the
migration console (proxy/console) reading every worker's state through it.
Signals: SIGHUP is forwarded to every worker (each reloads); SIGINT/SIGTERM are forwarded as SIGTERM, each
worker drains and exits, then the parent exits 0 (1 if a worker did not drain cleanly). A worker that
dies is replaced; a crash loop stops everything with exit 1 (supervisor.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.admin.fanout import create_fanout_app
from proxy.config import load_config
from proxy.console.app import mount_console
from proxy.metrics import WorkersMetrics
from proxy.supervisor import Supervisor

__all__ = ["Plan", "reserve_port", "serve_workers", "worker_argv", "worker_environ"]

_log = structlog.get_logger("proxy.workers")
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes, the last a NUL
_SECRETS = ("STRANGLER_ADMIN_TOKEN", "STRANGLER_SHADOW_KEY")


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """What every worker is started with; `port` is the reserved one (never 0)."""

    config_path: str
    host: str
    port: int
    log_level: str = "INFO"
    reload_settle_s: float = 2.0
    access_log_flush_ms: int = 100


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening SO_REUSEPORT socket: turns port 0 into one number all workers share,
    and keeps the port ours while they start. It never accepts (only listening sockets do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def worker_argv(plan: Plan, index: int, admin_socket: str) -> list[str]:
    return [
        sys.executable, "-m", "proxy", "serve", "--config", plan.config_path,
        "--host", plan.host, "--port", str(plan.port), "--log-level", plan.log_level,
        "--reload-settle-s", str(plan.reload_settle_s),
        "--access-log-flush-ms", str(plan.access_log_flush_ms),
        "--worker-index", str(index), "--admin-socket", admin_socket,
    ]  # fmt: skip


def worker_environ(
    environ: Mapping[str, str], admin_token: str | None, shadow_key: bytes | None
) -> dict[str, str]:
    """The workers' environment: the secrets as the parent read them at start, never their files again, so
    a replacement started after a secret file changed still takes the token the parent sends."""
    env = {k: v for k, v in environ.items() if k not in _SECRETS and k.removesuffix("_FILE") not in _SECRETS}
    if admin_token:
        env["STRANGLER_ADMIN_TOKEN"] = admin_token
    if shadow_key:
        env["STRANGLER_SHADOW_KEY"] = shadow_key.decode()
    return env


def serve_workers(
    count: int, plan: Plan, *, admin_host: str, admin_port: int, admin_token: str | None,
    shadow_key: bytes | None, environ: Mapping[str, str], controller_url: str | None = None,
) -> int:  # fmt: skip
    """Run `count` workers until SIGINT/SIGTERM or a crash loop; the exit code for the CLI. ConfigError
    before any worker starts. `environ`: the parent's environment (proxy.__main__ reads it), the workers'."""
    load_config(plan.config_path)  # fail fast, once, before any worker starts
    reservation = reserve_port(plan.host, plan.port)
    private = _private_dir(count)
    try:
        plan = dataclasses.replace(plan, port=int(reservation.getsockname()[1]))
        env = worker_environ(environ, admin_token, shadow_key)
        sockets = [os.path.join(private, f"worker-{index}.sock") for index in range(count)]
        admin = _Admin(admin_host, admin_port, admin_token, controller_url)
        return asyncio.run(_run(plan, sockets, env, admin))
    finally:
        reservation.close()
        shutil.rmtree(private, ignore_errors=True)


def _private_dir(count: int) -> str:
    """A new directory only this user may enter (mkdtemp: 0700), short enough for a unix socket path."""
    longest = len(f"/worker-{count - 1}.sock")
    path = tempfile.mkdtemp(prefix="strangler-proxy-")
    if len(path) + longest > _SOCKET_PATH_MAX:  # a long TMPDIR
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix="strangler-proxy-", dir="/tmp")  # mkdtemp: 0700, a new name
    return path


@dataclasses.dataclass(frozen=True, slots=True)
class _Admin:
    """The parent's admin listener: where, its token, and the controller its console shows."""

    host: str
    port: int
    token: str | None
    controller_url: str | None


async def _run(plan: Plan, sockets: list[str], env: dict[str, str], admin: _Admin) -> int:
    loop = asyncio.get_running_loop()
    metrics = WorkersMetrics(CollectorRegistry())

    async def launch(index: int, admin_socket: str) -> asyncio.subprocess.Process:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(admin_socket)  # a dead predecessor's: the replacement binds the same path
        return await asyncio.create_subprocess_exec(
            *worker_argv(plan, index, admin_socket), env=env, stdin=asyncio.subprocess.DEVNULL,
            process_group=0,  # a terminal's Ctrl-C reaches the parent alone; it stops the workers in order
        )  # fmt: skip

    supervisor = Supervisor(sockets, launch, metrics)
    loop.add_signal_handler(signal.SIGINT, supervisor.stop)
    loop.add_signal_handler(signal.SIGTERM, supervisor.stop)
    loop.add_signal_handler(signal.SIGHUP, supervisor.signal_all, signal.SIGHUP)
    fanout = create_fanout_app(supervisor, metrics, admin_token=admin.token)
    mount_console(fanout, controller_url=admin.controller_url, workers=True)
    runner = web.AppRunner(fanout, access_log=None)
    await runner.setup()
    try:
        if await supervisor.start() and await _listen(runner, admin.host, admin.port, supervisor):
            _log.info("proxy_workers_started", workers=len(sockets), public=_address(plan.host, plan.port),
                      admin=[_address(str(a[0]), int(a[1])) for a in runner.addresses],
                      pids=[w["pid"] for w in supervisor.describe()])  # fmt: skip
        code = await supervisor.wait()  # after a failed start too: the supervisor said why, and stops
        _log.info("proxy_workers_stopped", code=code, failure=supervisor.failure)
        return code
    finally:
        supervisor.stop()  # a no-op after wait(); after a failure of ours, no worker outlives the parent
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


async def _listen(runner: web.AppRunner, host: str, port: int, supervisor: Supervisor) -> bool:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        supervisor.give_up("the admin listener could not listen", admin=_address(host, port), error=str(exc))
        return False
    return True


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
