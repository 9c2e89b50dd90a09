"""set_percent changes one route's rollout.percent in the text of routes.yaml and not one other character."""

from __future__ import annotations

import difflib
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import ConfigError, parse_config
from proxy.rollout.yamledit import EditError, format_percent, read_percent, set_percent

SHIPPED = (Path(__file__).resolve().parents[4] / "routes.yaml").read_text(encoding="utf-8")  # commented

TWO_ROUTES = textwrap.dedent("""\
    version: 1
    upstreams:
        legacy: {url: "http://127.0.0.1:8081"}      # four-space mappings
        new:    {url: "http://127.0.0.1:8082"}
    default_upstream: legacy
    routes:
    - name: images                 # a dash at column 0
      match: {path_prefix: /api/images}
      primary: legacy
      candidate: new
      rollout: {percent: 5, sticky_key: [client_ip]}   # flow style
    - name: thumbs
      match:
        path_prefix: /api/thumbs
      primary: legacy
      candidate: new
      rollout:
        percent:   5.5    # block style, odd spacing
        salt: 'thumbs'
    - name: legacy-only
      match: {path_prefix: /}
      primary: legacy
    """)


def changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_the_shipped_file_differs_only_in_that_one_value() -> None:
    edited = set_percent(SHIPPED, "images", 25)

    comment = "# 0..100, at most two decimals; bucket < percent * 100 -> candidate."
    assert changed_lines(SHIPPED, edited) == [
        f"-      percent: 10               {comment}",
        f"+      percent: 25               {comment}",
    ]
    assert read_percent(edited, "images") == 25


def test_an_end_of_line_comment_keeps_its_column_when_the_number_grows() -> None:
    edited = set_percent(SHIPPED, "images", 12.5)
    assert changed_lines(SHIPPED, edited)[1].startswith("+      percent: 12.5             # 0..100, at")


@pytest.mark.parametrize(
    ("route", "percent", "before", "after"),
    [
        ("images", 50, "  rollout: {percent: 5, sticky_key: [client_ip]}   # flow style",
         "  rollout: {percent: 50, sticky_key: [client_ip]}   # flow style"),
        ("thumbs", 7.25, "    percent:   5.5    # block style, odd spacing",
         "    percent:   7.25   # block style, odd spacing"),
        ("thumbs", 100, "    percent:   5.5    # block style, odd spacing",
         "    percent:   100    # block style, odd spacing"),
    ],
)  # fmt: skip
def test_flow_and_block_style_both_change_in_place(
    route: str, percent: float, before: str, after: str
) -> None:
    edited = set_percent(TWO_ROUTES, route, percent)
    assert changed_lines(TWO_ROUTES, edited) == [f"-{before}", f"+{after}"]
    assert read_percent(edited, route) == percent


def test_only_the_named_route_changes_even_when_another_has_the_same_percent() -> None:
    text = TWO_ROUTES.replace("percent:   5.5", "percent:   5")
    edited = set_percent(text, "thumbs", 10)
    assert read_percent(edited, "images") == 5
    assert read_percent(edited, "thumbs") == 10


@pytest.mark.parametrize(("percent", "written"), [(25.0, "25"), (0, "0"), (12.5, "12.5"), (33.33, "33.33")])
def test_a_whole_percent_is_written_as_an_integer(percent: float, written: str) -> None:
    assert format_percent(percent) == written
    assert f"percent: {written}" in set_percent(SHIPPED, "images", percent)


def test_setting_the_percent_already_written_returns_the_text_untouched() -> None:
    assert set_percent(TWO_ROUTES, "thumbs", 5.5) is TWO_ROUTES


def test_windows_line_endings_stay() -> None:
    text = TWO_ROUTES.replace("\n", "\r\n")
    edited = set_percent(text, "thumbs", 20)
    assert edited == text.replace("percent:   5.5 ", "percent:   20  ")


@pytest.mark.parametrize(
    ("route", "message"),
    [("nope", "routes.yaml has no route named 'nope' (routes: images, thumbs, legacy-only)"),
     ("legacy-only", "route 'legacy-only' has no rollout block: there is no percent to set")],
)  # fmt: skip
def test_a_missing_route_or_one_without_rollout_is_a_clear_error(route: str, message: str) -> None:
    with pytest.raises(EditError, match=re.escape(message)):
        set_percent(TWO_ROUTES, route, 5)
    assert read_percent(TWO_ROUTES, route) is None


@pytest.mark.parametrize(
    ("percent", "message"),
    [(101, "between 0 and 100 (got 101)"), (-1, "between 0 and 100"), (float("nan"), "must be a number"),
     (True, "must be a number (got True)")],
)  # fmt: skip
def test_a_percent_out_of_range_is_refused_before_anything_is_read(percent: float, message: str) -> None:
    with pytest.raises(EditError, match=re.escape(message)):
        set_percent("not even yaml: [", "images", percent)


def test_text_the_validator_refuses_is_never_returned() -> None:
    with pytest.raises(ConfigError, match="must have at most two decimals"):
        set_percent(SHIPPED, "images", 1 / 3)
    broken = SHIPPED.replace("default_upstream: legacy", "default_upstream: nowhere")
    with pytest.raises(ConfigError, match="unknown upstream 'nowhere'"):
        set_percent(broken, "images", 20)
    with pytest.raises(ConfigError):
        read_percent(broken, "images")


@pytest.mark.parametrize(
    ("rollout", "message"),
    [("rollout: {percent: &p 5}", "is an anchor or an alias (&p)"),
     ("rollout: {<<: {percent: 5}, salt: x}", "comes from a merge key (<<)"),
     ("rollout: {percent: !!int 5}", "cannot find the percent of route 'images' as a plain number")],
)  # fmt: skip
def test_a_percent_that_cannot_change_alone_is_refused(rollout: str, message: str) -> None:
    text = TWO_ROUTES.replace("rollout: {percent: 5, sticky_key: [client_ip]}", rollout)
    with pytest.raises(EditError, match=re.escape(message)):
        set_percent(text, "images", 9)


def test_a_rollout_block_shared_through_an_alias_is_refused_and_an_unshared_one_changes_in_place() -> None:
    text = TWO_ROUTES.replace("rollout: {percent: 5, sticky_key", "rollout: &shared {percent: 5, sticky_key")
    edited = set_percent(text, "images", 9)
    assert changed_lines(text, edited)[1].startswith("+  rollout: &shared {percent: 9, sticky_key")

    thumbs = "  rollout:\n    percent:   5.5    # block style, odd spacing\n    salt: 'thumbs'\n"
    shared = text.replace(thumbs, "  rollout: *shared\n")
    assert read_percent(shared, "thumbs") == 5
    with pytest.raises(EditError, match="would change more than that value"):
        set_percent(shared, "images", 9)


@settings(max_examples=25)  # each example reads the shipped file seven times
@given(percent=st.integers(0, 10_000).map(lambda hundredths: hundredths / 100))
def test_any_valid_percent_changes_one_line_and_setting_it_back_restores_the_file(percent: float) -> None:
    edited = set_percent(SHIPPED, "images", percent)

    assert read_percent(edited, "images") == percent
    assert len(changed_lines(SHIPPED, edited)) == (0 if percent == 10 else 2)
    assert parse_config(edited).model_dump(exclude={"routes"}) == parse_config(SHIPPED).model_dump(
        exclude={"routes"}
    )
    assert set_percent(edited, "images", 10) == SHIPPED
