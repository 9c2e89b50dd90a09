"""Sticky bucketing: a key (user id, cookie, client address) -> a stable basis point in 0..9999.

Owns: the hash and the rollout comparison. Pure: no I/O, no clock, no randomness.

The candidate owns the low range [0, percent * 100): raising the percentage only adds users to
the candidate, lowering it only moves the top slice back. The denominator never changes, so
no user is reshuffled when the percentage moves (unlike `value % total_weight`).
Python's built-in `hash()` is salted per process: two replicas would disagree. Never use it here.
"""

from __future__ import annotations

import hashlib

__all__ = ["BASIS_POINTS", "bucket", "in_rollout", "threshold"]

BASIS_POINTS = 10_000


def bucket(key: str, *, salt: str) -> int:
    """Map key to a stable basis point in 0..9999: the same in every process, replica and restart."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BASIS_POINTS


def threshold(percent: float) -> int:
    """Basis points of the candidate's range: 25 -> 2500, 0.01 -> 1 (two decimals at most)."""
    return round(percent * 100)


def in_rollout(key: str, *, percent: float, salt: str) -> bool:
    return bucket(key, salt=salt) < threshold(percent)  # raising percent only adds users
