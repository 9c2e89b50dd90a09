"""Idempotency records and the terms a claim is asked on: who holds a key, until when, and what a
record means for a new request.

A claim carries an owner token (one per request) and, from the start, the id of the generation its
saga will write, so that anyone looking at a claim later (a retried write, `reconcile`) can tell
whose it is and what it may have left behind. Pure: times are passed in, nothing is stored here.
"""

from __future__ import annotations

import enum
from dataclasses import KW_ONLY, dataclass

from imageservice.domain.errors import InProgress, KeyReused

__all__ = ["Claim", "ClaimResult", "ClaimTerms", "IdempotencyRecord", "KeyStatus", "check_existing"]


class KeyStatus(enum.Enum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class ClaimTerms:
    """What a request asks for when it claims a key: the key and the request it is bound to, the owner
    token that says "this claim is mine", the generation its saga will write, and the times that set
    the record's expiries (`now` also decides whether a record met in the store is still live)."""

    key: str
    fingerprint: str
    _: KW_ONLY
    owner: str
    now: float
    ttl_s: float
    in_progress_ttl_s: float
    generation_id: str | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    status: KeyStatus
    owner: str
    expires_at: float
    in_progress_expires_at: float
    generation_id: str | None = None

    @classmethod
    def claimed(cls, terms: ClaimTerms) -> IdempotencyRecord:
        """The record a fresh claim writes: in progress, held by its owner, with both expiries set."""
        return cls(
            key=terms.key,
            fingerprint=terms.fingerprint,
            status=KeyStatus.IN_PROGRESS,
            owner=terms.owner,
            expires_at=terms.now + terms.ttl_s,
            in_progress_expires_at=terms.now + terms.in_progress_ttl_s,
            generation_id=terms.generation_id,
        )

    def is_live(self, now: float) -> bool:
        """Stores may keep dead records for a while (DynamoDB TTL lags); expiry is decided here."""
        if self.expires_at < now:
            return False
        return not (self.status is KeyStatus.IN_PROGRESS and self.in_progress_expires_at < now)

    def held_by(self, owner: str) -> bool:
        """Our own claim, met again: a retried conditional write whose first attempt had landed."""
        return self.status is KeyStatus.IN_PROGRESS and self.owner == owner

    def is_abandoned(self, now: float, *, in_progress_ttl_s: float, stale_after_s: float) -> bool:
        """An in-progress claim whose holder is gone: its window has passed, or it was taken longer
        than `stale_after_s` ago (the claim time is derived from the in-progress window the service
        runs with, `in_progress_ttl_s`)."""
        if self.status is not KeyStatus.IN_PROGRESS or self.expires_at < now:
            return False
        claimed_at = self.in_progress_expires_at - in_progress_ttl_s
        return self.in_progress_expires_at < now or claimed_at + stale_after_s <= now


@dataclass(frozen=True, slots=True)
class Claim:
    """A fresh hold on a key: only the holder (same owner token) may complete or release it."""

    record: IdempotencyRecord


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claim: Claim | None = None
    existing: IdempotencyRecord | None = None


def check_existing(record: IdempotencyRecord, fingerprint: str) -> str:
    """Decide what a live record of another request means for this one; returns the generation id."""
    if record.fingerprint != fingerprint:
        raise KeyReused("Idempotency-Key: this key was used with a different request body")
    if record.status is KeyStatus.IN_PROGRESS or record.generation_id is None:
        raise InProgress("Idempotency-Key: a request with this key is still in progress")
    return record.generation_id
