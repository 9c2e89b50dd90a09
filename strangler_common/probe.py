"""A container health probe: `python -m strangler_common.probe URL` exits 0 when URL answers 200.

Used by the Dockerfiles' HEALTHCHECK (slim images ship no curl). Loopback URLs only in practice; no
retries (Docker's HEALTHCHECK retries), a short timeout so a hung server counts as unhealthy.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

TIMEOUT_S = 2.0


def probe(url: str, *, timeout_s: float = TIMEOUT_S) -> bool:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked above
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m strangler_common.probe URL", file=sys.stderr)
        return 2
    try:
        healthy = probe(args[0])
    except ValueError as exc:
        print(f"probe: {exc}", file=sys.stderr)
        return 2
    if not healthy:
        print(f"probe: {args[0]} is not healthy", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
