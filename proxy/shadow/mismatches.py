"""The last N shadow mismatches per route, with both answers (bodies truncated), for the admin listener.

Owns: Mismatch, AnswerView, Recorded and MismatchStore. Pure bookkeeping: the caller passes the time in.
Memory is bounded: at most `keep` records per route (the route's `shadow.keep_mismatches`, default
100), at most `max_routes` routes, and every body cut to `max_body_bytes` before it is stored.
Credentials in headers (cookies, authorization) are never kept. Each record gets a ref (a number, in the
order of recording) by which the console finds it again, with the whole bodies of JSON and image answers
when the route's byte budget kept them (samples.py: the vault is forgotten with its mismatch).
"""

from __future__ import annotations

import base64
import itertools
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.shadow.compare import Answer, Difference, decoded_body
from proxy.shadow.samples import Bodies, Kept, SampleVault

__all__ = ["REDACTED_HEADERS", "TEXT_MEDIA", "AnswerView", "Mismatch", "MismatchStore", "Recorded"]

REDACTED_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})
TEXT_MEDIA = ("text/", "application/json", "application/xml", "application/problem+json")


@dataclass(frozen=True, slots=True)
class AnswerView:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: str  # utf-8 text, or base64 for binary bodies
    encoding: str  # "utf-8" | "base64"
    size: int  # of the whole (decoded) body
    truncated: bool
    latency_s: float

    @classmethod
    def of(cls, answer: Answer, *, latency_s: float, max_body_bytes: int) -> AnswerView:
        body = decoded_body(answer)
        cut = body[:max_body_bytes]
        media = answer.headers.get("content-type", "").lower()
        text: str | None = None
        if media.startswith(TEXT_MEDIA) or "json" in media:
            try:
                text = cut.decode("utf-8")
            except UnicodeDecodeError as exc:
                # a character split by the cut is dropped; any other invalid byte makes the body binary
                split = len(body) > len(cut) and exc.reason == "unexpected end of data"
                text = cut[: exc.start].decode("utf-8", errors="strict") if split else None
        headers = tuple(
            (name, "<redacted>" if name in REDACTED_HEADERS else value)
            for name, value in answer.headers.items()
        )
        return cls(
            status=answer.status,
            headers=headers,
            body=text if text is not None else base64.b64encode(cut).decode("ascii"),
            encoding="utf-8" if text is not None else "base64",
            size=len(body),
            truncated=len(body) > len(cut),
            latency_s=latency_s,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "body_encoding": self.encoding,
            "body_size": self.size,
            "body_truncated": self.truncated,
            "latency_s": round(self.latency_s, 6),
        }


@dataclass(frozen=True, slots=True)
class Mismatch:
    at: float  # unix time
    route: str
    request_id: str
    method: str
    path: str  # the normalized path (the query is not kept: it may carry personal data)
    differences: tuple[Difference, ...]
    noise: tuple[Difference, ...]  # differences explained by the noise baseline, not counted
    primary: AnswerView
    candidate: AnswerView
    user_key: str | None = None  # the sticky key's source and keyed hash (userkey.py), never the key

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "route": self.route,
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "user_key": self.user_key,
            "differences": [_difference(d) for d in self.differences],
            "noise": [_difference(d) for d in self.noise],
            "primary": self.primary.to_json(),
            "candidate": self.candidate.to_json(),
        }


def _difference(difference: Difference) -> dict[str, str]:
    return {"kind": difference.kind, "path": difference.path, "detail": difference.detail}


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recorded mismatch's ref, and what became of its two bodies (samples.Kept)."""

    ref: int
    bodies: Kept


class MismatchStore:
    def __init__(self, *, keep: int = 100, max_body_bytes: int = 4096, max_routes: int = 256) -> None:
        self.keep = keep
        self.max_body_bytes = max_body_bytes
        self.max_routes = max_routes
        self._routes: OrderedDict[str, deque[tuple[int, Mismatch]]] = OrderedDict()
        self._recorded = itertools.count(1)  # the order of recording, across routes: each record's ref
        self._vault = SampleVault()

    def record(
        self, mismatch: Mismatch, *, keep: int | None = None, bodies: Bodies | None = None, budget: int = 0
    ) -> Recorded:
        """Keep `mismatch` (and `bodies`, within `budget` bytes for its route); the oldest go first."""
        limit = max(1, keep if keep is not None else self.keep)
        kept = self._routes.get(mismatch.route)
        if kept is None or kept.maxlen != limit:
            old = list(kept or ())
            self._vault.forget(ref for ref, _ in old[: max(0, len(old) - limit)])
            kept = deque(old, maxlen=limit)
            self._routes[mismatch.route] = kept
        if len(kept) == kept.maxlen:
            self._vault.forget([kept[0][0]])
        self._routes.move_to_end(mismatch.route)
        ref = next(self._recorded)
        kept.append((ref, mismatch))
        while len(self._routes) > self.max_routes:
            _, gone = self._routes.popitem(last=False)
            self._vault.forget(ref for ref, _ in gone)
        return Recorded(ref, self._vault.keep(mismatch.route, ref, bodies, budget=budget))

    def latest(self, route: str | None = None, limit: int = 20) -> list[Mismatch]:
        """Newest first (by time; at the same time, the last recorded first); all routes when `route` is
        None."""
        return [mismatch for _, mismatch in self.entries(route, limit)]

    def entries(self, route: str | None = None, limit: int = 20) -> list[tuple[int, Mismatch]]:
        """As latest(), each with its ref."""
        if route is not None:
            found = list(reversed(self._routes.get(route, ())))
        else:
            found = [entry for kept in self._routes.values() for entry in kept]
            found.sort(key=lambda entry: (entry[1].at, entry[0]), reverse=True)
        return found[: max(0, limit)]

    def find(self, ref: int) -> Mismatch | None:
        """The kept mismatch recorded as `ref`, or None when it is gone (or never was)."""
        for kept in self._routes.values():
            if kept and kept[0][0] <= ref <= kept[-1][0]:
                for number, mismatch in kept:
                    if number == ref:
                        return mismatch
        return None

    def bodies(self, ref: int) -> Bodies | None:
        """The whole bodies of mismatch `ref`, when its route's budget kept them and it is still kept."""
        return self._vault.get(ref)

    def count(self, route: str) -> int:
        return len(self._routes.get(route, ()))

    def routes(self) -> Mapping[str, int]:
        return {name: len(kept) for name, kept in self._routes.items()}

    def view(self, answer: Answer, latency_s: float) -> AnswerView:
        return AnswerView.of(answer, latency_s=latency_s, max_body_bytes=self.max_body_bytes)
