"""Structured logging: one JSON object per line on stderr, for structlog and stdlib loggers alike.

Every line carries timestamp, level, service, event and (inside a request) request_id.
JSON escaping is structlog's and the json module's, never ours.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any, TextIO

import structlog

_SECRET_MARKERS = ("authorization", "api_key", "apikey", "secret", "password", "token", "credential")


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
    out = stream if stream is not None else sys.stderr
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")

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
