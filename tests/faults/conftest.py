"""Fixtures of the fault suite: moto in server mode, a fault proxy in front of it, a fake OpenAI that
holds its answer until the test lets it go, and the image service as a real process
(`python -m imageservice serve` on a free port), all on 127.0.0.1.

Everything the tests talk to runs in its own thread or process, so the tests themselves are plain
blocking code (urllib, subprocess, boto3). Every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from imageservice.adapters.aws import AwsClients, AwsSettings, init_aws
from imageservice.adapters.local_generator import paint
from imageservice.domain.model import Size
from tests.faults.faultproxy import ThreadedFaultProxy

ROOT = Path(__file__).resolve().parents[2]
# The code the service processes run: this checkout, or another one (say, the commit before a fix)
# to watch these tests fail on it: FAULTS_SERVICE_ROOT=/tmp/old pytest tests/faults
SERVICE_ROOT = Path(os.environ.get("FAULTS_SERVICE_ROOT") or ROOT)
BUCKET, TABLE = "fault-images", "fault-imageservice"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Faults are felt fast (1 s connect, 2 s read, 2 attempts) and settled fast (0.1 s backoff doubling to
# 0.5 s, 60 attempts: ~30 s of patience). Production defaults are in imageservice/README.md.
FAST = {
    "IMAGESERVICE_AWS_CONNECT_TIMEOUT_S": "1",
    "IMAGESERVICE_AWS_READ_TIMEOUT_S": "2",
    "IMAGESERVICE_AWS_MAX_ATTEMPTS": "2",
    "IMAGESERVICE_AWS_MAX_WORKERS": "4",
    "IMAGESERVICE_SETTLE_BACKOFF_S": "0.1",
    "IMAGESERVICE_SETTLE_MAX_BACKOFF_S": "0.5",
    "IMAGESERVICE_SETTLE_ATTEMPTS": "60",
    "IMAGESERVICE_SHUTDOWN_SETTLE_S": "1",
}
BOTO_ATTEMPTS = int(FAST["IMAGESERVICE_AWS_MAX_ATTEMPTS"])
PATIENCE_S = 30.0  # the bound of every "eventually": far beyond the settle backoff, never a threshold


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ HTTP, blocking


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def http(method: str, url: str, payload: Any = None, headers: dict[str, str] | None = None) -> Reply:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE_S) as response:  # noqa: S310 - loopback only
            status, raw, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, head = exc.code, exc.read(), dict(exc.headers)
    is_json = head.get("Content-Type", "").startswith("application/json")
    return Reply(status, json.loads(raw) if is_json else raw, head)


# ------------------------------------------------------------------ the image service, a real process


@dataclass
class Service:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imageservice", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            cwd=SERVICE_ROOT,  # `python -m` puts the working directory first on sys.path
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,  # read by a thread: a pipe never blocks the service, a file could fail
        )
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the service exited: {self.log_lines[-5:]}"
            try:
                if http("GET", f"{self.url}/healthz").status == 200:
                    return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise AssertionError("the service did not come up")

    def _collect(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith(b"{"):
                self.log_lines.append(json.loads(line))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=PATIENCE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill(self) -> None:
        """A crash: no shutdown, no draining, nothing settled."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def post(self, key: str | None, prompt: str = "a lighthouse", n: int = 2) -> Reply:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return http("POST", f"{self.url}/api/images", {"prompt": prompt, "n": n, "size": "256x256"}, headers)

    def metric(self, name: str, **labels: str) -> float:
        text = http("GET", f"{self.url}/metrics").body.decode()
        wanted = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        )
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines if line.get("event") == name]


def settled(service: Service, key: str, **request: Any) -> Reply:
    """A client retrying with the same key while it hears 409 or 503, as clients do: the first other
    answer, or the last one once PATIENCE_S has passed (a bound for a failing test, not a threshold)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        reply = service.post(key, **request)
        if reply.status not in (409, 503) or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def assert_files_served(service: Service, reply: Reply) -> None:
    """No 201 whose files 404: every image of the answer is served, byte for byte."""
    assert reply.status == 201, reply.body
    for image in reply.body["images"]:
        file = http("GET", service.url + image["url"])
        assert file.status == 200, f"{image['url']} answered {file.status}"
        assert hashlib.sha256(file.body).hexdigest() == image["sha256"]


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not check():
        assert time.monotonic() < deadline, f"not within {PATIENCE_S} s: {what}"
        time.sleep(0.1)


ServiceFactory = Callable[[dict[str, str]], Service]


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGESERVICE_", "OPENAI_", "AWS_"))}
    return {**env, "PYTHONPATH": str(SERVICE_ROOT), "IMAGESERVICE_DATA_DIR": str(data_dir), **FAST, **extra}


@pytest.fixture
def serve() -> Iterator[ServiceFactory]:
    started: list[Service] = []

    def start(env: dict[str, str]) -> Service:
        service = Service(env)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


# ------------------------------------------------------------------ AWS: moto, and the fault proxy in front


@pytest.fixture
def moto(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """A clean moto with the bucket and the table; the clients talk to moto directly, never through
    the fault proxy, so the tests can look at the stores whatever fault is on."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    reset = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback
    urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 - loopback moto only
    clients = AwsClients(AwsSettings(bucket=BUCKET, table=TABLE, endpoint_url=moto_endpoint, max_workers=2))
    init_aws(clients)
    yield clients
    clients.close()


@pytest.fixture
def faults(moto_endpoint: str) -> Iterator[ThreadedFaultProxy]:
    with ThreadedFaultProxy(moto_endpoint, max_hold_s=PATIENCE_S) as proxy:
        yield proxy


def aws_env(tmp_path: Path, proxy: ThreadedFaultProxy, **extra: str) -> dict[str, str]:
    return base_env(
        tmp_path,
        IMAGESERVICE_STORAGE="aws",
        AWS_ENDPOINT_URL=proxy.endpoint,
        IMAGESERVICE_S3_BUCKET=BUCKET,
        IMAGESERVICE_DYNAMODB_TABLE=TABLE,
        **AWS_ENV,
        **extra,
    )


# ------------------------------------------------------------------ a fake OpenAI that answers when told


class GatedOpenAI:
    """POST /v1/images/generations: records that a generation started, waits (bounded) until the test
    opens the gate, then answers like GPT image models do (base64 1024x1024 PNGs)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        png = base64.b64encode(paint("fake openai", 0, Size(1024, 1024))).decode()
        gated = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                gated.started.set()
                gated.gate.wait(PATIENCE_S)
                body = json.dumps({"created": 1, "data": [{"b64_json": png}] * int(payload.get("n", 1))})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {
            "IMAGESERVICE_GENERATOR": "openai",
            "OPENAI_API_KEY": "sk-fault-suite",
            "OPENAI_BASE_URL": self.base_url,
        }

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated_openai() -> Iterator[GatedOpenAI]:
    fake = GatedOpenAI()
    yield fake
    fake.close()
