"""Two JSON documents side by side: each line knows its field path, and the differing ones are marked."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.console.jsonview import Line, lines, split_detail


def text(found: list[Line]) -> str:
    return "\n".join(line.indent + line.text for line in found)


def test_a_document_prints_as_indented_json_with_each_line_on_its_path() -> None:
    found, cut = lines({"id": "a", "images": [{"width": 512}], "empty": []}, {"images[0].width"})

    assert not cut
    assert text(found) == json.dumps({"id": "a", "images": [{"width": 512}], "empty": []}, indent=2)
    assert [(line.path, line.marked) for line in found if line.marked] == [("images[0].width", True)]
    paths = {line.path for line in found}
    assert paths == {"(body)", "id", "images", "images[0]", "images[0].width", "empty"}


def test_a_marked_container_marks_everything_inside_it() -> None:
    found, _ = lines({"images": [1, 2], "n": 3}, {"images"})
    assert [line.text for line in found if line.marked] == ['"images": [', "1,", "2", "],"]


def test_the_whole_body_can_be_marked_and_a_long_document_is_cut() -> None:
    found, _ = lines([1, 2], {"(body)"})
    assert all(line.marked for line in found)
    found, cut = lines(list(range(100)), set(), limit=10)
    assert cut
    assert len(found) == 10


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                max_size=3), max_leaves=20))
def test_the_lines_are_the_document_itself(document: object) -> None:
    found, _ = lines(document, set())
    assert json.loads(text(found)) == document


def test_a_difference_splits_into_its_primary_and_candidate_values() -> None:
    assert split_detail("body_value at images[0].width: 512 != 1024") == ("512", "1024")
    assert split_detail("body_shape at extra: present != missing") == ("present", "missing")
    assert split_detail("status at (status): 201 != 500") == ("201", "500")
    assert split_detail("something else") == ("something else", "")
