"""Generation metadata and idempotency records in SQLite (stdlib sqlite3), off the event loop.

One connection, used by one worker thread, so statements never interleave; each use case is one
transaction. Claiming a key is `BEGIN IMMEDIATE` + read + write: the write lock makes it the
conditional write the saga needs. Completing writes the generation and the key in one transaction.
A statement that fails (a full disk: "database or disk is full") rolls its transaction back, so a
failed write never half-lands; the saga retries what it must (a key release) in the background.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from imageservice.adapters.codec import generation_from_fields, images_to_json, record_from_fields
from imageservice.domain.idempotency import Claim, ClaimResult, ClaimTerms, IdempotencyRecord, KeyStatus
from imageservice.domain.model import Generation

__all__ = ["SqliteRepository"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY, created INTEGER NOT NULL, seq INTEGER NOT NULL,
    prompt TEXT NOT NULL, size TEXT NOT NULL, images TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_newest ON generations (created DESC, seq DESC);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status TEXT NOT NULL, owner TEXT NOT NULL,
    expires_at REAL NOT NULL, in_progress_expires_at REAL NOT NULL, generation_id TEXT
);
"""


class SqliteRepository:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the repository is not open")
        return self._db

    # ------------------------------------------------------------ idempotency

    async def claim(self, terms: ClaimTerms) -> ClaimResult:
        record = IdempotencyRecord.claimed(terms)

        def work() -> ClaimResult:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT * FROM idempotency WHERE key = ?", (record.key,)).fetchone()
                if row is not None:
                    existing = record_from_fields(dict(row))
                    if existing.held_by(record.owner):
                        db.execute("COMMIT")
                        return ClaimResult(claim=Claim(record))
                    if existing.is_live(terms.now):
                        db.execute("COMMIT")
                        return ClaimResult(existing=existing)
                db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key,
                        record.fingerprint,
                        record.status.value,
                        record.owner,
                        record.expires_at,
                        record.in_progress_expires_at,
                        record.generation_id,
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return ClaimResult(claim=Claim(record))

        return await self._run(work)

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        def work() -> None:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM generations").fetchone()[0]
                db.execute(
                    "INSERT INTO generations VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        generation.id,
                        generation.created,
                        seq,
                        generation.prompt,
                        str(generation.size),
                        images_to_json(generation),
                    ),
                )
                if claim is not None:
                    updated = db.execute(
                        "UPDATE idempotency SET status = ?, generation_id = ? WHERE key = ? AND owner = ?",
                        (KeyStatus.COMPLETED.value, generation.id, claim.record.key, claim.record.owner),
                    ).rowcount
                    if updated != 1:
                        raise LookupError("the idempotency key is no longer held by this request")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(work)

    async def release(self, claim: Claim) -> None:
        def work() -> None:
            self._conn().execute(
                "DELETE FROM idempotency WHERE key = ? AND owner = ? AND status = ?",
                (claim.record.key, claim.record.owner, KeyStatus.IN_PROGRESS.value),
            )

        await self._run(work)

    # ------------------------------------------------------------ generations

    async def get(self, generation_id: str) -> Generation | None:
        def work() -> Generation | None:
            row = self._conn().execute("SELECT * FROM generations WHERE id = ?", (generation_id,)).fetchone()
            return _generation(row) if row is not None else None

        return await self._run(work)

    async def list_recent(self, limit: int) -> list[Generation]:
        def work() -> list[Generation]:
            rows = (
                self._conn()
                .execute("SELECT * FROM generations ORDER BY created DESC, seq DESC LIMIT ?", (limit,))
                .fetchall()
            )
            return [_generation(row) for row in rows]

        return await self._run(work)

    async def held_keys(self) -> list[str]:
        """In-progress keys (for tests and operators): after a failed saga there must be none."""
        return [record.key for record in await self.all_keys() if record.status is KeyStatus.IN_PROGRESS]

    # ------------------------------------------------------------ for reconcile

    async def all_generations(self) -> list[Generation]:
        def work() -> list[Generation]:
            return [_generation(row) for row in self._conn().execute("SELECT * FROM generations").fetchall()]

        return await self._run(work)

    async def all_keys(self) -> list[IdempotencyRecord]:
        def work() -> list[IdempotencyRecord]:
            rows = self._conn().execute("SELECT * FROM idempotency ORDER BY key").fetchall()
            return [record_from_fields(dict(row)) for row in rows]

        return await self._run(work)

    async def delete_generation(self, generation_id: str) -> None:
        def work() -> None:
            self._conn().execute("DELETE FROM generations WHERE id = ?", (generation_id,))

        await self._run(work)

    async def drop_key(self, record: IdempotencyRecord) -> bool:
        def work() -> bool:
            deleted = self._conn().execute(
                "DELETE FROM idempotency WHERE key = ? AND owner = ? AND status = ? AND generation_id IS ?",
                (record.key, record.owner, record.status.value, record.generation_id),
            ).rowcount
            return bool(deleted)

        return await self._run(work)


def _generation(row: Any) -> Generation:
    return generation_from_fields(
        generation_id=row["id"],
        created=row["created"],
        prompt=row["prompt"],
        size=row["size"],
        images_json=row["images"],
    )
