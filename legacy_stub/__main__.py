"""Command line: `python -m legacy_stub --host H --port P` (console script `legacy-stub`).

The only place that reads argv and the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import structlog

from legacy_stub.app import create_app
from legacy_stub.settings import DELAY_ENV, Settings, SettingsError
from strangler_common.logs import configure_logging
from strangler_common.web import run

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="legacy-stub",
        description=f"The legacy monolith stand-in. {DELAY_ENV} sets the seconds per image (default 2.0).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="default INFO",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("legacy", level=args.log_level)
    log = structlog.get_logger("legacy")
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        log.error("invalid_settings", error=str(exc))  # stderr stays JSON lines, even for this
        return 2
    log.info("starting", host=args.host, port=args.port, image_delay_s=settings.image_delay_s,
             shadow_marker="verified" if settings.shadow_key else "ignored (no STRANGLER_SHADOW_KEY)")
    run(create_app(settings), host=args.host, port=args.port)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
