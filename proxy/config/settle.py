"""When an edited routes.yaml may go live. Pure: observations and the time come in, a verdict goes out.

An editor that truncates the file and then writes it leaves half-written states on disk, and many
prefixes of a routes.yaml are valid configs of their own (a cut can turn `max_body_bytes: 10485760`
into `max_body_bytes: 10` and drop every route after it). So:

- a change in place (the same file, new content) goes live only once the same content has been seen
  continuously for `settle_s`; every other content seen on the way is superseded, never applied;
- a file renamed into place goes live at once, for a rename is atomic: no partial state can be seen.
  Renamed means the path now resolves to another file (a Kubernetes ConfigMap's `..data` symlink
  swap), or the path names another inode whose last change came after its last write (ctime > mtime:
  `mv` of a file written, and perhaps validated, before);
- a new file written where the old one was (deleted and created again, as some editors save) is no
  rename: its last change is its last write (ctime == mtime), so it settles like an in-place edit.

A content that was tried and did not parse is not tried again until the file changes. Owns no I/O
(live/watch.py reads the file and reloads) and no parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["NOTHING", "Action", "Seen", "Settler", "Verdict"]

Action = Literal["wait", "apply", "none"]


@dataclass(frozen=True, slots=True)
class Seen:
    """One look at the file: its content's digest and which file it was."""

    digest: str
    realpath: str  # where the path resolved to (symlinks followed)
    inode: tuple[int, int]  # st_dev, st_ino
    renamed: bool  # st_ctime_ns > st_mtime_ns: the inode changed (a rename) after its last write


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: Literal["settled", "renamed"] | None = None  # why `apply`
    superseded: bool = False  # a content waiting to settle was replaced before it did: it never goes live
    started: bool = False  # this content is new: it waits `settle_s` from now


@dataclass(frozen=True, slots=True)
class _Pending:
    digest: str
    inode: tuple[int, int]
    since: float


NOTHING = Verdict("none")


class Settler:
    """Decides, look after look, whether the file's content may be applied now."""

    def __init__(self, settle_s: float) -> None:
        if not settle_s >= 0:
            raise ValueError("settle_s must be a number of seconds, 0 or more")
        self.settle_s = settle_s
        self._last: Seen | None = None  # the previous look
        self._pending: _Pending | None = None  # a changed content, waiting to settle
        self._tried: str | None = None  # the digest last applied or refused: not tried again

    def observe(self, seen: Seen, *, now: float, serving: str) -> Verdict:
        """`serving`: the digest of the config in service now (a reload by signal or admin moves it)."""
        previous, self._last = self._last, seen
        superseded = self._pending is not None and self._pending.digest != seen.digest
        if seen.digest == serving:  # unchanged, reverted, or applied by an operator already
            self._pending, self._tried = None, None
            return Verdict("none", superseded=superseded)
        if seen.digest == self._tried:
            self._pending = None
            return Verdict("none", superseded=superseded)
        if previous is not None and _swapped(previous, seen):
            self._pending = None
            return Verdict("apply", "renamed", superseded)
        pending, started = self._pending, False
        if pending is None or pending.digest != seen.digest or pending.inode != seen.inode:
            pending, started = _Pending(seen.digest, seen.inode, now), True
            self._pending = pending
        if now - pending.since >= self.settle_s:
            self._pending = None
            return Verdict("apply", "settled", superseded)
        return Verdict("wait", superseded=superseded, started=started)

    def tried(self, digest: str) -> None:
        """`digest` was read and applied or refused: do not try it again until the file changes."""
        self._tried = digest
        self._pending = None


def _swapped(previous: Seen, seen: Seen) -> bool:
    if seen.realpath != previous.realpath:
        return True
    return seen.inode != previous.inode and seen.renamed
