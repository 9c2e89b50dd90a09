"""Read YAML into plain Python values and remember the line of every node.

Owns: the YAML dialect of routes.yaml and the map from a field path to its line.
Does not own: what the fields mean (schema.py, routes.py).

The dialect is PyYAML's safe loader with one change: only `true`/`false` (any case YAML 1.2
allows) are booleans. YAML 1.1 would turn an unquoted `on`, `off`, `yes`, `no`, `y`, `n` into a
boolean, as a key too; here they stay strings. Duplicate keys are errors (PyYAML keeps the last
one silently), and so is a non-scalar key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "MAX_NODES", "Document", "Path", "Problem", "StrictLoader", "YamlSyntaxError", "format_path",
    "read_yaml",
]  # fmt: skip

Path = tuple[str | int, ...]

# A routes.yaml has a few hundred values; aliases can make a small file expand exponentially.
MAX_NODES = 100_000

_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader whose implicit booleans are YAML 1.2's: true and false only."""


# Copy the resolver table (it is shared with SafeLoader otherwise) without the YAML 1.1 booleans.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    StrictLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (_BOOL_TAG, _YAML12_BOOL))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, before any meaning is attached."""

    line: int
    path: Path
    message: str


@dataclass
class Document:
    """Plain data plus the 1-based line of each value and of each mapping key."""

    data: Any
    value_lines: dict[Path, int] = field(default_factory=dict)
    key_lines: dict[Path, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    nodes_seen: int = 0
    open_nodes: set[int] = field(default_factory=set)
    written_keys: dict[int, set[int]] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of `path` (its key's line when it has one, so `rollout:` rather than the first
        line inside it); for a path not in the file, the line of its nearest ancestor."""
        probe = path
        while probe:
            if probe in self.key_lines:
                return self.key_lines[probe]
            if probe in self.value_lines:
                return self.value_lines[probe]
            probe = probe[:-1]
        return self.value_lines.get((), 1)


class YamlSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"{line}: {message}")
        self.line = line
        self.message = message


def read_yaml(text: str) -> Document:
    """Parse one YAML document; raise YamlSyntaxError when it is not YAML at all."""
    try:
        loader = StrictLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, found before parsing starts
        line = len(_LINE_BREAK.split(text[: exc.position]))  # YAML's line breaks, as its marks count them
        raise YamlSyntaxError(line, _bad_character(exc)) from exc
    try:
        node = loader.get_single_node()
        doc = Document(data=None)
        if node is not None:
            doc.data = _convert(loader, node, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise YamlSyntaxError(line, message) from exc
    except yaml.reader.ReaderError as exc:
        line = len(_LINE_BREAK.split(text[: exc.position]))  # YAML's line breaks, as its marks count them
        raise YamlSyntaxError(line, _bad_character(exc)) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, str(exc)) from exc
    except RecursionError:
        raise YamlSyntaxError(1, "values are nested too deeply") from None
    finally:
        loader.dispose()


def _bad_character(exc: yaml.reader.ReaderError) -> str:
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return f"character U+{code:04X} is not allowed in YAML"


def _convert(loader: StrictLoader, node: yaml.Node, path: Path, doc: Document) -> Any:
    doc.nodes_seen += 1
    if doc.nodes_seen > MAX_NODES:
        line = node.start_mark.line + 1
        raise YamlSyntaxError(line, f"more than {MAX_NODES} values (aliases nested too deep?)")
    if id(node) in doc.open_nodes:
        raise YamlSyntaxError(node.start_mark.line + 1, "an alias refers to a value that contains it")
    doc.value_lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)
    doc.open_nodes.add(id(node))
    try:
        return _convert_collection(loader, node, path, doc)
    finally:
        doc.open_nodes.discard(id(node))


def _convert_collection(loader: StrictLoader, node: yaml.Node, path: Path, doc: Document) -> Any:
    if isinstance(node, yaml.MappingNode):
        # Keys written in this mapping may not repeat; keys merged in with `<<` may be overridden.
        # (An alias visits a node twice; remember what was written before the first flatten.)
        written = doc.written_keys.setdefault(id(node), {id(key_node) for key_node, _ in node.value})
        loader.flatten_mapping(node)  # resolves `<<` merge keys the way PyYAML does (last one wins)
        result: dict[Any, Any] = {}
        written_keys: set[str] = set()
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                doc.problems.append(Problem(key_line, path, "a key must be a plain value, not a collection"))
                continue
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                doc.problems.append(Problem(key_line, path, f"key {key!r} must be a string; quote it"))
                continue
            child = (*path, key)
            if id(key_node) in written:
                if key in written_keys:
                    doc.problems.append(Problem(key_line, child, "duplicate key"))
                    continue
                written_keys.add(key)
            doc.key_lines[child] = key_line
            result[key] = _convert(loader, value_node, child, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def format_path(path: Path) -> str:
    """('routes', 0, 'rollout', 'percent') -> 'routes[0].rollout.percent'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += "[" + json.dumps(part, ensure_ascii=False) + "]"  # control characters escaped too
    return out or "(root)"
