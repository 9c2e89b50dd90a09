"""`python -m imageservice` as a user runs it: serve, reconcile and init-aws, in subprocesses."""

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

from imageservice.adapters.aws import AwsSettings

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESERVICE_", "OPENAI_"))}
    return {**env, "IMAGESERVICE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), **extra}


def test_python_dash_m_imageservice_serves_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "imageservice", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        for _ in range(200):  # bounded: up to ~20 s for a cold start on a busy machine
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = json.loads(response.read())
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert body == {"status": "ok"}, process.stderr.read().decode() if process.poll() is not None else ""
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(line.get("service") == "imageservice" and line.get("path") == "/healthz" for line in lines)


def test_reconcile_dry_run_reports_orphans_and_then_removes_them(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    orphan = images / ("img_" + "d" * 32 + "_0.png")
    orphan.write_bytes(b"left behind")
    command = [sys.executable, "-m", "imageservice", "reconcile", "--min-age-s", "0"]

    dry = subprocess.run(
        [*command, "--dry-run"], env=env_for(tmp_path), capture_output=True, timeout=60, check=True
    )
    report = json.loads(dry.stdout)
    assert report["orphans"] == [orphan.name]
    assert {"broken_generations", "dangling_keys", "abandoned_claims", "freed_keys"} <= report.keys()
    assert orphan.exists()

    real = subprocess.run(command, env=env_for(tmp_path), capture_output=True, timeout=60, check=True)
    assert json.loads(real.stdout)["removed"] == [orphan.name]
    assert not orphan.exists()


def test_init_aws_creates_the_bucket_and_table_once(tmp_path: Path, aws_settings: AwsSettings) -> None:
    env = env_for(
        tmp_path,
        AWS_ENDPOINT_URL=str(aws_settings.endpoint_url),
        IMAGESERVICE_S3_BUCKET="fresh-bucket",
        IMAGESERVICE_DYNAMODB_TABLE="fresh-table",
    )
    command = [sys.executable, "-m", "imageservice", "init-aws"]

    first = subprocess.run(command, env=env, capture_output=True, timeout=60, check=True)
    second = subprocess.run(command, env=env, capture_output=True, timeout=60, check=True)

    assert json.loads(first.stdout) == {"created": ["s3://fresh-bucket", "dynamodb:fresh-table"]}
    assert json.loads(second.stdout) == {"created": []}


def test_bad_settings_stop_the_service_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imageservice", "serve", "--port", "1"],
        env=env_for(tmp_path, IMAGESERVICE_GENERATOR="dalle"),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"IMAGESERVICE_GENERATOR" in result.stderr
