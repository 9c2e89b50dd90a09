"""A TCP fault proxy for tests: between a client and an HTTP/1.1 upstream (moto, a fake server), on
127.0.0.1, port 0, with faults switchable at run time.

Modes, for every call:
* pass through (the default; `passthrough()` also clears the rules and lets frozen calls go);
* `refuse()`: an outage. Every open connection is cut (RST) and each new one is cut at once;
* `freeze()`: connections are accepted and requests read, but nothing is forwarded or answered; a
  frozen connection is cut when the mode changes or after `max_hold_s`.
Rules, for chosen calls (`add_rule(Rule(Call.dynamodb("PutItem"), "drop_response"))`):
* `refuse`: cut the connection instead of forwarding the call;
* `freeze`: hold the call unanswered, as above;
* `drop_response`: forward the call, let the upstream apply it, and cut the client's connection
  when the answer arrives instead of relaying it (the "acknowledgement lost" fault).
A rule acts on its `nth` matching call and the `times - 1` after it (`times=None`: every one from
then on), optionally only once it is armed by a call matching `armed_by` that went through (an
outage that starts right after a chosen call). The first rule that acts wins.

HTTP: only the client→upstream direction is parsed, and only as far as finding where each request
ends: a request line, headers, and a body framed by Content-Length, which is what botocore and urllib
send (a chunked request body is refused loudly rather than misframed). Responses are relayed as
bytes: HTTP/1.1 clients do not pipeline, so whatever the upstream sends after a request went out is
that request's answer (an interim `100 Continue` is relayed even when the answer is to be dropped).

`FaultProxy` runs on the caller's event loop; `ThreadedFaultProxy` runs one on its own loop in a
daemon thread, so blocking test code (urllib, subprocess, boto3) never stalls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

Action = Literal["refuse", "freeze", "drop_response"]
T = TypeVar("T")
_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes
    content_length: int

    def describe(self) -> str:
        target = self.headers.get("x-amz-target")
        return target.rsplit(".", 1)[-1] if target else f"{self.method} {self.path.split('?')[0]}"


@dataclass(frozen=True, slots=True)
class Call:
    """What a rule matches: every part that is set must match (nothing set: any call)."""

    method: str | None = None
    path_prefix: str | None = None
    target: str | None = None  # the X-Amz-Target header: how AWS JSON protocols name the operation

    @classmethod
    def dynamodb(cls, operation: str) -> Call:
        return cls(method="POST", target=f"DynamoDB_20120810.{operation}")

    @classmethod
    def s3(cls, method: str, bucket: str) -> Call:
        return cls(method=method, path_prefix=f"/{bucket}/")  # path-style addressing

    def matches(self, head: RequestHead) -> bool:
        return (
            (self.method is None or head.method == self.method)
            and (self.path_prefix is None or head.path.startswith(self.path_prefix))
            and (self.target is None or head.headers.get("x-amz-target") == self.target)
        )


ANY = Call()


@dataclass(slots=True)
class Rule:
    call: Call
    action: Action
    nth: int = 1
    times: int | None = 1
    armed_by: Call | None = None
    seen: int = field(default=0, init=False)  # matching calls counted while armed
    acted: int = field(default=0, init=False)
    armed: bool = field(default=False, init=False)

    def decide(self, head: RequestHead) -> Action | None:
        if not (self.armed or self.armed_by is None) or not self.call.matches(head):
            return None
        self.seen += 1
        if self.seen < self.nth or (self.times is not None and self.acted >= self.times):
            return None
        self.acted += 1
        return self.action

    def forwarded(self, head: RequestHead) -> None:
        if self.armed_by is not None and self.armed_by.matches(head):
            self.armed = True


class _Link:
    """One client connection and, once a request goes through, its own upstream connection."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.client = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.drop_next_answer = False

    def cut(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, max_hold_s: float = 30.0) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._max_hold_s = max_hold_s
        self._mode: Literal["pass", "refuse", "freeze"] = "pass"
        self._rules: list[Rule] = []
        self._links: set[_Link] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        self._thaw = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.faults: Counter[str] = Counter()  # "drop_response PutItem": 1 ... what actually happened
        self.calls: list[str] = []  # every call that reached the proxy, in order

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.passthrough()
        for link in list(self._links):
            link.cut()
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------ control

    def passthrough(self) -> None:
        self._mode = "pass"
        self._rules.clear()
        self._thaw.set()
        self._thaw = asyncio.Event()

    def refuse(self) -> None:
        self._mode = "refuse"
        for link in list(self._links):
            link.cut()

    def freeze(self) -> None:
        self._mode = "freeze"

    def add_rule(self, rule: Rule) -> Rule:
        self._rules.append(rule)
        return rule

    # ------------------------------------------------------------ the data path

    def _decide(self, head: RequestHead) -> Action | None:
        if self._mode != "pass":
            return self._mode
        for rule in self._rules:
            action = rule.decide(head)
            if action is not None:
                return action
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            await self._exchange(reader, writer)
        finally:
            self._serving.discard(task)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        if self._mode == "refuse":
            self.faults["refuse connection"] += 1
            link.cut()
            return
        self._links.add(link)
        pump: asyncio.Task[None] | None = None
        try:
            while (head := await _read_head(reader)) is not None:
                self.calls.append(head.describe())
                action = self._decide(head)
                if action is not None:
                    self.faults[f"{action} {head.describe()}"] += 1
                if action == "refuse":
                    return
                if action == "freeze":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._thaw.wait(), self._max_hold_s)
                    return
                if link.upstream is None:
                    up_reader, link.upstream = await asyncio.open_connection(*self._upstream)
                    pump = asyncio.create_task(self._relay_answers(up_reader, link))
                link.drop_next_answer = action == "drop_response"  # set before the upstream can answer
                link.upstream.write(head.raw)
                await _copy_body(reader, link.upstream, head.content_length)
                for rule in self._rules:
                    rule.forwarded(head)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return
        finally:
            self._links.discard(link)
            link.cut()
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    async def _relay_answers(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(_CHUNK):
                if link.drop_next_answer and not data.startswith(b"HTTP/1.1 100"):
                    link.cut()  # the upstream has applied the call; its answer never reaches the client
                    return
                link.client.write(data)
                await link.client.drain()
        link.cut()  # the upstream closed: so does the client's connection


async def _read_head(reader: asyncio.StreamReader) -> RequestHead | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None  # the client closed between requests
    lines = raw.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("faultproxy frames request bodies by Content-Length only")
    return RequestHead(method, path, headers, raw, int(headers.get("content-length", "0")))


async def _copy_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int) -> None:
    while length > 0:
        chunk = await reader.readexactly(min(length, _CHUNK))
        writer.write(chunk)
        length -= len(chunk)
    await writer.drain()


