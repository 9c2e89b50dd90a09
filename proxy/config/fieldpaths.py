"""Field paths in JSON bodies: the `ignore` language of shadow.compare and how differences are named.

Owns parse_path() (`images[*].url` -> steps), format_path() (steps -> `images[0].url`, for display)
and under() (is a concrete path at or below a pattern). Pure. A dotted path with `[N]` or `[*]`
indexes; `*` as a field name matches any key; a leading `[..]` addresses a top-level array.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "ANY_INDEX", "ANY_KEY", "PathSyntaxError", "Pattern", "PatternStep", "Step", "format_path", "parse_path",
    "under",
]  # fmt: skip

Step = str | int  # a dict key or a list index in a concrete JSON path


class _Wild:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


ANY_KEY = _Wild("ANY_KEY")  # `*` as a field name
ANY_INDEX = _Wild("ANY_INDEX")  # `[*]`
PatternStep = str | int | _Wild
Pattern = tuple[PatternStep, ...]

_KEY = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(\*|0|[1-9][0-9]*)\]")


class PathSyntaxError(ValueError):
    pass


def parse_path(text: str) -> Pattern:
    """`images[*].url` -> ("images", ANY_INDEX, "url"); a dotted path with [N] or [*] indexes."""
    if not text:
        raise PathSyntaxError("must not be empty")
    steps: list[PatternStep] = []
    pos, need_key = 0, not text.startswith("[")
    while pos < len(text) or need_key:
        if need_key:
            found = _KEY.match(text, pos)
            if found is None or found.group() != found.group().strip():
                raise PathSyntaxError(f"expected a field name at position {pos} of {text!r}")
            steps.append(ANY_KEY if found.group() == "*" else found.group())
            pos, need_key = found.end(), False
        elif text[pos] == ".":
            pos, need_key = pos + 1, True
        else:
            index = _INDEX.match(text, pos)
            if index is None:
                raise PathSyntaxError(f"expected '.', '[N]' or '[*]' at position {pos} of {text!r}")
            steps.append(ANY_INDEX if index.group(1) == "*" else int(index.group(1)))
            pos = index.end()
    return tuple(steps)


def format_path(steps: tuple[Step, ...]) -> str:
    """("images", 0, "width") -> "images[0].width"; the whole body is "(body)"."""
    out = ""
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _KEY.fullmatch(step) and step != "*":
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out or "(body)"


def under(pattern: Pattern, path: tuple[Step, ...]) -> bool:
    """True when `path` is the pattern's node or lies below it."""
    if len(path) < len(pattern):
        return False
    for want, got in zip(pattern, path, strict=False):
        if want is ANY_KEY:
            if not isinstance(got, str):
                return False
        elif want is ANY_INDEX:
            if not isinstance(got, int):
                return False
        elif type(want) is not type(got) or want != got:
            return False
    return True
