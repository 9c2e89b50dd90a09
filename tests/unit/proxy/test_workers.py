"""What the parent of --workers N starts each worker with (the processes themselves:
tests/integration/proxy/test_workers.py)."""

from __future__ import annotations

from proxy.workers import Plan, worker_argv, worker_environ


def test_a_worker_is_told_its_index_its_private_admin_socket_and_the_shared_port() -> None:
    argv = worker_argv(Plan("routes.yaml", "0.0.0.0", 8080, "DEBUG", 0.5), 3, "/tmp/p/worker-3.sock")

    assert argv[1:4] == ["-m", "proxy", "serve"]
    options = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert options == {
        "--config": "routes.yaml", "--host": "0.0.0.0", "--port": "8080", "--log-level": "DEBUG",
        "--reload-settle-s": "0.5", "--worker-index": "3", "--admin-socket": "/tmp/p/worker-3.sock",
        "--access-log-flush-ms": "100",
    }  # fmt: skip
    argv = worker_argv(Plan("routes.yaml", "0.0.0.0", 8080, "INFO", 2.0, 0), 0, "/tmp/p/worker-0.sock")
    assert argv[argv.index("--access-log-flush-ms") + 1] == "0"


def test_workers_get_the_secrets_the_parent_read_never_the_files_again() -> None:
    environ = {"PATH": "/bin", "STRANGLER_ADMIN_TOKEN_FILE": "/run/token", "STRANGLER_SHADOW_KEY_FILE": "/k"}

    env = worker_environ(environ, "the-token", b"k" * 40)

    assert env == {"PATH": "/bin", "STRANGLER_ADMIN_TOKEN": "the-token", "STRANGLER_SHADOW_KEY": "k" * 40}
    assert worker_environ({"STRANGLER_ADMIN_TOKEN": "x", "HOME": "/h"}, None, None) == {"HOME": "/h"}
