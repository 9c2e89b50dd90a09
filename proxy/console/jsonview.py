"""Two JSON documents side by side with the differing field paths marked: the lines of one document.

Owns: Line, lines() (a document pretty-printed as lines, each with the field path it belongs to, marked
when a difference lies at that path or above it) and split_detail() (a difference's primary and
candidate values, from compare.Difference.detail). Paths are written as the comparison writes them
(proxy/config/fieldpaths.py: `images[0].width`, `(body)` for the whole document), so a difference's path
names the very lines to mark. Bounded: at most MAX_LINES lines. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from proxy.config.fieldpaths import Step, format_path

__all__ = ["MAX_LINES", "Line", "lines", "split_detail"]

MAX_LINES = 2000
ROOT = "(body)"


@dataclass(frozen=True, slots=True)
class Line:
    depth: int
    text: str  # `"width": 512,` (no indent: the page indents by depth)
    path: str  # the field path this line shows, "(body)" for the document's own brackets
    marked: bool

    @property
    def indent(self) -> str:
        return "  " * self.depth


class _Writer:
    def __init__(self, marked: Collection[str], limit: int) -> None:
        self.marked = marked
        self.limit = limit
        self.out: list[Line] = []

    def emit(self, depth: int, text: str, path: tuple[Step, ...], inherited: bool) -> bool:
        """Add one line; False once the limit is reached."""
        if len(self.out) >= self.limit:
            return False
        self.out.append(Line(depth, text, _name(path), inherited))
        return True

    def value(
        self, value: Any, path: tuple[Step, ...], depth: int, prefix: str, comma: str, up: bool
    ) -> None:
        marked = up or _name(path) in self.marked
        if isinstance(value, dict) and value:
            items: list[tuple[Step, Any]] = list(value.items())
            self._container(items, path, depth, prefix, ("{", "}"), comma, marked, keyed=True)
        elif isinstance(value, list) and value:
            indexed: list[tuple[Step, Any]] = list(enumerate(value))
            self._container(indexed, path, depth, prefix, ("[", "]"), comma, marked, keyed=False)
        else:
            self.emit(depth, prefix + json.dumps(value, ensure_ascii=False) + comma, path, marked)

    def _container(
        self, items: list[tuple[Step, Any]], path: tuple[Step, ...], depth: int, prefix: str,
        brackets: tuple[str, str], comma: str, marked: bool, *, keyed: bool,
    ) -> None:  # fmt: skip
        if not self.emit(depth, prefix + brackets[0], path, marked):
            return
        for n, (step, child) in enumerate(items):
            key = json.dumps(step, ensure_ascii=False) + ": " if keyed else ""
            last = "" if n == len(items) - 1 else ","
            self.value(child, (*path, step), depth + 1, key, last, marked)
            if len(self.out) >= self.limit:
                return
        self.emit(depth, brackets[1] + comma, path, marked)


def _name(path: tuple[Step, ...]) -> str:
    return format_path(path) if path else ROOT


def lines(document: Any, marked: Collection[str], *, limit: int = MAX_LINES) -> tuple[list[Line], bool]:
    """The document as lines, those at or under a `marked` path marked; and whether it was cut at `limit`."""
    writer = _Writer(frozenset(marked), limit)
    writer.value(document, (), 0, "", "", False)
    return writer.out, len(writer.out) >= limit


def split_detail(detail: str) -> tuple[str, str]:
    """("512", "1024") from "body_value at images[0].width: 512 != 1024"; (detail, "") when it is not
    of that form."""
    _, sep, values = detail.partition(": ")
    primary, middle, candidate = values.partition(" != ")
    if not sep or not middle:
        return detail, ""
    return primary, candidate
