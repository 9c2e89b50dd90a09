"""Field paths: the `ignore` language of shadow.compare parsed into steps, the steps named for display,
and which concrete paths a pattern covers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config.fieldpaths import ANY_INDEX, ANY_KEY, PathSyntaxError, format_path, parse_path, under

# A concrete JSON path whose keys can be written plainly: what compare() names and an ignore list names.
plain_steps = st.lists(
    st.integers(0, 99) | st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=5
)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("id", ("id",)),
        ("images[*].url", ("images", ANY_INDEX, "url")),
        ("images[0].url", ("images", 0, "url")),
        ("[*].name", (ANY_INDEX, "name")),
        ("*.etag", (ANY_KEY, "etag")),
        ("a.b[2][*]", ("a", "b", 2, ANY_INDEX)),
    ],
)
def test_ignore_paths_are_parsed_into_steps(text: str, steps: tuple[object, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize("text", ["", ".a", "a.", "a..b", "a[", "a[01]", "a[-1]", "a]", "a[0]b", " a"])
def test_malformed_ignore_paths_are_refused(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(text)


def test_an_ignore_path_covers_its_whole_subtree_and_nothing_beside_it() -> None:
    pattern = parse_path("images[*].url")
    assert under(pattern, ("images", 3, "url"))
    assert under(pattern, ("images", 3, "url", "host"))
    assert not under(pattern, ("images", 3, "name"))
    assert not under(pattern, ("images", "3", "url"))  # a key "3" is not an index
    assert not under(pattern, ("images",))


@given(steps=plain_steps)
def test_a_formatted_path_parses_back_to_the_same_steps(steps: list[int | str]) -> None:
    assert parse_path(format_path(tuple(steps))) == tuple(steps)


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("[0]", (0,)),
        ("[*]", (ANY_INDEX,)),
        ("[0][12].id", (0, 12, "id")),
        ("*", (ANY_KEY,)),
        ("content type.x-id", ("content type", "x-id")),  # a name is anything but '.', '[' and ']'
    ],
)
def test_a_leading_index_addresses_a_top_level_array_and_names_may_hold_inner_spaces(
    text: str, steps: tuple[object, ...]
) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize("text", ["a .b", "a. b", "a\t", "[*] ", "a[*]]", "a[ 0]", "a[0.5]", "[]", "a.[0]"])
def test_stray_blanks_brackets_and_dots_around_a_step_are_refused(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must not be empty"),
        ("a..b", "expected a field name at position 2 of 'a..b'"),
        ("a[x]", "expected '.', '[N]' or '[*]' at position 1 of 'a[x]'"),
        ("images[*]url", "expected '.', '[N]' or '[*]' at position 9 of 'images[*]url'"),
    ],
)
def test_a_refusal_says_where_the_path_went_wrong(text: str, message: str) -> None:
    with pytest.raises(PathSyntaxError) as refused:
        parse_path(text)
    assert str(refused.value) == message
    assert isinstance(refused.value, ValueError)  # what the config schema's validators turn into an error


@given(text=st.text(max_size=20))
def test_any_text_is_either_a_pattern_or_a_path_syntax_error(text: str) -> None:
    try:
        pattern = parse_path(text)
    except PathSyntaxError:
        return
    assert pattern  # never empty
    assert all(isinstance(step, str | int) or step in (ANY_KEY, ANY_INDEX) for step in pattern)


def test_a_wildcard_name_matches_any_key_but_never_an_index_and_a_wildcard_index_never_a_key() -> None:
    assert under(parse_path("*.etag"), ("headers", "etag"))
    assert not under(parse_path("*.etag"), (0, "etag"))
    assert under(parse_path("[*]"), (7,))
    assert not under(parse_path("[*]"), ("7",))


def test_a_numbered_index_covers_that_element_only() -> None:
    pattern = parse_path("images[1]")
    assert under(pattern, ("images", 1))
    assert under(pattern, ("images", 1, "url"))
    assert not under(pattern, ("images", 0, "url"))
    assert not under(pattern, ("images", "1", "url"))


@pytest.mark.parametrize(
    ("steps", "shown"),
    [
        ((), "(body)"),
        (("images", 0, "width"), "images[0].width"),
        ((0, "name"), "[0].name"),
        ((0, 1), "[0][1]"),
        (("a.b",), '["a.b"]'),  # a key with a dot is one step, not two
        (("x", "a[0]"), 'x["a[0]"]'),
        (("*",), '["*"]'),  # a key literally named "*" is not the wildcard
        (("",), '[""]'),
    ],
)
def test_differences_are_named_by_a_readable_path_that_keeps_odd_keys_apart(
    steps: tuple[str | int, ...], shown: str
) -> None:
    assert format_path(steps) == shown


@given(steps=plain_steps, below=st.lists(st.integers(0, 9) | st.text(max_size=3), max_size=3))
def test_a_path_written_in_an_ignore_list_covers_itself_and_everything_below_it_not_its_parent(
    steps: list[int | str], below: list[int | str]
) -> None:
    pattern = parse_path(format_path(tuple(steps)))
    assert under(pattern, (*steps, *below))
    assert not under(pattern, tuple(steps[:-1]))


@given(steps=plain_steps)
def test_wildcards_in_every_position_cover_any_path_of_the_same_key_and_index_shape(
    steps: list[int | str],
) -> None:
    pattern = tuple(ANY_INDEX if isinstance(step, int) else ANY_KEY for step in steps)
    assert under(pattern, tuple(steps))
    flipped = tuple(str(step) if isinstance(step, int) else 0 for step in steps)  # keys and indexes swap
    assert not under(pattern, flipped)
