"""`python -m strangler_common.devkey PATH`: make sure PATH holds a shadow-signing key, for `make run`.

Creates the file (mode 0600, 64 hex digits from `secrets`) only when it is missing or empty, so the
proxy and both services started together read the same key, and a restart keeps it. Prints the path,
never the key. Deployments bring their own key (docs: compose, Kubernetes, SAM).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def ensure_key(path: Path) -> bool:
    """True when a new key was written."""
    if path.exists() and path.read_text(encoding="utf-8").strip():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_hex(32) + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m strangler_common.devkey PATH", file=sys.stderr)
        return 2
    path = Path(args[0])
    made = ensure_key(path)
    print(f"shadow key: {path} ({'generated' if made else 'kept'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
