"""Idempotency-Key bookkeeping for POST /api/images (pure: no I/O, no aiohttp).

Owns the claim/complete/release life cycle of a key and the memory bound; the handler decides what
to answer for each outcome. A key is claimed before generating, completed with the response, and
released when generation fails, so a failed attempt can be retried with the same key.
A different body wins over "in progress": the same key with another body is REUSED even while the
first request is still running.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["Claim", "ClaimOutcome", "IdempotencyTable", "StoredResponse", "fingerprint"]


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    """The key was free: the caller now owns it and must complete or release it."""
    REPLAY = "replay"
    """The same key and body already succeeded: answer with the stored response."""
    IN_PROGRESS = "in_progress"
    """The same key and body are being generated right now."""
    REUSED = "reused"
    """The key was used with a different body."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    response: StoredResponse | None = None


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    response: StoredResponse | None = None


def fingerprint(payload: object) -> str:
    """The identity of a request body: equal JSON values give equal fingerprints, whatever the spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyTable:
    def __init__(self, max_keys: int) -> None:
        self._max = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def claim(self, key: str, body_fingerprint: str) -> Claim:
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(body_fingerprint)
            self._evict()
            return Claim(ClaimOutcome.CLAIMED)
        if entry.fingerprint != body_fingerprint:
            return Claim(ClaimOutcome.REUSED)
        if entry.response is None:
            return Claim(ClaimOutcome.IN_PROGRESS)
        return Claim(ClaimOutcome.REPLAY, entry.response)

    def complete(self, key: str, response: StoredResponse) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.response is None:
            entry.response = response

    def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.response is None:
            del self._entries[key]

    def _evict(self) -> None:
        """Forget the oldest completed keys beyond the bound; a key in progress is never forgotten."""
        if len(self._entries) <= self._max:
            return
        for key in [k for k, e in self._entries.items() if e.response is not None]:
            if len(self._entries) <= self._max:
                break
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
