"""`python -m proxy.controller run|status|promote|pause|resume|abort|restart ...` (cli.py)."""

from __future__ import annotations

import sys

from proxy.controller.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m proxy.controller"))
