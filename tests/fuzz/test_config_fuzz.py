"""Hypothesis against the routes.yaml loader: any text, and any mutation of the shipped file, gives a
Config or a ConfigError whose every line reads `file:line: path: message`, never anything else."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import Config, ConfigError, parse_config
from proxy.routing import compile_routes
from tests.fuzz.conftest import FUZZ

REPO = Path(__file__).resolve().parents[2]
SHIPPED: dict[str, Any] = yaml.safe_load((REPO / "routes.yaml").read_text(encoding="utf-8"))
ERROR_LINE = re.compile(r"routes\.yaml:[0-9]+: \S.*: \S.*")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["on", "no", "0755", "2026-01-01", "^(", "/api//x", "10.0.0.0/8", "-1"]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=12), inner, max_size=3), max_leaves=8)  # fmt: skip


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*at, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*at, index)))
    return found


PATHS = _paths(SHIPPED)[1:]


def check(text: str) -> Config | None:
    try:
        config = parse_config(text)
    except ConfigError as error:
        errors = error.errors
    else:
        compile_routes(config)  # whatever validates must also compile
        return config
    assert errors, "a ConfigError always says what is wrong"
    for line in errors:
        assert ERROR_LINE.fullmatch(line), line
    return None


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_is_a_config_or_a_located_config_error(text: str) -> None:
    check(text)


@FUZZ
@given(path=st.sampled_from(PATHS), value=values, delete=st.booleans())
def test_any_mutation_of_the_shipped_file_is_a_config_or_a_located_config_error(
    path: tuple[Any, ...], value: Any, delete: bool
) -> None:
    doc = copy.deepcopy(SHIPPED)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    check(yaml.safe_dump(doc, sort_keys=False))


@FUZZ
@given(lines=st.lists(st.sampled_from(
    (REPO / "routes.yaml").read_text(encoding="utf-8").splitlines()), max_size=60))  # fmt: skip
def test_any_selection_of_the_shipped_lines_is_a_config_or_a_located_config_error(lines: list[str]) -> None:
    check("\n".join(lines))
