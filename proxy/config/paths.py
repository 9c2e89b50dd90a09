"""One canonical form of a request path: the form that is matched and the form that is forwarded.

Owns: normalize_path() and the list of paths refused outright (BadPath -> 400).
Does not own: the query string (forwarded byte for byte, never seen here).

Why refuse rather than decode `%2F`, `%2E`, `%5C`: upstreams disagree on whether an encoded
slash or dot separates segments, so a path like `/api/images/..%2Fadmin` could be matched one
way here and resolved another way behind us. Refusing closes that gap; no real client needs it.
"""

from __future__ import annotations

import string

__all__ = ["BadPath", "normalize_path"]

_HEX = frozenset(string.hexdigits)
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# pchar minus "%" (handled separately) plus "/": what may stay literal in a path (RFC 3986 3.3).
_LITERAL_OK = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
# Escapes refused: slash, dot, backslash and every control character (%00 included).
_REFUSED_ESCAPES = frozenset({0x2F, 0x2E, 0x5C, 0x7F, *range(0x20)})


class BadPath(ValueError):
    """The request path cannot be routed safely; answer 400."""


def normalize_path(raw_path: str) -> str:
    """Canonical form of `raw_path` (the percent-encoded path as received, without the query).

    - escapes of unreserved characters are decoded (`/api/%69mages` -> `/api/images`), other
      escapes upper-cased (`%c3%a9` -> `%C3%A9`); characters that must be escaped are escaped
      (UTF-8), so the result is always a valid, percent-encoded path;
    - dot segments are resolved (RFC 3986 remove_dot_segments, never above the root) and
      repeated slashes merged; a trailing slash is kept;
    - refused with BadPath: no leading "/", a "?" (the query belongs elsewhere), a backslash,
      a control character, a malformed escape, `%2F`, `%2E`, `%5C`, an escaped control
      character, and `..;`/`.;` segments (servlet containers treat them as dot segments).

    Idempotent: normalize_path(normalize_path(p)) == normalize_path(p).
    """
    if not raw_path.startswith("/"):
        raise BadPath("the path must start with '/'")
    decoded = _canonical_escapes(raw_path)
    return _remove_dot_segments(decoded)


def _canonical_escapes(raw: str) -> str:
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "%":
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise BadPath("malformed percent-escape in the path")
            value = int(pair, 16)
            if value in _REFUSED_ESCAPES:
                raise BadPath(f"the path contains a refused escape %{pair.upper()}")
            decoded = chr(value)
            out.append(decoded if decoded in _UNRESERVED else f"%{pair.upper()}")
            i += 3
            continue
        if ch == "?":
            raise BadPath("the path must not contain '?': pass the query separately")
        if ch == "\\":
            raise BadPath("the path contains a backslash")
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise BadPath("the path contains a control character")
        if ch in _LITERAL_OK:
            out.append(ch)
        else:
            try:
                encoded = ch.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate from a badly decoded request line
                raise BadPath("the path is not valid UTF-8") from exc
            out.append("".join(f"%{byte:02X}" for byte in encoded))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")[1:]
    kept: list[str] = []
    trailing_slash = False
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment.startswith((".;", "..;")):
            raise BadPath("the path contains a dot segment with parameters")
        if segment in ("", "."):
            trailing_slash = index == last
        elif segment == "..":
            if kept:
                kept.pop()
            trailing_slash = index == last
        else:
            kept.append(segment)
            trailing_slash = False
    if not kept:
        return "/"
    return "/" + "/".join(kept) + ("/" if trailing_slash else "")
