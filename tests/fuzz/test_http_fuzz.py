"""A raw-socket fuzzer of malformed HTTP against a running proxy process (`python -m proxy serve`).

Whatever arrives, the proxy answers with a well-formed HTTP/1.x response or closes the connection: never
a 500 of its own, never a stack trace, and the process is still serving at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
BOOT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + BOOT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass
class Running:
    port: int
    proxy: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    upstream_port, port, admin_port = free_port(), free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.proxy.fake_upstream", "--name", "legacy", "--port",
         str(upstream_port)], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    config = tmp_path_factory.mktemp("fuzz") / "routes.yaml"
    doc = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
    for upstream_spec in doc["upstreams"].values():
        upstream_spec["url"] = f"http://127.0.0.1:{upstream_port}"
    doc["limits"].update({"client_read_timeout_s": 0.3, "max_url_bytes": 2048, "max_header_bytes": 4096})
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    proxy = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port), "--admin-host", "127.0.0.1", "--admin-port", str(admin_port),
         "--log-level", "WARNING"],
        cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port(upstream_port)
        wait_for_port(port)
        yield Running(port, proxy)
    finally:
        for process in (proxy, upstream):
            process.kill()
            process.wait(timeout=BOOT_S)
    assert proxy.stderr is not None
    log = proxy.stderr.read()
    assert b"Traceback" not in log
    assert b"proxy_failed" not in log


def exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read until the proxy closes, answers completely, or 2 s pass."""
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        try:
            sock.sendall(data)
        except OSError:
            return b""  # the proxy closed first: an answer too
        received = b""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            received += chunk
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
        return received


def check(answer: bytes) -> None:
    assert b"Traceback" not in answer
    if not answer:
        return
    assert answer.startswith(b"HTTP/1."), answer[:80]
    status = int(answer.split(b" ", 2)[1])
    assert status != 500, answer[:300]


tokens = st.sampled_from([
    b"GET", b"POST", b"HEAD", b"CONNECT", b"PUT", b"BREW", b"G\x00T", b"", b"get", b"OPTIONS", b"PRI",
])  # fmt: skip
targets = st.one_of(
    st.sampled_from([b"/api/images", b"/api/images/leg_1", b"/api/images/img_1", b"/", b"*",
                     b"http://169.254.169.254/latest", b"example.com:443", b"/api/images/..%2f..%2f",
                     b"/%2e%2e/api/images", b"//api//images", b"/api/images?x=\xff", b"/a b"]),
    st.binary(max_size=40).map(lambda b: b"/" + b),
)  # fmt: skip
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 extra", b"HTTP/9", b""])
header_lines = st.sampled_from([
    b"Host: example.test", b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 99999999999999",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding:  chunked",
    b"Content-Length: 3\r\nContent-Length: 4", b"Expect: 100-continue", b"Connection: upgrade",
    b"Upgrade: websocket", b"X-Forwarded-For: 10.0.0.1", b"X-Forwarded-Host: evil.test", b" folded",
    b"Bad Header: x", b"X-Nul: a\x00b", b"X-Id: \xff\xfe", b"Connection: close", b"X-Request-ID: \n",
]) | st.binary(max_size=30)  # fmt: skip
bodies = st.sampled_from([b"", b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n"]) | st.binary(
    max_size=64
)


@FUZZ
@given(method=tokens, target=targets, version=versions, headers=st.lists(header_lines, max_size=6),
       body=bodies)  # fmt: skip
def test_malformed_requests_never_crash_the_proxy_or_get_a_500(
    running: Running, method: bytes, target: bytes, version: bytes, headers: list[bytes], body: bytes
) -> None:
    data = method + b" " + target + b" " + version + b"\r\n" + b"".join(h + b"\r\n" for h in headers)
    check(exchange(running.port, data + b"\r\n" + body))
    assert running.proxy.poll() is None


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash_the_proxy_or_get_a_500(running: Running, data: bytes) -> None:
    check(exchange(running.port, data))
    assert running.proxy.poll() is None


def test_the_proxy_still_serves_after_the_fuzzing(running: Running) -> None:
    answer = exchange(running.port, b"GET /api/catalog HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
