"""The controller's command line: `strangler-proxy rollout ...`, also `python -m proxy.controller ...`.

  rollout run (--config routes.yaml | --target configmap:NAMESPACE/NAME) --prometheus URL
              [--listen 127.0.0.1:8090] [--log-level INFO]
  rollout status [--json] [--controller URL]
  rollout promote|pause|resume|abort|restart ROUTE [--reason TEXT] [--controller URL]

Owns: main(argv) -> exit code (0 done, 1 refused or failed, 2 a usage error), building the controller for
`run`, the status table, and the HTTP calls of the other commands to the controller's listener (default
http://127.0.0.1:8090, the default of `run --listen`). The token is the admin listener's: from
STRANGLER_ADMIN_TOKEN or the file named by STRANGLER_ADMIN_TOKEN_FILE, never from argv (`ps` shows argv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from proxy.controller.commands import ACTIONS
from proxy.controller.listener import create_controller_app
from proxy.controller.loop import Controller, ControllerError
from proxy.controller.metrics import ControllerMetrics
from proxy.controller.prometheus import Prometheus
from proxy.controller.rollouts import Rollouts
from proxy.controller.target import parse_target
from strangler_common.envsecret import SecretError, read_secret
from strangler_common.logs import configure_logging
from strangler_common.web import run as serve

__all__ = ["DEFAULT_CONTROLLER", "DEFAULT_LISTEN", "main", "status_table"]

DEFAULT_LISTEN = "127.0.0.1:8090"
DEFAULT_CONTROLLER = f"http://{DEFAULT_LISTEN}"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
TOKEN_ENV = "STRANGLER_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a token


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The progressive-delivery controller.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the controller: analyses, the routes file, the listener")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", metavar="ROUTES_YAML", help="the routes file the proxies watch")
    where.add_argument("--target", metavar="configmap:NS/NAME", help="or a Kubernetes ConfigMap (or a path)")
    run.add_argument("--prometheus", required=True, metavar="URL", help="e.g. http://127.0.0.1:9090")
    run.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                     help=f"status, commands and metrics (default {DEFAULT_LISTEN})")  # fmt: skip
    run.add_argument("--log-level", default="INFO", type=str.upper,
                     choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))  # fmt: skip
    status = commands.add_parser("status", help="every route's rollout: phase, step, percent, last verdict")
    status.add_argument("--json", action="store_true", help="the listener's JSON as it is")
    status.add_argument("--controller", default=DEFAULT_CONTROLLER, metavar="URL")
    for action in ACTIONS:
        command = commands.add_parser(action, help=f"{action} one route's rollout, now")
        command.add_argument("route")
        command.add_argument("--reason", default="", help="said in the log and the state (pause, abort)")
        command.add_argument("--controller", default=DEFAULT_CONTROLLER, metavar="URL")
    return parser


def main(
    argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
    prog: str = "strangler-proxy rollout",
) -> int:  # fmt: skip
    args = _parser(prog).parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        token = read_secret(env, TOKEN_ENV)
    except SecretError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        return _run(args, token, prog)
    if args.command == "status":
        return asyncio.run(_status(args.controller, token, as_json=args.json))
    return asyncio.run(_command(args.controller, token, args.command, args.route, args.reason))


def _run(args: argparse.Namespace, token: str | None, prog: str) -> int:
    try:
        target = parse_target(args.target or args.config)
        host, port = _address(args.listen)
    except ValueError as exc:
        print(f"{prog} run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging("rollout-controller", level=args.log_level)
    rollouts = Rollouts(target)
    metrics = ControllerMetrics(CollectorRegistry(), rollouts.states)
    controller = Controller(rollouts, Prometheus(args.prometheus), metrics)
    structlog.get_logger("proxy.controller").info(
        "rollout_controller_starting", target=target.description, prometheus=args.prometheus,
        listen=args.listen, commands="on" if token else "off: no STRANGLER_ADMIN_TOKEN",
    )  # fmt: skip
    try:
        serve(create_controller_app(controller, token=token), host=host, port=port)
    except ControllerError as exc:
        print(f"{prog} run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _address(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not (colon and host and port.isdigit() and int(port) < 65536):
        raise ValueError(f"--listen {listen!r}: HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]"), int(port)


async def _call(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, {"error": {"code": "not_json", "message": text[:200]}}


async def _ask(
    method: str, controller: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any] | None:
    try:
        return await _call(method, controller.rstrip("/") + path, token, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"cannot reach the controller at {controller}: {exc or type(exc).__name__} (is `rollout run` "
              "listening there? --controller URL names another)", file=sys.stderr)  # fmt: skip
        return None


def _failed(status: int, body: Any, doing: str) -> int:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    print(f"{doing}: HTTP {status} {error.get('code', '')}: {error.get('message', body)}", file=sys.stderr)
    return EXIT_FAILED


async def _status(controller: str, token: str | None, *, as_json: bool) -> int:
    answer = await _ask("GET", controller, "/status", token)
    if answer is None:
        return EXIT_FAILED
    status, body = answer
    if status != 200:
        return _failed(status, body, "status")
    print(json.dumps(body, indent=2) if as_json else status_table(body))
    return EXIT_OK


async def _command(controller: str, token: str | None, action: str, route: str, reason: str) -> int:
    body = {"reason": reason} if reason else None
    answer = await _ask("POST", controller, f"/routes/{route}/{action}", token, body)
    if answer is None:
        return EXIT_FAILED
    status, body = answer
    if status != 200:
        return _failed(status, body, f"{action} {route}")
    paused = f" ({body['paused_by']})" if body.get("paused_by") else ""
    print(f"{route}: {action}: {body['phase']}{paused} at {body['percent']:g} %, "
          f"steps {_steps(body['steps'], body['step'])} — {body['reason']}")  # fmt: skip
    return EXIT_OK


def _steps(steps: list[Any], index: int) -> str:
    shown = [step if step == "pause" else f"{step:g}" for step in steps]
    if 0 <= index < len(shown):
        shown[index] = f"[{shown[index]}]"
    return " ".join(shown)


def status_table(body: Mapping[str, Any], *, reason_width: int = 90) -> str:
    """The human form of GET /status: one line per route, the current step in brackets."""
    prometheus = body.get("prometheus", {})
    reachable = "reachable" if prometheus.get("reachable") else "UNREACHABLE"
    lines = [f"target {body.get('target')}, prometheus {prometheus.get('url')} ({reachable})"]
    routes = body.get("routes", [])
    if not routes:
        return lines[0] + "\nno route has a progressive block"
    rows = [("ROUTE", "PHASE", "PERCENT", "STEPS", "LAST", "REASON")]
    for route in routes:
        phase = route["phase"] + (f":{route['paused_by']}" if route.get("paused_by") else "")
        last = (route.get("last_analysis") or {}).get("result", "-")
        reason = route["reason"]
        if len(reason) > reason_width:
            reason = reason[: reason_width - 1] + "…"
        steps = _steps(route["steps"], route["step"])
        rows.append((route["route"], phase, f"{route['percent']:g}", steps, last, reason))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]  # the reason, last, is not padded
    lines += ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[5]])
              for row in rows]  # fmt: skip
    return "\n".join(lines)
