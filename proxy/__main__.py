"""The proxy's command line: serve | validate | show. The only place that reads argv and env.

  strangler-proxy serve --config routes.yaml [--host 0.0.0.0] [--port 8080]
                        [--admin-host 127.0.0.1] [--admin-port 8089] [--log-level INFO]
                        [--workers auto|N]   N worker processes on one port, one admin port (proxy/workers.py)
                        [--reload-settle-s S]   an edited routes.yaml goes live once unchanged S s (2)
                        [--access-log-flush-ms MS]   access lines are written in batches at most MS old (100)
  strangler-proxy validate routes.yaml     exit 0 + one-line summary, or exit 1 + every error
  strangler-proxy show routes.yaml [--format yaml|json]   the config with every default filled in
  strangler-proxy rollout run|status|promote|pause|resume|abort|restart ...   progressive delivery
                        (the controller and its commands: proxy/controller/cli.py, docs/controller.md)

The admin token comes from STRANGLER_ADMIN_TOKEN, or from the file named by
STRANGLER_ADMIN_TOKEN_FILE (a mounted secret); never from argv, where `ps` would show it. The key that
signs shadow copies comes the same way from STRANGLER_SHADOW_KEY / STRANGLER_SHADOW_KEY_FILE.
STRANGLER_CONTROLLER_URL (e.g. http://127.0.0.1:8090), when set, is the progressive controller's listener:
the migration console on the admin listener shows each rollout's phase and offers its commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
import yaml

from proxy.config import Config, ConfigError, load_config
from proxy.cpus import MAX_WORKERS, usable_cpus
from strangler_common.envsecret import SecretError, read_secret, shadow_key
from strangler_common.logs import configure_logging

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary(path: str, config: Config) -> str:
    """'routes.yaml: OK — 1 route, 2 upstreams, images 25%'."""
    parts = [_count(len(config.routes), "route"), _count(len(config.upstreams), "upstream")]
    for route in config.routes:
        if route.rollout is not None:
            parts.append(f"{route.name} {route.rollout.percent:g}%")
        else:
            parts.append(f"{route.name} → {route.primary}")
    return f"{path}: OK — " + ", ".join(parts)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strangler-proxy", description="The strangler-fig reverse proxy.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the proxy and its admin listener")
    serve.add_argument("--config", required=True, help="path to routes.yaml")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--admin-host", default="127.0.0.1")
    serve.add_argument("--admin-port", type=int, default=8089)
    serve.add_argument("--log-level", default="INFO", type=str.upper,
                       choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    serve.add_argument(
        "--workers", type=_workers, default=1, metavar="auto|N",
        help="worker processes: auto = one per CPU this process may use (its CPU affinity, within its "
        "cgroup's CPU quota), or N from 1 to 64. Default 1: one process, no supervisor, which is what a "
        "developer machine wants (one process to debug, the cores left to the upstreams beside it); the "
        "container images and the Kubernetes manifests pass auto. With more than one, N processes share "
        "the public port through SO_REUSEPORT (the kernel spreads connections) and one admin listener on "
        "--admin-port answers for all: /metrics covers every worker, POST /reload and SIGHUP reach every "
        "worker; a worker that dies is replaced, a crash loop (a 6th restart of one worker within 60 s) "
        "stops the proxy with exit 1",
    )  # fmt: skip
    # Set by the parent of --workers N for each worker it starts (proxy/workers.py); not for people.
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--admin-socket", default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--reload-settle-s", type=_seconds, default=2.0, metavar="S",
        help="an edit of routes.yaml made in place goes live only once its content has stayed the same "
        "for S seconds (default 2.0), so a half-written file never does; a file renamed into place (mv "
        "after validate, a Kubernetes ConfigMap's symlink swap) goes live at once, which is why writing "
        "it by rename is the right way; SIGHUP and POST /reload apply at once; 0 turns the wait off",
    )  # fmt: skip
    serve.add_argument(
        "--access-log-flush-ms", type=_milliseconds, default=100, metavar="MS",
        help="the access log (one JSON line per request, on stderr) is written in batches, like Envoy's and "
        "nginx's buffered access logs: a line waits at most MS milliseconds (default 100), a batch of 64 KiB "
        "goes at once, and the proxy writes what is left when it stops (SIGTERM, SIGINT); a hard kill "
        "(SIGKILL, OOM) loses at most the last MS milliseconds of lines. Every write is whole lines of at "
        "most PIPE_BUF (4096) bytes, so the lines of --workers sharing one stderr never mix. 0 writes each "
        "line at once (a write per request), at most 10000",
    )  # fmt: skip
    validate = commands.add_parser("validate", help="check a routes.yaml; exit 1 listing every error")
    validate.add_argument("path")
    show = commands.add_parser("show", help="print a routes.yaml with every default filled in")
    show.add_argument("path")
    show.add_argument("--format", choices=("yaml", "json"), default="yaml")
    return parser


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be auto or a number from 1 to 64") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError("must be auto or a number from 1 to 64")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of seconds from 0 to 3600")
    return value


def _milliseconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of milliseconds from 0 to 10000") from None
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be a whole number of milliseconds from 0 to 10000")
    return value


def admin_token(environ: Mapping[str, str]) -> str | None:
    """STRANGLER_ADMIN_TOKEN, or the contents of STRANGLER_ADMIN_TOKEN_FILE; None when neither is set."""
    try:
        return read_secret(environ, "STRANGLER_ADMIN_TOKEN")
    except SecretError as exc:
        raise SystemExit(str(exc)) from None


def signing_key(environ: Mapping[str, str]) -> bytes | None:
    """STRANGLER_SHADOW_KEY, or the contents of STRANGLER_SHADOW_KEY_FILE: signs the shadow marker."""
    try:
        return shadow_key(environ)
    except SecretError as exc:
        raise SystemExit(str(exc)) from None


def _print_errors(error: ConfigError) -> int:
    for line in error.errors:
        print(line, file=sys.stderr)
    return EXIT_INVALID


def _serve(args: argparse.Namespace) -> int:
    # Imported here: validate and show must work without the I/O side (and its imports).
    from proxy import server

    token = admin_token(os.environ)
    key = signing_key(os.environ)
    configure_logging("proxy", level=args.log_level, direct_flush_s=args.access_log_flush_ms / 1000)
    count = usable_cpus() if args.workers == "auto" else args.workers
    controller_url = os.environ.get("STRANGLER_CONTROLLER_URL") or None
    options: dict[str, Any] = dict(
        config_path=args.config, host=args.host, port=args.port, admin_host=args.admin_host,
        admin_port=args.admin_port, admin_token=token, shadow_key=key, reload_settle_s=args.reload_settle_s,
        controller_url=controller_url,
    )  # fmt: skip
    try:
        if args.admin_socket is not None:  # one worker of a parent's --workers N (proxy/workers.py)
            structlog.contextvars.bind_contextvars(worker=args.worker_index)
            options.update(reuse_port=True, admin_socket=args.admin_socket)
        elif count > 1:
            from proxy import workers
            plan = workers.Plan(args.config, args.host, args.port, args.log_level, args.reload_settle_s,
                                args.access_log_flush_ms)  # fmt: skip
            return workers.serve_workers(count, plan, admin_host=args.admin_host, admin_port=args.admin_port,
                                         admin_token=token, shadow_key=key, environ=os.environ,
                                         controller_url=controller_url)  # fmt: skip
        server.serve(**options)
    except ConfigError as error:
        return _print_errors(error)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["rollout"]:  # the progressive controller and its commands (proxy/controller/cli.py)
        # imported here: serve and its workers need not load the controller's half second of imports
        from proxy.controller.cli import main as rollout_main

        return rollout_main(given[1:])
    args = _parser().parse_args(given)
    if args.command == "serve":
        return _serve(args)
    try:
        loaded = load_config(args.path)
    except ConfigError as error:
        return _print_errors(error)
    if args.command == "validate":
        print(summary(args.path, loaded.config))
        return EXIT_OK
    data = loaded.config.model_dump(mode="json", by_alias=True)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
