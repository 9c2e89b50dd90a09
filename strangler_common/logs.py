"""Structured logging: one JSON object per line on stderr, for structlog and stdlib loggers alike.

Every line carries timestamp, level, service, event and (inside a request) request_id.
JSON escaping is structlog's and the json module's, never ours. DirectLog (the proxy's access log)
renders its lines itself and writes them in batches (linebatch.py).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any, Final, NamedTuple, TextIO

import structlog

from strangler_common.linebatch import DEFAULT_BUFFER_BYTES, LineBatch

DEFAULT_FLUSH_S: Final = 0.1  # how long a DirectLog line may wait for its batch (Envoy's default is 1 s)
_SECRET_MARKERS = ("authorization", "api_key", "apikey", "secret", "password", "token", "credential")


class _Setup(NamedTuple):
    """What configure_logging set up, for the DirectLogs made after it."""

    stream: TextIO
    service: str
    level: int
    direct_flush_s: float


_configured: _Setup | None = None  # None: not configured yet


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


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    stream: TextIO | None = None,
    direct_flush_s: float = DEFAULT_FLUSH_S,
) -> None:
    """Route structlog and the stdlib `logging` tree to one JSON-lines stream. A DirectLog made afterwards
    holds its lines up to `direct_flush_s` before writing them (0: each line is written at once).

    Call once, from an entry point (never at import time).
    """
    global _configured
    out = stream if stream is not None else sys.stderr
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    if not direct_flush_s >= 0:  # also refuses nan
        raise ValueError(f"the flush interval must be 0 or more seconds, not {direct_flush_s!r}")
    _configured = _Setup(out, service, numeric_level, direct_flush_s)

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


def _float(value: float) -> str:
    # json's spelling: repr when finite, else NaN / Infinity / -Infinity (inf - inf is nan, never 0)
    return float.__repr__(value) if value - value == 0 else json.dumps(value)


# How DirectLog writes a value of each exact type, byte for byte as json.dumps does; any other type (bool,
# None, a subclass) goes through json.dumps itself.
_ENCODE: Final[dict[type, Callable[[Any], str]]] = {
    str: encode_basestring_ascii,
    int: int.__repr__,
    float: _float,
}


def _literal(text: str) -> str:
    """`text` as a JSON string inside a %-template: its own '%' are no placeholders."""
    return json.dumps(text).replace("%", "%%")


class DirectLog:
    """INFO lines of one event, written to the stream configure_logging set up, in the same JSON shape as
    every other line (the fields, then event, level, timestamp, service), without running structlog's
    processor chain: for a line written on every request (the proxy's access log). Its field names are
    fixed when it is made and checked once against the secret markers; made while logging is not
    configured (or was reset), or with INFO filtered out, it writes nothing.

    Lines are rendered into a template made once, then written in batches (linebatch.LineBatch): one
    at most `flush_s` old (None: configure_logging's `direct_flush_s`; 0: each line at once), of at
    most `buffer_bytes`; flush() writes the batch now."""

    __slots__ = ("_batch", "_count", "_epoch", "_second", "_template", "enabled")

    def __init__(
        self,
        event: str,
        fields: tuple[str, ...],
        *,
        flush_s: float | None = None,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        secret = [name for name in fields if _names_a_secret(name)]
        if secret:
            raise ValueError(f"a directly written line cannot carry {secret}: they name secrets")
        configured = _configured if structlog.is_configured() else None  # not after reset_defaults()
        setup = configured or _Setup(sys.stderr, "", logging.CRITICAL + 1, 0.0)
        self.enabled = setup.level <= logging.INFO
        interval = setup.direct_flush_s if flush_s is None else flush_s
        self._batch = LineBatch(setup.stream, flush_s=interval, buffer_bytes=buffer_bytes)
        self._count = len(fields)
        # The whole line but the values and the time, rendered once; ASCII, as every value json writes.
        names = "".join(f"{_literal(name)}: %s, " for name in fields)
        self._template = "{" + names + f'"event": {_literal(event)}, "level": "info", ' \
            f'"timestamp": "%s.%06dZ", "service": {_literal(setup.service)}}}\n'  # fmt: skip
        self._epoch, self._second = -1, ""  # the time to the second, formatted once per second

    def __call__(self, *values: Any) -> None:
        if not self.enabled:
            return
        if len(values) != self._count:
            raise ValueError(f"{self._count} values expected, got {len(values)}")
        epoch, nanos = divmod(time.time_ns(), 1_000_000_000)
        if epoch != self._epoch:
            self._epoch, self._second = epoch, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
        encode = _ENCODE.get
        line = self._template % (*[encode(type(v), json.dumps)(v) for v in values], self._second,
                                 nanos // 1000)  # fmt: skip
        self._batch.add(line)

    def flush(self) -> None:
        """Write the batch now (the proxy does when it stops)."""
        self._batch.flush()
