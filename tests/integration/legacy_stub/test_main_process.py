"""`python -m legacy_stub --port P` really serves, logs JSON lines on stderr, and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only
        status: int = response.status
        return status, response.read()


def post_json(url: str, payload: object, *, request_id: str) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
        status: int = response.status
        return status, response.read()


def wait_for_health(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):  # about 10 s at most
        if process.poll() is not None:
            raise AssertionError(f"the stub exited early with {process.returncode}")
        try:
            if get(f"{base}/healthz")[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError("the stub never became healthy")


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "legacy_stub", *args],
        cwd=REPO,
        env={**os.environ, "LEGACY_IMAGE_DELAY_S": "0", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def json_lines(stderr: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]


def test_the_module_serves_on_the_given_port_and_logs_json_lines_then_exits_cleanly() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start("--host", "127.0.0.1", "--port", str(port))
    try:
        wait_for_health(base, process)
        status, page = get(f"{base}/", headers={"X-Request-ID": "subprocess-probe-1"})
        assert status == 200
        assert b"<!doctype html>" in page
        status, body = post_json(
            f"{base}/api/images", {"prompt": "logged", "size": "256x256"}, request_id="subprocess-image-1"
        )
        assert status == 201
        assert json.loads(body)["images"][0]["width"] == 256
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise

    assert process.returncode == 0
    lines = json_lines(stderr)
    assert lines
    for line in lines:
        assert {"timestamp", "level", "service", "event"} <= set(line), line
        assert line["service"] == "legacy"
    access = [line for line in lines if line["event"] == "request" and line.get("path") == "/"]
    assert len(access) == 1
    assert access[0]["request_id"] == "subprocess-probe-1"
    assert access[0]["method"] == "GET"
    assert access[0]["status"] == 200
    assert "duration_ms" in access[0]
    assert any(line["event"] == "starting" and line["port"] == port for line in lines)
    # The single worker paints in its own task; its lines still carry the id of the request served.
    [painted] = [line for line in lines if line["event"] == "generation_painted"]
    assert painted["request_id"] == "subprocess-image-1"
    assert (painted["n"], painted["width"], painted["height"]) == (1, 256, 256)


def test_a_bad_delay_in_the_environment_stops_the_stub_with_a_clear_message() -> None:
    process = start("--port", str(free_port()), env={"LEGACY_IMAGE_DELAY_S": "soon"})

    _, stderr = process.communicate(timeout=15)

    assert process.returncode == 2
    [line] = [line for line in json_lines(stderr) if line["event"] == "invalid_settings"]
    assert line["level"] == "error"
    assert "LEGACY_IMAGE_DELAY_S" in line["error"]
