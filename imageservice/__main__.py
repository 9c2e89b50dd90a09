"""Command line of the image service; the only module that reads argv, and (with the Lambda
handler, entrypoints/lambda_handler.py) the only one that reads the environment.

imageservice [serve] [--host H] [--port P]     serve the image API (the default command)
imageservice init-aws                          create the S3 bucket and DynamoDB table if missing
imageservice reconcile [--dry-run]             repair (or list) what blobs, records and keys disagree on
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict

from imageservice.settings import Settings, SettingsError
from strangler_common.logs import configure_logging
from strangler_common.web import run

__all__ = ["main"]

_COMMANDS = {"serve", "init-aws", "reconcile"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imageservice", description="The extracted image service.")
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the image API (default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8082)
    commands.add_parser("init-aws", help="create the S3 bucket and the DynamoDB table when missing")
    reconcile = commands.add_parser(
        "reconcile",
        help="remove blobs no generation references, generations whose blobs are missing (and their keys), "
        "and free keys whose holder is gone",
    )
    reconcile.add_argument("--dry-run", action="store_true", help="only report what would be repaired")
    reconcile.add_argument(
        "--min-age-s",
        type=float,
        default=3600.0,
        help="skip blobs and generations younger than this: a running request may not have finished yet",
    )
    reconcile.add_argument(
        "--stale-claim-s",
        type=float,
        default=None,
        help="free in-progress keys claimed longer ago than this whose request left nothing behind "
        "(default: only keys past IMAGESERVICE_IN_PROGRESS_TTL_S)",
    )
    return parser


def _with_default_command(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    first_command = next((i for i, arg in enumerate(args) if not arg.startswith("-")), None)
    if first_command is None or args[first_command] not in _COMMANDS:
        # `--log-level X` takes a value; everything else given before a command belongs to serve.
        if args[:1] == ["--log-level"]:
            return [*args[:2], "serve", *args[2:]]
        return ["serve", *args]
    return args


async def _reconcile(
    settings: Settings, *, dry_run: bool, min_age_s: float, stale_claim_s: float | None
) -> dict[str, object]:
    from imageservice.bootstrap import build

    async with build(settings) as container:
        report = await container.service.reconcile(
            dry_run=dry_run, min_age_s=min_age_s, stale_claim_s=stale_claim_s
        )
    return {"dry_run": dry_run, **asdict(report)}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
    configure_logging("imageservice", level=args.log_level)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"imageservice: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from imageservice.entrypoints.http import create_app

        run(create_app(settings), host=args.host, port=args.port)
        return 0
    if args.command == "init-aws":
        from imageservice.adapters.aws import AwsClients, init_aws
        from imageservice.bootstrap import aws_settings

        clients = AwsClients(aws_settings(settings))
        try:
            created = init_aws(clients)
        finally:
            clients.close()
        print(json.dumps({"created": created}))
        return 0
    report = asyncio.run(
        _reconcile(
            settings, dry_run=args.dry_run, min_age_s=args.min_age_s, stale_claim_s=args.stale_claim_s
        )
    )
    print(json.dumps(report))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
