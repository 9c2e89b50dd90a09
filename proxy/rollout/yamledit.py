"""Change one route's `rollout.percent` in the text of routes.yaml and nothing else.

Owns: read_percent(), set_percent() and EditError. Does not own reading or writing the file (the
controller, by rename), nor deciding the percent (state.py).

ruamel.yaml's round-trip loader finds where the value is written (line and column of the node); the
new number replaces exactly those characters, so every comment, blank line, key order, quote, flow or
block style and indentation stays byte for byte (an end-of-line comment keeps its column when the
spaces before it allow). (ruamel's emitter was tried: it re-indents every
sequence and mapping to one global width and moves end-of-line comments of a file written otherwise.)
The result is then read by the proxy's own validator, and must be the old config with that one percent
changed: otherwise a ConfigError (invalid) or an EditError (anything else moved) is raised, never text.
An anchored, aliased or merged (`<<`) percent is refused: changing it would change other values too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from proxy.config import Config, parse_config

__all__ = ["EditError", "format_percent", "percent_of", "read_percent", "set_percent"]

_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as one line break
_NUMBER = re.compile(r"[-+]?[0-9._]*(?:[eE][-+]?[0-9]+)?")
_COMMENT_GAP = re.compile(r"( +)#")


class EditError(ValueError):
    """The percent cannot be changed in this text; the message says why."""


def read_percent(text: str, route: str, *, filename: str = "routes.yaml") -> float | None:
    """The route's rollout.percent as the proxy reads the file; None when the file has no such route or
    the route has no rollout. Raises ConfigError when the text is not a valid routes.yaml."""
    return percent_of(parse_config(text, filename=filename), route)


def percent_of(config: Config, route: str) -> float | None:
    """The route's rollout.percent in a parsed config; None without such a route or rollout."""
    found = next((r for r in config.routes if r.name == route), None)
    return None if found is None or found.rollout is None else found.rollout.percent


def format_percent(percent: float) -> str:
    """How a percent is written: a whole number as an integer (25, not 25.0), else its shortest form."""
    return str(int(percent)) if float(percent).is_integer() else repr(float(percent))


def set_percent(text: str, route: str, percent: float, *, filename: str = "routes.yaml") -> str:
    """`text` with the route's rollout.percent set to `percent`, every other character as it was.

    Raises EditError (no such route, no rollout, a percent out of range, a value written in a way that
    cannot be changed alone) or ConfigError (the text, before or after, is not a valid routes.yaml).
    """
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not math.isfinite(percent):
        raise EditError(f"the percent must be a number (got {percent!r})")
    if not 0 <= percent <= 100:
        raise EditError(f"the percent must be between 0 and 100 (got {percent:g})")
    before = parse_config(text, filename=filename)
    index = _route_index(before, route)
    old = before.routes[index].rollout
    if old is None:
        raise EditError(f"route {route!r} has no rollout block: there is no percent to set")
    if old.percent == percent:
        return text
    start, end = _span(text, route, index, old.percent)
    written = format_percent(percent)
    gap = _COMMENT_GAP.match(text, end)
    if gap:  # keep an end-of-line comment in its column when the spaces allow it
        end = gap.end(1)
        written += " " * max(1, len(gap.group(1)) - (len(written) - (gap.start() - start)))
    edited = text[:start] + written + text[end:]
    after = parse_config(edited, filename=filename)
    expected = before.model_dump()
    expected["routes"][index]["rollout"]["percent"] = percent
    if after.model_dump() != expected:
        raise EditError(f"changing the percent of route {route!r} would change more than that value")
    return edited


def _route_index(config: Config, route: str) -> int:
    for index, candidate in enumerate(config.routes):
        if candidate.name == route:
            return index
    names = ", ".join(r.name for r in config.routes) or "none"
    raise EditError(f"routes.yaml has no route named {route!r} (routes: {names})")


def _span(text: str, route: str, index: int, old: float) -> tuple[int, int]:
    """Where the route's percent is written in `text`: [start, end) of its characters."""
    try:
        document: Any = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:  # the proxy read it, so this is a dialect difference
        raise EditError(f"ruamel.yaml cannot read the file: {exc}") from None
    rollout = _rollout_node(document, index)
    if rollout is None or "percent" not in rollout.lc.data:
        raise EditError(f"the percent of route {route!r} comes from a merge key (<<): write it on the route")
    anchor = getattr(rollout["percent"], "anchor", None)
    if anchor is not None and anchor.value is not None:
        raise EditError(f"the percent of route {route!r} is an anchor or an alias (&{anchor.value}): "
                        "changing it would change every use; write a plain number")
    line, column = rollout.lc.value("percent")
    start = _offset(text, line, column)
    found = _NUMBER.match(text, start)
    written = found.group() if found else ""
    try:
        same = float(written) == old
    except ValueError:
        same = False
    if found is None or not same:
        raise EditError(f"cannot find the percent of route {route!r} as a plain number in the text")
    return found.start(), found.end()


def _rollout_node(document: Any, index: int) -> CommentedMap | None:
    routes = document.get("routes") if isinstance(document, CommentedMap) else None
    route = routes[index] if isinstance(routes, list) and index < len(routes) else None
    rollout = route.get("rollout") if isinstance(route, CommentedMap) else None
    return rollout if isinstance(rollout, CommentedMap) else None


def _offset(text: str, line: int, column: int) -> int:
    """The index in `text` of a 0-based line and column, as YAML counts lines."""
    position = 0
    for _ in range(line):
        found = _LINE_BREAK.search(text, position)
        if found is None:
            break
        position = found.end()
    return position + column
