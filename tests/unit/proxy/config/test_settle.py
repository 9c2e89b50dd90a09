"""When an edit of routes.yaml may go live: in-place changes settle, renames apply at once (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.config.settle import Seen, Settler

SERVING = "serving"
FILE = (1, 100)  # the inode of routes.yaml as it is edited in place


def seen(digest: str, inode: tuple[int, int] = FILE, *, realpath: str = "/etc/routes.yaml",
         renamed: bool = False) -> Seen:  # fmt: skip
    return Seen(digest, realpath, inode, renamed)


def started(settle_s: float = 2.0) -> Settler:
    settler = Settler(settle_s)
    assert settler.observe(seen(SERVING), now=0.0, serving=SERVING).action == "none"
    return settler


def test_an_in_place_edit_goes_live_only_after_its_content_stayed_the_same_for_the_settle_time() -> None:
    settler = started()
    first = settler.observe(seen("full"), now=10.0, serving=SERVING)
    assert (first.action, first.started) == ("wait", True)
    assert settler.observe(seen("full"), now=11.9, serving=SERVING).action == "wait"
    applied = settler.observe(seen("full"), now=12.0, serving=SERVING)
    assert (applied.action, applied.reason) == ("apply", "settled")


def test_an_editor_that_truncates_pauses_and_writes_never_puts_the_truncated_state_live() -> None:
    settler = started()
    verdicts = [settler.observe(seen(""), now=t, serving=SERVING) for t in (10.0, 10.5, 11.0)]  # 1.2 s pause
    verdicts += [settler.observe(seen("half"), now=11.2, serving=SERVING)]
    assert [v.action for v in verdicts] == ["wait"] * 4
    assert verdicts[-1].superseded  # the truncated state was replaced before it settled
    assert settler.observe(seen("full"), now=11.5, serving=SERVING).superseded
    assert settler.observe(seen("full"), now=13.4, serving=SERVING).action == "wait"
    assert settler.observe(seen("full"), now=13.5, serving=SERVING).reason == "settled"


def test_a_file_renamed_into_place_goes_live_at_once() -> None:
    settler = started()
    verdict = settler.observe(seen("new", (1, 200), renamed=True), now=10.0, serving=SERVING)
    assert (verdict.action, verdict.reason) == ("apply", "renamed")


def test_a_configmap_symlink_swap_goes_live_at_once_though_the_target_was_written_long_ago() -> None:
    settler = Settler(2.0)
    settler.observe(seen(SERVING, realpath="/cm/..2024_v1/routes.yaml"), now=0.0, serving=SERVING)
    swapped = seen("new", (1, 300), realpath="/cm/..2024_v2/routes.yaml", renamed=False)
    assert settler.observe(swapped, now=0.5, serving=SERVING).reason == "renamed"


def test_a_new_file_written_where_the_old_one_was_settles_like_an_in_place_edit() -> None:
    settler = started()  # deleted and created again: a new inode whose last change is its last write
    assert settler.observe(seen("half", (1, 400)), now=10.0, serving=SERVING).action == "wait"
    assert settler.observe(seen("full", (1, 400)), now=10.5, serving=SERVING).action == "wait"
    assert settler.observe(seen("full", (1, 400)), now=12.5, serving=SERVING).reason == "settled"


def test_a_content_tried_once_is_not_tried_again_until_the_file_changes() -> None:
    settler = started()
    settler.observe(seen("broken"), now=10.0, serving=SERVING)
    assert settler.observe(seen("broken"), now=12.0, serving=SERVING).reason == "settled"
    settler.tried("broken")  # it did not parse; the old config keeps serving
    assert [settler.observe(seen("broken"), now=t, serving=SERVING).action for t in (13.0, 20.0)] == [
        "none", "none"
    ]
    assert settler.observe(seen("fixed"), now=21.0, serving=SERVING).action == "wait"
    assert settler.observe(seen("fixed"), now=23.0, serving=SERVING).reason == "settled"


def test_a_content_an_operator_already_reloaded_is_not_applied_again() -> None:
    settler = started()
    settler.observe(seen("edited"), now=10.0, serving=SERVING)
    assert settler.observe(seen("edited"), now=12.0, serving="edited").action == "none"  # SIGHUP came first


def test_a_settle_time_of_zero_applies_a_change_at_first_sight() -> None:
    settler = started(0.0)
    assert settler.observe(seen("any"), now=10.0, serving=SERVING).reason == "settled"


@given(
    edits=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0.5, 1.9)), min_size=1, max_size=30
    )
)
def test_no_content_that_stayed_less_than_the_settle_time_is_ever_applied(
    edits: list[tuple[str, float]],
) -> None:
    """Each edit writes a content and leaves it for less than 2 s, looked at every 0.5 s (so each is seen
    at least once: a content never looked at cannot be told apart from the one before it): none settles."""
    settler = started(2.0)
    now, previous = 10.0, None
    for digest, stays in edits:
        if digest == previous:
            continue  # the same content again would just stay longer
        end, at = now + stays, now
        while at < end:
            verdict = settler.observe(seen(digest), now=at, serving=SERVING)
            assert verdict.action != "apply", (digest, at - now)
            at += 0.5
        now, previous = end, digest
