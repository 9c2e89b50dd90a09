"""The progressive-delivery controller as the console sees it: over the controller's own listener
(proxy/controller/listener.py), GET /status for each rollout's phase, and the operators' commands
POST /routes/{route}/{promote|pause|resume|abort} with the admin token.

Owns ControllerLink and ControllerView. Configured by STRANGLER_CONTROLLER_URL (proxy.__main__ reads it);
without it the console says the controller is not configured. Every failure becomes a sentence for the
page (the controller is another process: it may be down), never an exception.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

__all__ = ["COMMANDS", "ControllerLink", "ControllerView"]

COMMANDS = ("promote", "pause", "resume", "abort")


@dataclass(frozen=True, slots=True)
class ControllerView:
    configured: bool
    url: str | None = None
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)  # route -> its GET /status entry
    error: str | None = None  # why the status could not be read


class ControllerLink:
    def __init__(self, url: str | None, token: str | None, *, timeout_s: float = 3.0) -> None:
        self.url = url.rstrip("/") if url else None
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def status(self) -> ControllerView:
        if self.url is None:
            return ControllerView(configured=False)
        try:
            async with self._client().get(f"{self.url}/status") as response:
                body = await response.json(content_type=None)
                if response.status != 200 or not isinstance(body, dict):
                    return ControllerView(True, self.url, error=f"GET /status answered {response.status}")
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return ControllerView(True, self.url, error=f"unreachable ({type(exc).__name__})")
        routes = {entry["route"]: entry for entry in body.get("routes", []) if isinstance(entry, dict)}
        return ControllerView(True, self.url, routes)

    async def command(self, route: str, action: str) -> tuple[bool, str]:
        """Send `action` for `route`; (whether it took effect, what to tell the operator)."""
        if self.url is None:
            return False, "the progressive controller is not configured (STRANGLER_CONTROLLER_URL)"
        if action not in COMMANDS:
            return False, f"{action!r} is not a controller command"
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        url = f"{self.url}/routes/{quote(route, safe='')}/{action}"
        try:
            reason = {"reason": "from the console"}
            async with self._client().post(url, headers=headers, json=reason) as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return False, f"{action} {route}: the controller is unreachable ({type(exc).__name__})"
        if response.status == 200:
            return True, f"{action} {route}: done"
        return False, f"{action} {route}: the controller refused ({response.status}): {_message(text)}"


def _message(text: str) -> str:
    try:
        error = json.loads(text).get("error", {})
        return str(error.get("message", text))[:300]
    except (ValueError, AttributeError):
        return text[:300]
