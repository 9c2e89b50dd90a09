"""A closed-loop client for scenario 4: N concurrent users, each posting an image request, waiting
for the answer and posting the next, until a deadline.

Why not hey: at rollout 0 % a request waits behind up to 39 others (about 40 s), longer than the
window; hey would drop those in flight as errors and report only the lucky ones' latencies. Here a
request still in flight at the deadline is counted with its age then (a lower bound of its latency),
so the 'before' p95 is never flattered.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from bench.stats import percentile

BODY = {"prompt": "a lighthouse at dusk, oil painting", "n": 1, "size": "256x256"}


@dataclass
class ClosedLoopResult:
    window_s: float
    completed: list[float] = field(default_factory=list)  # latencies of 2xx answers in the window
    censored: list[float] = field(default_factory=list)  # ages of requests still running at the end
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return len(self.completed) / self.window_s

    def p95_s(self) -> float:
        """p95 over completed and censored requests (censored ones at their age: a lower bound)."""
        values = self.completed + self.censored
        return percentile(values, 95) if values else float("nan")


def run(url: str, *, users: int, window_s: float) -> ClosedLoopResult:
    return asyncio.run(_run(url, users=users, window_s=window_s))


async def _run(url: str, *, users: int, window_s: float) -> ClosedLoopResult:
    result = ClosedLoopResult(window_s)
    started: dict[int, float] = {}
    deadline = time.monotonic() + window_s
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    connector = aiohttp.TCPConnector(limit=users)

    async def user(index: int) -> None:
        headers = {"X-User-Id": f"bench-user-{index}"}
        while time.monotonic() < deadline:
            t0 = started[index] = time.monotonic()
            try:
                async with session.post(url, json=BODY, headers=headers) as response:
                    await response.read()
                    status = response.status
            except aiohttp.ClientError as exc:
                key = type(exc).__name__
                result.errors[key] = result.errors.get(key, 0) + 1
                started.pop(index, None)
                await asyncio.sleep(0.1)
                continue
            started.pop(index, None)
            if time.monotonic() > deadline:
                break  # finished after the window closed: counted as censored below, at the deadline
            if 200 <= status < 300:
                result.completed.append(time.monotonic() - t0)
            else:
                result.errors[str(status)] = result.errors.get(str(status), 0) + 1

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.create_task(user(i)) for i in range(users)]
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        end = time.monotonic()
        result.censored = [end - t0 for t0 in started.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result
