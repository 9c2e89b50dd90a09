"""The proxy's command line: serve | validate | show. The only place that reads argv and env.

  strangler-proxy serve --config routes.yaml [--host 0.0.0.0] [--port 8080]
                        [--admin-host 127.0.0.1] [--admin-port 8089] [--log-level INFO]
                        [--workers N]   N pre-forked processes on one SO_REUSEPORT port (proxy/workers.py)
                        [--reload-settle-s S]   an edited routes.yaml goes live once unchanged S s (2)
  strangler-proxy validate routes.yaml     exit 0 + one-line summary, or exit 1 + every error
  strangler-proxy show routes.yaml [--format yaml|json]   the config with every default filled in

The admin token comes from STRANGLER_ADMIN_TOKEN, or from the file named by
STRANGLER_ADMIN_TOKEN_FILE (a mounted secret); never from argv, where `ps` would show it. The key that
signs shadow copies comes the same way from STRANGLER_SHADOW_KEY / STRANGLER_SHADOW_KEY_FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence

import yaml

from proxy.config import Config, ConfigError, load_config
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
        "--workers", type=_positive, default=1, metavar="N",
        help="worker processes (default 1). N > 1 pre-forks N processes that share the public port "
        "through SO_REUSEPORT (the kernel spreads connections); each worker has its own admin listener "
        "on --admin-port + i (i = 0..N-1) with its own metrics, so scrape all N; SIGHUP to the parent "
        "reloads every worker, POST /reload only the worker it reaches (the others follow the file)",
    )  # fmt: skip
    serve.add_argument(
        "--reload-settle-s", type=_seconds, default=2.0, metavar="S",
        help="an edit of routes.yaml made in place goes live only once its content has stayed the same "
        "for S seconds (default 2.0), so a half-written file never does; a file renamed into place (mv "
        "after validate, a Kubernetes ConfigMap's symlink swap) goes live at once, which is why writing "
        "it by rename is the right way; SIGHUP and POST /reload apply at once; 0 turns the wait off",
    )  # fmt: skip
    validate = commands.add_parser("validate", help="check a routes.yaml; exit 1 listing every error")
    validate.add_argument("path")
    show = commands.add_parser("show", help="print a routes.yaml with every default filled in")
    show.add_argument("path")
    show.add_argument("--format", choices=("yaml", "json"), default="yaml")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of seconds from 0 to 3600")
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
    configure_logging("proxy", level=args.log_level)
    try:
        if args.workers > 1:
            from proxy import workers
            return int(workers.serve_workers(
                args.workers, config_path=args.config, host=args.host, port=args.port,
                admin_host=args.admin_host, admin_port=args.admin_port, admin_token=token, shadow_key=key,
                reload_settle_s=args.reload_settle_s,
            ))  # fmt: skip
        server.serve(config_path=args.config, host=args.host, port=args.port,
                     admin_host=args.admin_host, admin_port=args.admin_port, admin_token=token,
                     shadow_key=key, reload_settle_s=args.reload_settle_s)
    except ConfigError as error:
        return _print_errors(error)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
