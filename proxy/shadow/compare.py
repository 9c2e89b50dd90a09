"""Compare the primary's answer with the candidate's: status, chosen headers, body.

Owns: Answer (one complete HTTP answer), ComparePolicy, Difference, compare(). The ignore-path
language (`id`, `images[*].url`, `[0].name`, `*.etag`) is fieldpaths.py. Pure: no I/O, no clock;
Pillow only reads image headers from bytes already in memory.

Bodies: JSON (by content type) is compared by shape (same keys and value types, array lengths,
recursively) and by every value not under an ignore path: an ignored field must still exist with
the same type, only its value may differ. Images (`image/*`) are compared by format and dimensions,
by bytes, or not at all (`images: off`). Anything else must be byte-identical.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from proxy.config.fieldpaths import (
    ANY_INDEX,
    ANY_KEY,
    PathSyntaxError,
    Pattern,
    Step,
    format_path,
    parse_path,
    under,
)

__all__ = [
    "ANY_INDEX", "ANY_KEY", "Answer", "ComparePolicy", "Difference", "PathSyntaxError", "Pattern",
    "compare", "decoded_body", "format_path", "media_type", "parse_path", "under",
]

Kind = Literal["status", "header", "body_shape", "body_value", "image"]
ImageMode = Literal["dimensions", "bytes", "off"]
MAX_DIFFERENCES = 50  # a totally different answer is one mismatch, not ten thousand entries
MAX_DECODED_BYTES = 16 * 1024 * 1024  # a compressed body is inflated at most this far


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass(frozen=True, slots=True)
class ComparePolicy:
    status: bool = True
    headers: tuple[str, ...] = ()  # lower-case names whose values must be equal
    ignore: tuple[Pattern, ...] = ()
    images: ImageMode = "dimensions"


@dataclass(frozen=True, slots=True)
class Difference:
    kind: Kind
    path: str  # "(status)", a header name, a JSON path, or "(body)"
    detail: str  # "body_value at images[0].width: 512 != 1024"

    @classmethod
    def of(cls, kind: Kind, path: str, what: str) -> Difference:
        return cls(kind, path, f"{kind} at {path}: {what}")


@dataclass
class _Walk:
    ignore: tuple[Pattern, ...]
    found: list[Difference] = field(default_factory=list)

    def add(self, kind: Kind, path: tuple[Step, ...], what: str) -> None:
        if len(self.found) < MAX_DIFFERENCES:
            self.found.append(Difference.of(kind, format_path(path), what))

    def ignored(self, path: tuple[Step, ...]) -> bool:
        return any(under(pattern, path) for pattern in self.ignore)

    def walk(self, a: Any, b: Any, path: tuple[Step, ...]) -> None:
        if len(self.found) >= MAX_DIFFERENCES:
            return
        kind_a, kind_b = _json_type(a), _json_type(b)
        if kind_a != kind_b:
            self.add("body_shape", path, f"{kind_a} != {kind_b}")
        elif isinstance(a, dict):
            for key in a:
                if key not in b:
                    self.add("body_shape", (*path, key), "present != missing")
            for key in b:
                if key not in a:
                    self.add("body_shape", (*path, key), "missing != present")
            for key, value in a.items():
                if key in b:
                    self.walk(value, b[key], (*path, key))
        elif isinstance(a, list):
            if len(a) != len(b):
                self.add("body_shape", path, f"{len(a)} items != {len(b)} items")
            for index, (x, y) in enumerate(zip(a, b, strict=False)):
                self.walk(x, y, (*path, index))
        elif a != b and not self.ignored(path):
            self.add("body_value", path, f"{_shown(a)} != {_shown(b)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _shown(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def decoded_body(answer: Answer) -> bytes:
    """The body without its gzip/deflate content coding (proxies pass bodies through as-is)."""
    coding = answer.headers.get("content-encoding", "").strip().lower()
    if coding not in ("gzip", "x-gzip", "deflate") or not answer.body:
        return answer.body
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(answer.body, MAX_DECODED_BYTES)
    except zlib.error:
        return answer.body
    return out if inflater.eof else answer.body


def _parse_json(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, RecursionError):
        return False, None


def _image_facts(body: bytes) -> str:
    with Image.open(io.BytesIO(body)) as image:  # reads the header only
        return f"{image.format} {image.width}x{image.height}"


def _compare_images(a: bytes, b: bytes, mode: ImageMode, out: list[Difference]) -> None:
    if mode == "off" or a == b:
        return
    if mode == "bytes":
        out.append(Difference.of("image", "(body)", f"{len(a)} bytes != {len(b)} bytes (different bytes)"))
        return
    facts = []
    for body in (a, b):
        try:
            facts.append(_image_facts(body))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            facts.append(f"not a readable image ({type(exc).__name__})")
    if facts[0] != facts[1]:
        out.append(Difference.of("image", "(body)", f"{facts[0]} != {facts[1]}"))


def _compare_body(primary: Answer, candidate: Answer, policy: ComparePolicy, out: list[Difference]) -> None:
    a, b = decoded_body(primary), decoded_body(candidate)
    media_a, media_b = media_type(primary.headers), media_type(candidate.headers)
    if _is_json(media_a) or _is_json(media_b):
        (ok_a, doc_a), (ok_b, doc_b) = _parse_json(a), _parse_json(b)
        if ok_a and ok_b:
            walk = _Walk(policy.ignore)
            try:
                walk.walk(doc_a, doc_b, ())
            except RecursionError:
                walk.add("body_shape", (), "too deeply nested to compare")
            out.extend(walk.found)
            return
        if ok_a != ok_b:
            shown = ("JSON", "not JSON") if ok_a else ("not JSON", "JSON")
            out.append(Difference.of("body_shape", "(body)", f"{shown[0]} != {shown[1]}"))
            return
    if media_a.startswith("image/") or media_b.startswith("image/"):
        _compare_images(a, b, policy.images, out)
        return
    if a != b:
        what = f"{len(a)} bytes != {len(b)} bytes" if len(a) != len(b) else f"other bytes ({len(a)} bytes)"
        out.append(Difference.of("body_value", "(body)", what))


def compare(primary: Answer, candidate: Answer, policy: ComparePolicy) -> list[Difference]:
    """Every difference the policy cares about, status first, then headers, then the body."""
    found: list[Difference] = []
    if policy.status and primary.status != candidate.status:
        found.append(Difference.of("status", "(status)", f"{primary.status} != {candidate.status}"))
    for name in policy.headers:
        mine, theirs = primary.headers.get(name), candidate.headers.get(name)
        if mine != theirs:
            shown = [json.dumps(value) if value is not None else "absent" for value in (mine, theirs)]
            found.append(Difference.of("header", name, f"{shown[0]} != {shown[1]}"))
    _compare_body(primary, candidate, policy, found)
    return found[:MAX_DIFFERENCES]
