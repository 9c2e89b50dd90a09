"""Structured logging: one JSON object per line on stderr, for structlog and stdlib loggers alike.

Every line carries timestamp, level, service, event and (inside a request) request_id.
JSON escaping is structlog's and the json module's, never ours.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import sys
from typing import Any, TextIO

import structlog

_SECRET_MARKERS = ("authorization", "api_key", "apikey", "secret", "password", "token", "credential")
# What configure_logging set up, for DirectLog: (stream, service, level). None: not configured yet.
_configured: tuple[TextIO, str, int] | None = None


@functools.lru_cache(maxsize=4096)
def _names_a_secret(key: str) -> bool:
    # Cached: the same few field names come by on every log line (the proxy writes one per request).
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _redact_secrets(_: Any, __: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """Last line of defence: a field whose name says it holds a secret is never written."""
    for key in list(event_dict):
        if _names_a_secret(key):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(service: str, *, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and the stdlib `logging` tree to one JSON-lines stream.

    Call once, from an entry point (never at import time).
    """
    global _configured
    out = stream if stream is not None else sys.stderr
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    _configured = (out, service, numeric_level)

    def add_service(_: Any, __: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        _redact_secrets,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # aiohttp's own access logger is replaced by ours (see strangler_common.web).
    logging.getLogger("aiohttp.access").disabled = True


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `name` ends up as the `logger` field."""
    return structlog.get_logger(name) if name is None else structlog.get_logger().bind(logger=name)


class DirectLog:
    """INFO lines of one event, written straight to the stream configure_logging set up, in the same
    JSON shape as every other line (the fields, then event, level, timestamp, service), without running
    structlog's processor chain: for a line written on every request (the proxy's access log). Its
    field names are fixed when it is made and checked once against the secret markers; made while
    logging is not configured (or was reset), or with INFO filtered out, it writes nothing."""

    __slots__ = ("_fields", "_stream", "_tail", "enabled")

    def __init__(self, event: str, fields: tuple[str, ...]) -> None:
        secret = [name for name in fields if _names_a_secret(name)]
        if secret:
            raise ValueError(f"a directly written line cannot carry {secret}: they name secrets")
        self._fields = fields
        configured = _configured if structlog.is_configured() else None  # not after reset_defaults()
        stream, service, level = configured or (sys.stderr, "", logging.CRITICAL + 1)
        self._stream = stream
        self.enabled = level <= logging.INFO
        self._tail = (json.dumps(event), json.dumps(service))

    def __call__(self, *values: Any) -> None:
        if not self.enabled:
            return
        line = dict(zip(self._fields, values, strict=True))
        now = datetime.datetime.now(tz=datetime.UTC).isoformat().replace("+00:00", "Z")
        event, service = self._tail
        rendered = json.dumps(line)[:-1]
        rendered += f', "event": {event}, "level": "info", "timestamp": "{now}", "service": {service}}}\n'
        self._stream.write(rendered)
        self._stream.flush()
