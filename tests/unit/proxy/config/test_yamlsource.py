"""routes.yaml's YAML dialect and its line bookkeeping: YAML 1.2 booleans only, duplicate and
non-text keys reported at their line, aliases bounded, syntax errors located (file names are added
by the loader: test_config.py)."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import yamlsource
from proxy.config.yamlsource import Problem, YamlSyntaxError, format_path, read_yaml


def read(text: str) -> yamlsource.Document:
    return read_yaml(textwrap.dedent(text))


def refusal(text: str) -> YamlSyntaxError:
    with pytest.raises(YamlSyntaxError) as refused:
        read_yaml(textwrap.dedent(text))
    return refused.value


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF", "Y", "N"])
def test_yaml_1_1_boolean_words_stay_text_as_values_and_as_keys(word: str) -> None:
    doc = read_yaml(f"value: {word}\n{word}: 1\n")
    assert doc.data == {"value": word, word: 1}
    assert doc.problems == []


@pytest.mark.parametrize(
    ("word", "value"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False), ("FALSE", False)],
)
def test_the_yaml_1_2_spellings_of_true_and_false_are_booleans(word: str, value: bool) -> None:
    assert read_yaml(f"a: {word}").data == {"a": value}


def test_a_mixed_case_true_is_text() -> None:
    assert read_yaml("a: tRuE\nb: fALSE").data == {"a": "tRuE", "b": "fALSE"}


def test_the_strict_dialect_leaves_pyyamls_own_safe_loader_as_it_was() -> None:
    read_yaml("a: yes")
    assert yaml.safe_load("a: yes") == {"a": True}


def test_a_key_written_twice_is_reported_at_its_second_line_and_the_first_value_is_kept() -> None:
    doc = read(
        """\
        routes:
          - name: images
            prefix: /a
            prefix: /b
        """
    )
    assert doc.problems == [Problem(4, ("routes", 0, "prefix"), "duplicate key")]
    assert doc.data == {"routes": [{"name": "images", "prefix": "/a"}]}


def test_a_merged_key_may_be_overridden_but_a_key_written_twice_beside_a_merge_is_a_duplicate() -> None:
    doc = read(
        """\
        base: &base {x: 1, y: 2}
        one:
          <<: *base
          y: 3
        two:
          <<: *base
          x: 9
          x: 10
        """
    )
    assert doc.data["one"] == {"x": 1, "y": 3}
    assert doc.data["two"] == {"x": 9, "y": 2}
    assert doc.problems == [Problem(8, ("two", "x"), "duplicate key")]


def test_a_mapping_reached_through_an_alias_twice_is_read_the_same_each_time_without_false_duplicates() -> (
    None
):
    doc = read(
        """\
        shared: &shared {k: v}
        first: *shared
        second: *shared
        """
    )
    assert doc.data == {"shared": {"k": "v"}, "first": {"k": "v"}, "second": {"k": "v"}}
    assert doc.problems == []


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("true", "True"),
        ("1", "1"),
        ("null", "None"),
        ("1.5", "1.5"),
        ("2024-01-01", "datetime.date(2024, 1, 1)"),
    ],
)
def test_a_key_that_is_not_text_is_reported_at_its_line_and_the_other_keys_are_still_read(
    key: str, shown: str
) -> None:
    doc = read_yaml(f"name: images\n{key}: x\nprefix: /a\n")
    assert doc.problems == [Problem(2, (), f"key {shown} must be a string; quote it")]
    assert doc.data == {"name": "images", "prefix": "/a"}


def test_a_quoted_key_is_text() -> None:
    assert read_yaml('"true": 1\n"1": 2\n').data == {"true": 1, "1": 2}


def test_a_collection_as_a_key_is_reported_at_its_line() -> None:
    doc = read_yaml("a: 1\n? [x, y]\n: 2\n")
    assert doc.problems == [Problem(2, (), "a key must be a plain value, not a collection")]
    assert doc.data == {"a": 1}


def test_every_value_and_key_has_its_line_and_a_path_not_in_the_file_gets_its_nearest_ancestors() -> None:
    doc = read(
        """\
        routes:
          - name: images
            rollout:
              percent: 5
        """
    )
    assert doc.key_lines[("routes", 0, "rollout")] == 3
    assert doc.value_lines[("routes", 0, "rollout")] == 4  # a block mapping starts at its first key
    assert doc.line_of(("routes", 0, "rollout")) == 3  # the key's line: where an operator looks
    assert doc.line_of(("routes", 0, "rollout", "percent")) == 4
    assert doc.line_of(("routes", 0, "rollout", "salt")) == 3  # a missing field: the mapping that lacks it
    assert doc.line_of(("routes", 0, "shadow", "percent")) == 2  # the list item's line
    assert doc.line_of(("flags",)) == 1


@pytest.mark.parametrize("text", ["", "# nothing here\n", "\n\n"])
def test_an_empty_file_is_no_data_and_no_problems(text: str) -> None:
    doc = read_yaml(text)
    assert (doc.data, doc.problems) == (None, [])
    assert doc.line_of(("routes",)) == 1


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "expected ',' or ']', but got ':' (while parsing a flow sequence)"),
        ("a: 1\nb: 2\n  c: 3\n", 3, "mapping values are not allowed here"),
        ('a: 1\nb: "open\n', 3, "found unexpected end of stream (while scanning a quoted scalar)"),
        ("a: 1\nb: *nowhere\n", 2, "found undefined alias 'nowhere'"),
        ("a: 1\n---\nb: 2\n", 2, "but found another document (expected a single document in the stream)"),
    ],
)
def test_text_that_is_not_yaml_is_refused_with_its_line(text: str, line: int, message: str) -> None:
    refused = refusal(text)
    assert (refused.line, refused.message) == (line, message)
    assert str(refused) == f"{line}: {message}"


@pytest.mark.parametrize(("char", "code"), [("\x07", "0007"), ("\x00", "0000"), ("\ufffe", "FFFE")])
def test_a_character_yaml_forbids_is_named_by_its_code_point_at_its_line(char: str, code: str) -> None:
    refused = refusal(f"a: 1\nb: 2\nc: x{char}\n")
    assert (refused.line, refused.message) == (3, f"character U+{code} is not allowed in YAML")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\u2028"])
def test_a_forbidden_character_is_placed_on_its_line_whatever_the_line_endings(newline: str) -> None:
    refused = refusal(newline.join(["a: 1", "b: 2", "c: x\x07", ""]))
    assert refused.line == 3


def test_an_alias_to_a_value_that_contains_it_is_refused() -> None:
    refused = refusal("a: 1\nloop: &self [1, *self]\n")
    assert (refused.line, refused.message) == (2, "an alias refers to a value that contains it")


def test_the_number_of_values_is_bounded_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 10)
    assert read_yaml("[1, 2, 3, 4, 5, 6, 7, 8, 9]").data == list(range(1, 10))  # the list and nine values

    refused = refusal("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]")
    assert refused.message == "more than 10 values (aliases nested too deep?)"


def test_aliases_that_would_expand_past_the_bound_are_refused_before_they_expand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yamlsource, "MAX_NODES", 50)
    bomb = "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\n"  # 112 values once expanded
    assert refusal(bomb).message == "more than 50 values (aliases nested too deep?)"


def test_values_nested_too_deeply_to_walk_are_refused() -> None:
    refused = refusal("[" * 5000 + "]" * 5000)
    assert (refused.line, refused.message) == (1, "values are nested too deeply")


@given(text=st.text(max_size=60))
def test_any_text_is_a_document_or_a_located_syntax_error(text: str) -> None:
    lines = len(text.splitlines()) + 1  # splitlines knows every break YAML knows (\r, \x85, \u2028...)
    try:
        doc = read_yaml(text)
    except YamlSyntaxError as refused:
        where = [refused.line]
    else:
        where = [problem.line for problem in doc.problems]
    assert all(1 <= line <= lines + 1 for line in where)


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ((), "(root)"),
        (("routes", 0, "rollout", "percent"), "routes[0].rollout.percent"),
        ((0, "name"), "[0].name"),
        (("upstreams", "image-service_2", "url"), "upstreams.image-service_2.url"),
        (("flags", "x.y"), 'flags["x.y"]'),
        (("headers", "a b"), 'headers["a b"]'),
        (("names", "é"), 'names["é"]'),  # readable, not \u-escaped
        (("names", "a\nb"), 'names["a\\nb"]'),  # a control character cannot break the error line
    ],
)
def test_a_path_is_shown_the_way_the_file_nests_it(path: tuple[str | int, ...], shown: str) -> None:
    assert format_path(path) == shown
