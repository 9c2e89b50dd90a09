"""The wire format, both ways: the origin of a pool, the request head, the framing of a response.

Owns parsing an upstream's base URL once (parse_origin), rendering one request head per call
(render_head: request line, Host from the origin, the caller's headers minus anything hop-by-hop or
about framing, then the framing this client chose) and reading a response head's framing
(response_framing). Pure: no I/O, nothing of asyncio; the bytes themselves are llhttp's to parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Headers", "Origin", "framing", "parse_origin", "render_head", "response_framing", "text_headers"]

# Rendered with the same rules by a caller that builds its block once: "Name: value\r\n" per header.
Headers = list[tuple[str, str]] | bytes

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Dropped from the caller's headers whatever it promised: this client owns the connection (hop-by-hop),
# the framing (Content-Length, Transfer-Encoding) and Host; it never waits for 100 Continue (Expect).
_DROP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect",
})  # fmt: skip
# What a rendered header block may not carry (it cannot be filtered line by line cheaply: refused).
_FRAMING_IN_BLOCK = (b"\ncontent-length:", b"\ntransfer-encoding:", b"\nhost:", b"\nconnection:")
# Methods that send no Content-Length when they carry no body (aiohttp's client does the same).
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str  # as resolved and as sent in TLS SNI (IPv6 without brackets)
    port: int
    authority: str  # the Host header's value: host[:port], the port left out when it is the default

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


def parse_origin(url: str) -> Origin:
    """`http://host[:port]` or `https://host[:port]`; a path, query, fragment or credentials are refused."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"upstream URL must be http:// or https:// with a host: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"upstream URL must be scheme://host[:port] only: {url!r}")
    host = parts.hostname
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    default = _DEFAULT_PORTS[parts.scheme]
    port = parts.port or default
    authority = f"[{host}]" if ":" in host else host
    if port != default:
        authority += f":{port}"
    return Origin(parts.scheme, host, port, authority)


def framing(method: str, body: object, content_length: int | None) -> str:
    """The framing header line for a body of None, bytes, or a stream (of known length or chunked)."""
    if body is None:
        return "" if method in _NO_BODY_METHODS else "Content-Length: 0\r\n"
    if isinstance(body, bytes):
        if content_length is not None and content_length != len(body):
            raise ValueError("content_length disagrees with the body's length")
        return f"Content-Length: {len(body)}\r\n"
    if content_length is None:
        return "Transfer-Encoding: chunked\r\n"
    if content_length < 0:
        raise ValueError("content_length must not be negative")
    return f"Content-Length: {content_length}\r\n"


def render_head(method: str, target: str, authority: str, headers: Headers, frame: str) -> bytes:
    """The request head as bytes, rendered once per request (a retry sends the same bytes).

    Header strings are encoded latin-1: the inverse of how the public listener's server (and this
    client, for answers) decodes them, so the bytes a client sent go out unchanged. A line break inside
    a method, target, name or value would start a header of its own (request smuggling): refused with
    ValueError.
    """
    if isinstance(headers, bytes):
        return _render_block(method, target, authority, headers, frame)
    lines = [f"{name}: {value}\r\n" for name, value in headers if name.lower() not in _DROP]
    text = f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n{''.join(lines)}{frame}\r\n"
    expected = len(lines) + 3 + (1 if frame else 0)  # request line, Host, headers, framing, blank line
    if text.count("\n") != expected or text.count("\r") != expected:
        raise ValueError("a line break inside the request line or a header")
    return text.encode("latin-1")


def _render_block(method: str, target: str, authority: str, block: bytes, frame: str) -> bytes:
    """A header block the caller rendered ("Name: value\\r\\n" each): checked, not filtered."""
    if block and not block.endswith(b"\r\n"):
        raise ValueError("a rendered header block must end with CRLF")
    lowered = b"\n" + block.lower()
    if any(name in lowered for name in _FRAMING_IN_BLOCK):
        raise ValueError("a rendered header block may not carry Host, Connection or framing headers")
    start = f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n"
    if start.count("\n") != 2 or start.count("\r") != 2:
        raise ValueError("a line break inside the request line")
    return b"".join((start.encode("latin-1"), block, frame.encode("ascii"), b"\r\n"))


def response_framing(headers: list[tuple[str, str]]) -> tuple[int | None, bool]:
    """A response head's Content-Length and whether its body is chunked. llhttp has refused a head with
    both, a duplicate length and a chunked that is not the final coding before this reads it."""
    length: int | None = None
    chunked = False
    for name, value in headers:
        size = len(name)  # most names are neither: no lower() for them
        if size == 14 and name.lower() == "content-length":
            length = int(value)
        elif size == 17 and name.lower() == "transfer-encoding":
            chunked = value.rpartition(",")[2].strip().lower() == "chunked"
    return (None, True) if chunked else (length, False)


def text_headers(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """An answer's header lines (latin-1 decoded, as Response.headers has them) as text: a value whose
    bytes are UTF-8 is decoded as UTF-8, so a server that writes header text as UTF-8 (aiohttp's) sends
    the same bytes on, and both sides of a shadow comparison read alike; anything else stays latin-1."""
    return [(name, value if value.isascii() else _utf8(value)) for name, value in pairs]


def _utf8(value: str) -> str:
    raw = value.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value
