"""The two whole bodies of kept shadow mismatches, for the migration console, within a byte budget per route.

Owns: Body, Bodies (what a mismatching pair answered, decoded: both JSON documents, or both pictures),
Kept (what keeping one pair did) and SampleVault. Only JSON and image answers are kept (Bodies.of): the
console shows two JSON documents side by side with the differing paths marked, or the two pictures; the
admin JSON shows a cut text view instead (mismatches.AnswerView). Bounded: per route at most `budget`
bytes (the route's shadow.keep_bodies_bytes), the oldest pair dropped first to make room; a pair larger
than the whole budget is not kept. The mismatch store (mismatches.py) forgets a pair when its mismatch
goes. Pure: the caller counts what Kept says in strangler_shadow_bodies_total.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from proxy.shadow.compare import Answer, decoded_body, media_type

__all__ = ["Bodies", "Body", "Kept", "SampleVault"]


@dataclass(frozen=True, slots=True)
class Body:
    media_type: str  # "image/png", "application/json", ... ("" when the answer had none)
    data: bytes  # decoded (no gzip), whole

    @property
    def is_json(self) -> bool:
        return self.media_type == "application/json" or self.media_type.endswith("+json")

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


@dataclass(frozen=True, slots=True)
class Bodies:
    primary: Body
    candidate: Body

    @classmethod
    def of(cls, primary: Answer, candidate: Answer) -> Bodies | None:
        """Both bodies when either answer is JSON or an image; None for other answers (text, bytes)."""
        pair = cls(
            Body(media_type(primary.headers), decoded_body(primary)),
            Body(media_type(candidate.headers), decoded_body(candidate)),
        )
        wanted = any(body.is_json or body.is_image for body in (pair.primary, pair.candidate))
        return pair if wanted else None

    @property
    def size(self) -> int:
        return len(self.primary.data) + len(self.candidate.data)

    def side(self, name: str) -> Body | None:
        """"primary" or "candidate"; None for anything else."""
        return self.primary if name == "primary" else self.candidate if name == "candidate" else None


@dataclass(frozen=True, slots=True)
class Kept:
    """What keeping one pair did: `result` None when nothing was kept (not JSON nor image, or budget 0);
    `dropped`: older pairs of the route dropped to make room."""

    result: Literal["kept", "too_large"] | None = None
    dropped: int = 0


class SampleVault:
    def __init__(self) -> None:
        self._routes: dict[str, OrderedDict[int, Bodies]] = {}  # route -> ref -> pair, oldest first
        self._bytes: dict[str, int] = {}
        self._where: dict[int, str] = {}  # ref -> its route

    def keep(self, route: str, ref: int, bodies: Bodies | None, *, budget: int) -> Kept:
        if bodies is None or budget <= 0:
            return Kept()
        if bodies.size > budget:
            return Kept("too_large")
        pairs = self._routes.setdefault(route, OrderedDict())
        dropped = 0
        while pairs and self._bytes.get(route, 0) + bodies.size > budget:
            old_ref, _ = next(iter(pairs.items()))
            self._drop(old_ref)
            dropped += 1
        self._routes.setdefault(route, pairs)[ref] = bodies
        self._bytes[route] = self._bytes.get(route, 0) + bodies.size
        self._where[ref] = route
        return Kept("kept", dropped)

    def get(self, ref: int) -> Bodies | None:
        route = self._where.get(ref)
        return None if route is None else self._routes[route].get(ref)

    def forget(self, refs: Iterable[int]) -> None:
        for ref in refs:
            if ref in self._where:
                self._drop(ref)

    def held(self, route: str) -> int:
        """The bytes kept for `route`."""
        return self._bytes.get(route, 0)

    def _drop(self, ref: int) -> None:
        route = self._where.pop(ref)
        pairs = self._routes[route]
        gone = pairs.pop(ref)
        self._bytes[route] -= gone.size
        if not pairs:
            del self._routes[route], self._bytes[route]
