"""Whatever a file contains, parse_config answers with a Config or a ConfigError, never a crash."""

from __future__ import annotations

import copy
import re
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.config import Config, ConfigError, parse_config

BASE: dict[str, Any] = {
    "version": 1,
    "upstreams": {"legacy": {"url": "http://127.0.0.1:8081"}, "new": {"url": "http://127.0.0.1:8082"}},
    "default_upstream": "legacy",
    "trusted_proxies": ["10.0.0.0/8"],
    "limits": {"max_body_bytes": 1024},
    "routes": [{
        "name": "images",
        "match": {"path_prefix": "/api/images", "methods": ["GET"]},
        "primary": "legacy",
        "candidate": "new",
        "rollout": {"percent": 25, "sticky_key": ["header:X-User-Id", "client_ip"],
                    "on_missing_key": "random", "salt": "s"},
        "flags": [{"header": "X-B", "equals": "new", "use": "candidate"},
                  {"query": "b", "in": ["x", "y"], "use": "primary"}],
    }],
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["on", "no", "yes", "/api/images", "^(", "legacy", "new", "candidate"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["url", "name", "percent", "in", "use", "x", "shadow", "match"]), inner, max_size=3),
    max_leaves=6)


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths_of(value, (*prefix, index))
    return found


ALL_PATHS = paths_of(BASE)[1:]


def set_at(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.sampled_from(ALL_PATHS), values), min_size=1, max_size=4))
def test_any_mutation_of_a_valid_file_gives_a_config_or_located_errors(
    mutations: list[tuple[tuple[Any, ...], Any]],
) -> None:
    data = copy.deepcopy(BASE)
    for path, value in mutations:
        try:
            set_at(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    text = yaml.safe_dump(data, sort_keys=False)
    errors: list[str] = []
    try:
        config = parse_config(text)
    except ConfigError as error:
        errors = error.errors
        assert errors
    else:
        assert isinstance(config, Config)
    for line in errors:
        assert re.match(r"routes\.yaml:\d+: \S.*: \S", line), line


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_gives_a_config_error_not_a_crash(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(text)


def test_explicit_nulls_mean_left_out() -> None:
    config = parse_config(textwrap.dedent("""\
        version: 1
        upstreams: {legacy: {url: "http://127.0.0.1:8081"}}
        default_upstream: legacy
        routes:
          - name: images
            match: {path_prefix: /api/images, path_regex: null, methods: null}
            primary: legacy
            candidate: null
            rollout: null
        """))
    assert config.routes[0].rollout is None
    assert config.routes[0].match.methods is None


def test_anchors_and_merge_keys_work() -> None:
    config = parse_config(textwrap.dedent("""\
        version: 1
        upstreams:
          legacy: &defaults {url: "http://127.0.0.1:8081", timeout_s: 5}
          new: {<<: *defaults, url: "http://127.0.0.1:8082"}
        default_upstream: legacy
        """))
    assert config.upstreams["new"].timeout_s == 5
    assert config.upstreams["new"].url == "http://127.0.0.1:8082"


def test_a_non_string_key_is_an_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('version: 1\nupstreams:\n  legacy: {url: "http://a"}\n  8082: {url: "http://b"}\n'
                     "default_upstream: legacy\n")
    assert caught.value.errors == ["routes.yaml:4: upstreams: key 8082 must be a string; quote it"]


def test_two_documents_in_one_file_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("version: 1\n---\nversion: 1\n")
    assert caught.value.errors == [
        "routes.yaml:2: (yaml): but found another document (expected a single document in the stream)"]


@pytest.mark.parametrize("percent", [".nan", ".inf", "-.inf"])
def test_percentages_that_are_not_finite_are_refused(percent: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(f"""\
            version: 1
            upstreams: {{legacy: {{url: "http://a"}}, new: {{url: "http://b"}}}}
            default_upstream: legacy
            routes:
              - {{name: r, match: {{path_prefix: /}}, primary: legacy, candidate: new,
                 rollout: {{percent: {percent}}}}}
            """))
    assert caught.value.errors == ["routes.yaml:6: routes[0].rollout.percent: must be between 0 and 100"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("version: 1\nupstreams: &a {x: *a}\n",
         "routes.yaml:2: (yaml): an alias refers to a value that contains it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "routes.yaml:1: (yaml): values are nested too deeply"),
        ("version: !!python/name:os.system x\n",
         "routes.yaml:1: (yaml): could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/name:os.system'"),
        ("a: b\x08\n", "routes.yaml:1: (yaml): character U+0008 is not allowed in YAML"),
    ],
)
def test_hostile_yaml_is_refused_cleanly(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.errors == [error]


def test_an_alias_bomb_is_stopped_before_it_expands() -> None:
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    with pytest.raises(ConfigError) as caught:
        parse_config("\n".join(levels) + "\n")
    (error,) = caught.value.errors
    assert "more than 100000 values" in error


def test_a_merged_mapping_reached_twice_through_an_alias_is_read_the_same_way() -> None:
    config = parse_config('version: 1\nupstreams:\n  legacy: &m {<<: {url: "http://a"}, url: "http://b"}\n'
                          "  new: *m\ndefault_upstream: legacy\n")
    assert config.upstreams["legacy"].url == config.upstreams["new"].url == "http://b"


def test_a_key_written_twice_is_a_duplicate_even_next_to_a_merge() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('version: 1\nupstreams:\n'
                     '  legacy: {<<: {timeout_s: 1}, url: "http://a", url: "http://b"}\n'
                     "default_upstream: legacy\n")
    assert caught.value.errors == ["routes.yaml:3: upstreams.legacy.url: duplicate key"]
