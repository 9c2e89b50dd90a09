"""`python -m strangler_common.devurls [--token-file PATH]`: what `make run` prints before it starts the
stack, how to reach each part of it, like Jupyter prints its URL.

With --token-file, makes sure PATH holds an admin token (generated once, mode 0600, 64 hex digits, like
the shadow key: strangler_common/devkey.py) and prints the console URL with it
(`http://127.0.0.1:8089/console?token=...`): opening it logs in and the console drops the token from the
address bar. Without it (the token is yours: STRANGLER_ADMIN_TOKEN[_FILE]) the URL carries no token. The
ports are make run's (PROXY_PORT, PROXY_ADMIN_PORT), read here because this is a command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from strangler_common.devkey import ensure_key

__all__ = ["banner", "main"]


def banner(environ: Mapping[str, str], token: str | None, token_file: Path | None) -> str:
    proxy = f"http://127.0.0.1:{environ.get('PROXY_PORT') or 8080}"
    admin = f"http://127.0.0.1:{environ.get('PROXY_ADMIN_PORT') or 8089}"
    console = f"{admin}/console?token={token}" if token else f"{admin}/console  (log in with your token)"
    bearer = f"$(cat {token_file})" if token_file else "$STRANGLER_ADMIN_TOKEN"
    return "\n".join([
        "",
        f"  storefront   {proxy}/",
        f"  console      {console}",
        f'  admin API    curl -H "Authorization: Bearer {bearer}" {admin}/routes',
        f"  metrics      {admin}/metrics",
        "",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m strangler_common.devurls")
    parser.add_argument("--token-file", type=Path, default=None, help="the admin token, generated if missing")
    args = parser.parse_args(argv)
    token = None
    if args.token_file is not None:
        made = ensure_key(args.token_file)
        token = args.token_file.read_text(encoding="utf-8").strip()
        print(f"admin token: {args.token_file} ({'generated' if made else 'kept'})", file=sys.stderr)
    print(banner(os.environ if environ is None else environ, token, args.token_file), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
