"""`make run` itself (not only its Procfile) gives the three services one generated shadow key: the
proxy signs its copies, and both services verify them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

from tests.e2e.conftest import REPO, free_port, stack_env, wait_until_up


def test_make_run_generates_one_key_for_all_three(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("legacy", "imageservice", "proxy", "admin")}
    key_file = tmp_path / "shadow.key"
    env = stack_env(tmp_path, ports)
    log = tmp_path / "make-run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"SHADOW_KEY_FILE={key_file}",
             f"ADMIN_TOKEN_FILE={tmp_path / 'admin.token'}"],
            cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        for port in (ports["legacy"], ports["imageservice"], ports["admin"]):
            wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    output = log.read_text(errors="replace")

    assert f"shadow key: {key_file} (generated)" in output
    key = key_file.read_text().strip()
    assert len(key) == 64
    assert int(key, 16) >= 0  # hex
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key not in output  # printed nowhere
    assert '"shadow_marker": "verified"' in output  # the monolith stub has the key
    assert "shadow_marker_ignored" not in output  # so has the image service
    assert "shadow_copies_unsigned" not in output  # and the proxy