class ThreadedFaultProxy:
    """A FaultProxy on its own event loop in a daemon thread; every control call waits until applied."""

    def __init__(self, upstream_url: str, *, max_hold_s: float = 30.0) -> None:
        parts = urlsplit(upstream_url)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy", daemon=True)
        self._args = (parts.hostname or "127.0.0.1", parts.port or 80, max_hold_s)
        self.proxy: FaultProxy | None = None

    def __enter__(self) -> ThreadedFaultProxy:
        self._thread.start()

        async def make() -> FaultProxy:
            host, port, hold = self._args
            proxy = FaultProxy(host, port, max_hold_s=hold)
            await proxy.start()
            return proxy

        self.proxy = self._run(make())
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._inner.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def _inner(self) -> FaultProxy:
        assert self.proxy is not None, "use ThreadedFaultProxy as a context manager"
        return self.proxy

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def _apply(self, change: Callable[[], T]) -> T:
        async def apply() -> T:
            return change()

        return self._run(apply())

    @property
    def endpoint(self) -> str:
        return self._inner.endpoint

    @property
    def faults(self) -> Counter[str]:
        return self._apply(lambda: Counter(self._inner.faults))

    @property
    def calls(self) -> list[str]:
        return self._apply(lambda: list(self._inner.calls))

    def passthrough(self) -> None:
        self._apply(self._inner.passthrough)

    def refuse(self) -> None:
        self._apply(self._inner.refuse)

    def freeze(self) -> None:
        self._apply(self._inner.freeze)

    def add_rule(self, rule: Rule) -> Rule:
        return self._apply(lambda: self._inner.add_rule(rule))
