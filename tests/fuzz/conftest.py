"""The fuzz suite: bounded in `make test` (seconds); `FUZZ_EXAMPLES=2000 pytest tests/fuzz` runs it longer."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = max(1, int(os.environ.get("FUZZ_EXAMPLES", "40")))
# Each fuzz test names how much of EXAMPLES it takes; deadline off: a loaded 2-core box must not flake.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
