"""Run the proxy: the public and the admin listener in one process, on uvloop when installed.

SIGHUP reloads the configuration; SIGINT/SIGTERM stop gracefully (listeners close, in-flight requests
get `shutdown_timeout_s` to finish). Before binding, the open-file limit is raised where allowed and the
connection cap fitted to it (fdlimit.py). Logging is configured by the caller (proxy.__main__), not here.
As a worker of `serve --workers N` (proxy/workers.py), the public socket is bound with SO_REUSEPORT, the
admin app listens on the private unix socket `admin_socket` instead of a TCP port, and the worker stops
itself when its parent is gone (it would otherwise keep the port). The migration console (proxy/console)
is on the admin listener of a single process, or of the parent of workers, never of a worker.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import structlog
from aiohttp import web

from proxy.admin.app import create_admin_app
from proxy.app import create_app
from proxy.config import load_config
from proxy.console.app import mount_console
from proxy.dataplane.fdlimit import ConnectionCap, NoFile, raise_nofile
from proxy.dataplane.keys import METRICS, STORE
from proxy.dataplane.listener import PublicListener

__all__ = ["serve"]

_log = structlog.get_logger("proxy.server")


def serve(
    config_path: str,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    admin_token: str | None = None,
    *,
    shutdown_timeout_s: float = 30.0,
    access_log: bool = True,
    reuse_port: bool = False,  # SO_REUSEPORT on the public socket: set by proxy.workers (--workers N)
    shadow_key: bytes | None = None,  # signs the shadow marker (strangler_common/shadowmark.py)
    reload_settle_s: float = 2.0,  # an edited routes.yaml goes live once unchanged this long (settle.py)
    admin_socket: str | None = None,  # a worker's private admin socket, instead of admin_host:admin_port
    controller_url: str | None = None,  # the progressive controller's listener, for the console
) -> None:
    """Block until SIGINT/SIGTERM. Raises proxy.config.ConfigError when the file is invalid at start."""
    loaded = load_config(config_path)  # fail fast, before binding anything
    nofile = raise_nofile()  # before binding too: the connection cap is fitted to it
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(
            _serve(
                create_app(loaded, admin_token=admin_token, access_log=access_log, shadow_key=shadow_key,
                           watch_settle_s=reload_settle_s),
                nofile=nofile,
                host=host,
                port=port,
                admin_host=admin_host,
                admin_port=admin_port,
                shutdown_timeout_s=shutdown_timeout_s,
                reuse_port=reuse_port,
                admin_socket=admin_socket,
                controller_url=controller_url,
            )
        )


async def _serve(
    app: web.Application,
    *,
    nofile: NoFile,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    shutdown_timeout_s: float,
    reuse_port: bool = False,
    admin_socket: str | None = None,
    controller_url: str | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    admin = create_admin_app(app, private=admin_socket is not None)
    if admin_socket is None:  # a worker's console would be unreachable: the parent's serves them all
        mount_console(admin, controller_url=controller_url)
    store = app[STORE]
    # The connection cap in force: max_connections, or what the file descriptors allow (said at ERROR).
    cap = ConnectionCap(nofile, store.current.table, metrics=app[METRICS])
    unfollow = store.subscribe(lambda snapshot: cap.follow(snapshot.table))
    public = PublicListener(app, max_connections=cap)
    admin_runner = web.AppRunner(admin, access_log=None, shutdown_timeout=5.0)
    stop = asyncio.Event()
    reloads: set[asyncio.Task[object]] = set()
    orphan_watch: asyncio.Task[None] | None = None

    def on_hup() -> None:
        task: asyncio.Task[object] = loop.create_task(app[STORE].reload("sighup"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    await admin_runner.setup()
    try:
        await public.start(host, port, reuse_port=reuse_port)
        await _admin_site(admin_runner, admin_host, admin_port, admin_socket).start()
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        _log.info(
            "proxy_listening",
            frozen_objects=freeze_startup_objects(),
            public=public.addresses,
            admin=_addresses(admin_runner),
            config=app[STORE].path,
            sha256=app[STORE].current.loaded.sha256,
        )
        if admin_socket:  # a worker
            orphan_watch = loop.create_task(_stop_when_orphaned(os.getppid(), stop))
        await stop.wait()
        _log.info("proxy_stopping")
    finally:
        if orphan_watch is not None:
            orphan_watch.cancel()
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        unfollow()
        await admin_runner.cleanup()
        await public.stop(shutdown_timeout_s)
        _log.info("proxy_stopped")


def _admin_site(runner: web.AppRunner, host: str, port: int, path: str | None) -> web.BaseSite:
    """A worker's admin app listens on its private unix socket; a single process's on host:port."""
    return web.UnixSite(runner, path) if path else web.TCPSite(runner, host, port)


def freeze_startup_objects() -> int:
    """Move what start-up made (modules, the config, the compiled table, the apps: tens of thousands of
    objects that live as long as the process) out of the garbage collector's sight, so a full
    collection no longer walks them: each would cost ~20-30 ms of a stalled event loop. Returns how
    many objects are frozen. Objects made later (per request, per reload) are collected as before."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event, every_s: float = 1.0) -> None:
    """Sets `stop` once the process that started this worker is gone (the worker was handed to init).

    On Linux the parent's pidfd tells the loop the moment it exits, with no wake-up while it lives;
    elsewhere (or when pidfd_open is refused) the parent is looked up every `every_s`."""
    try:
        fd = os.pidfd_open(parent)
    except (AttributeError, OSError):  # not Linux 5.3+, or the parent is gone already
        while os.getppid() == parent:  # noqa: ASYNC110 - no event tells this process that its parent died
            await asyncio.sleep(every_s)
    else:
        loop = asyncio.get_running_loop()
        gone = asyncio.Event()
        try:
            loop.add_reader(fd, gone.set)
            try:
                if os.getppid() == parent:  # the pid may have been reused before it was opened
                    await gone.wait()
            finally:
                loop.remove_reader(fd)
        finally:
            os.close(fd)
    _log.error("proxy_parent_gone", parent=parent, detail="the supervising process died; this worker stops")
    stop.set()


def _addresses(runner: web.AppRunner) -> list[str]:
    out = []
    for address in runner.addresses:
        if isinstance(address, str):  # a unix socket
            out.append(address)
            continue
        host, port = address[0], address[1]
        out.append(f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}")
    return out
