"""The nginx reference: a config rendered into a tmp dir, run in the foreground, one worker.

nginx runs like users would run it in front of one upstream: 1 worker, HTTP/1.1 to the upstream with
a keep-alive pool, default proxy buffering, and an access log on (one JSON line per request, written
to a file, like our proxy's JSON access log on stderr, which the bench sends to a file).
"""

from __future__ import annotations

from pathlib import Path

CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
    log_format json escape=json '{{"time":"$time_iso8601","method":"$request_method",'
        '"path":"$uri","status":$status,"duration_ms":$request_time,'
        '"request_id":"$request_id"}}';
    access_log {access_log};
    keepalive_requests 1000000;
    upstream backend {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Request-ID $request_id;
        }}
    }}
}}
"""


def render_conf(*, prefix: Path, port: int, upstream_port: int, access_log: bool = True) -> str:
    log = f"{prefix}/access.log json" if access_log else "off"
    return CONF.format(prefix=prefix, port=port, upstream_port=upstream_port, access_log=log)


def write_conf(prefix: Path, *, port: int, upstream_port: int, access_log: bool = True) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render_conf(prefix=prefix, port=port, upstream_port=upstream_port, access_log=access_log))
    return conf


STATIC = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""


def render_static_conf(*, prefix: Path, port: int, body: str) -> str:
    """nginx as a cheap upstream answering `body` to everything: for scenarios where a Python upstream
    would eat the CPU the system under test needs (2 workers on 2 cores)."""
    return STATIC.format(prefix=prefix, port=port, body=body)


def write_static_conf(prefix: Path, *, port: int, body: str) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render_static_conf(prefix=prefix, port=port, body=body))
    return conf


def argv(conf: Path, prefix: Path) -> list[str]:
    """Foreground (`daemon off`), with the prefix, pid and error log all in the tmp dir."""
    return ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
