"""strangler_common.probe, the HEALTHCHECK of every image: 0 only for a 200 answer."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from strangler_common.probe import main


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 503
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_200_answer_is_healthy(server: str) -> None:
    assert main([f"{server}/healthz"]) == 0


def test_any_other_answer_is_unhealthy(server: str) -> None:
    assert main([f"{server}/readyz"]) == 1


def test_nothing_listening_is_unhealthy(server: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main([f"http://127.0.0.1:{port}/healthz"]) == 1


@pytest.mark.parametrize("argv", [[], ["a", "b"], ["file:///etc/passwd"]])
def test_anything_but_one_http_url_is_a_usage_error(argv: list[str]) -> None:
    assert main(argv) == 2
