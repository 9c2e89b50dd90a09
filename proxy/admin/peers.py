"""The parent's line to its workers under `serve --workers N`: HTTP calls to each worker's admin app on
its private unix socket, in a directory only this user may enter (0700, made by proxy/workers.py).

Owns the calls and what came back (fanmerge.Answer); owns no rule for combining the answers (fanmerge.py).
The parent sends the bearer token the workers were started with, and the request id of the request that
caused the call, so the workers' log lines carry it. No keep-alive: a replaced worker listens on the same
path, and a pooled connection to its predecessor would only fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from yarl import URL

from proxy.admin.fanmerge import Answer
from strangler_common.web import REQUEST_ID_HEADER

__all__ = ["Peers", "Query", "Roster"]

Query = Mapping[str, str] | Sequence[tuple[str, str]]


class Roster(Protocol):
    """The workers as the supervisor (proxy/supervisor.py) keeps them."""

    def sockets(self) -> Sequence[str]:
        """Worker i's admin socket: the same path for every process that has been worker i."""
        ...

    def generation(self, index: int) -> int:
        """How many times worker `index` was started: a new number is a new process."""
        ...

    def describe(self) -> list[dict[str, Any]]:
        """Each worker for GET /workers: pid, state, restarts, since when, its socket."""
        ...


class Peers:
    def __init__(self, roster: Roster, *, token: str | None, timeout_s: float = 10.0) -> None:
        self.roster = roster
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout_s = timeout_s
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    def _session(self, index: int) -> aiohttp.ClientSession:
        session = self._sessions.get(index)
        if session is None:
            connector = aiohttp.UnixConnector(path=self.roster.sockets()[index], force_close=True)
            session = self._sessions[index] = aiohttp.ClientSession(connector=connector)
        return session

    async def call(
        self, index: int, method: str, path: str, *, query: Query | None = None,
        text: bool = False, request_id: str | None = None, timeout_s: float | None = None,
    ) -> Answer:  # fmt: skip
        """`path` is already percent-encoded; `query` may repeat a name (pairs, or a MultiDict); `text`:
        the body as text (/metrics), else as JSON."""
        headers = dict(self._headers)
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        url = URL.build(scheme="http", host="worker", path=path, encoded=True).with_query(query or {})
        timeout = aiohttp.ClientTimeout(total=timeout_s or self._timeout_s)
        session = self._session(index)
        try:
            async with session.request(method, url, headers=headers, timeout=timeout) as response:
                body = await response.text() if text else await response.json(content_type=None)
                return Answer(index, response.status, body)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return Answer(index, 0, None, error=error)

    async def raw(
        self, index: int, path: str, *, request_id: str | None = None
    ) -> tuple[int, str, bytes] | None:
        """GET `path` (percent-encoded) of worker `index` as bytes: (status, media type, body), or None when
        the worker did not answer."""
        headers = dict(self._headers)
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        url = URL.build(scheme="http", host="worker", path=path, encoded=True)
        try:
            async with self._session(index).get(url, headers=headers, timeout=aiohttp.ClientTimeout(
                total=self._timeout_s)) as response:  # fmt: skip
                return response.status, response.content_type, await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def every(self, method: str, path: str, **kwargs: Any) -> list[Answer]:
        """The same call to every worker at once, in worker order."""
        count = len(self.roster.sockets())
        return list(await asyncio.gather(*(self.call(i, method, path, **kwargs) for i in range(count))))

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()
