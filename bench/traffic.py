"""Demo traffic through the proxy: `python -m bench traffic --rate R --duration S [--target URL]`.

A mix a real storefront sees, so that every panel of the migration dashboard moves: storefront pages
and the catalog, orders placed and read back, image generations and their downloads from many user
ids (header, cookie, or none: then the client IP decides the bucket), some idempotent retries, and a
few bad requests. Bounded in count (rate x duration) and in time; talks only to --target.
Owns the traffic mix and its pacing; owns no assertion about what the proxy answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

PROMPTS = (
    "a red fox in fresh snow", "a lighthouse at dusk", "a bowl of ramen, studio light",
    "an old bicycle against a blue wall", "a paper boat on a puddle", "a cat wearing a tiny hat",
)  # fmt: skip
SIZES = ("256x256", "256x256", "256x256", "512x512")


@dataclass(frozen=True, slots=True)
class Plan:
    target: str
    rate: float
    duration_s: float
    users: int = 200
    concurrency: int = 32
    seed: int | None = None

    @property
    def total(self) -> int:
        return max(1, round(self.rate * self.duration_s))


@dataclass
class Report:
    """What came back, by action and status (0: no HTTP answer at all)."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    shed: int = 0  # requests not sent because `concurrency` were already in flight

    def record(self, action: str, status: int) -> None:
        self.statuses[(action, status)] += 1

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def unanswered(self) -> int:
        return sum(count for (_, status), count in self.statuses.items() if status == 0)

    def lines(self) -> list[str]:
        rows = [f"{action:<16} {status:>3}  {n}" for (action, status), n in sorted(self.statuses.items())]
        return [*rows, f"sent {self.sent}, unanswered {self.unanswered}, shed {self.shed}"]


@dataclass
class _State:
    """What the traffic learnt so far, so that reads ask for things that exist."""

    skus: list[str] = field(default_factory=lambda: ["sku-missing"])
    orders: list[str] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


class _Client:
    def __init__(
        self, session: aiohttp.ClientSession, plan: Plan, report: Report, rng: random.Random
    ) -> None:
        self.session, self.plan, self.report, self.rng = session, plan, report, rng
        self.state = _State()

    def _identity(self) -> tuple[dict[str, str], dict[str, str]]:
        """Most users send X-User-Id, some only a uid cookie, a few nothing (client_ip decides)."""
        user = f"user-{self.rng.randrange(self.plan.users):04d}"
        roll = self.rng.random()
        if roll < 0.7:
            return {"X-User-Id": user}, {}
        if roll < 0.9:
            return {}, {"uid": user}
        return {}, {}

    async def _call(
        self,
        action: str,
        method: str,
        path: str,
        *,
        json_body: object = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        sent, cookies = self._identity()
        sent.update(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if json_body is not None:
            data, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        url = self.plan.target + path
        try:
            async with self.session.request(method, url, headers=sent, data=data) as r:
                body = await r.read()
                self.report.record(action, r.status)
                return r.status, body
        except (aiohttp.ClientError, TimeoutError):
            self.report.record(action, 0)
            return 0, b""

    async def learn_catalog(self) -> None:
        status, body = await self._call("catalog", "GET", "/api/catalog")
        if status == 200:
            products = json.loads(body).get("items") or []
            skus = [p["sku"] for p in products if isinstance(p, dict) and "sku" in p]
            self.state.skus = skus or self.state.skus

    async def storefront(self) -> None:
        await self._call("storefront", "GET", "/")

    async def catalog(self) -> None:
        await self._call("catalog", "GET", "/api/catalog")

    async def place_order(self) -> None:
        items = [{"sku": self.rng.choice(self.state.skus), "qty": self.rng.randint(1, 3)}]
        status, body = await self._call("order", "POST", "/api/orders", json_body={"items": items})
        if status == 201:
            self.state.orders.append(json.loads(body)["id"])

    async def read_order(self) -> None:
        if self.state.orders:
            await self._call("order_get", "GET", f"/api/orders/{self.rng.choice(self.state.orders)}")

    async def generate(self) -> None:
        payload = {"prompt": self.rng.choice(PROMPTS), "n": self.rng.choice((1, 1, 2)),
                   "size": self.rng.choice(SIZES)}  # fmt: skip
        headers = {"Idempotency-Key": uuid.uuid4().hex} if self.rng.random() < 0.3 else {}
        status, body = await self._call(
            "image_generate", "POST", "/api/images", json_body=payload, headers=headers
        )
        if status == 201:
            generation = json.loads(body)
            self.state.generations.append(generation["id"])
            self.state.files.extend(image["url"] for image in generation.get("images", []))

    async def read_generation(self) -> None:
        if self.state.generations:
            await self._call("image_get", "GET", f"/api/images/{self.rng.choice(self.state.generations)}")

    async def download(self) -> None:
        if self.state.files:
            url = self.rng.choice(self.state.files)  # relative (/api/images/files/...) or absolute
            path = url if url.startswith("/") else "/" + url.split("/", 3)[-1]
            await self._call("image_download", "GET", path)

    async def list_images(self) -> None:
        await self._call("image_list", "GET", "/api/images?limit=10")

    async def bad_request(self) -> None:
        kind = self.rng.randrange(4)
        if kind == 0:
            bad_json = {"Content-Type": "application/json"}
            await self._call("bad", "POST", "/api/images", data=b"{not json", headers=bad_json)
        elif kind == 1:
            await self._call("bad", "POST", "/api/images", json_body={"prompt": "x", "size": "999x999"})
        elif kind == 2:
            await self._call("bad", "GET", "/api/images/img_does_not_exist")
        else:
            unknown_sku = {"items": [{"sku": "no-such-sku", "qty": 1}]}
            await self._call("bad", "POST", "/api/orders", json_body=unknown_sku)

    def mix(self) -> list[tuple[Callable[[], Awaitable[None]], int]]:
        return [
            (self.storefront, 12), (self.catalog, 12), (self.place_order, 8), (self.read_order, 6),
            (self.generate, 20), (self.read_generation, 12), (self.download, 12), (self.list_images, 6),
            (self.bad_request, 4),
        ]  # fmt: skip


async def run(plan: Plan) -> Report:
    """Send plan.total requests at plan.rate per second (bounded by plan.concurrency in flight)."""
    rng = random.Random(plan.seed)  # traffic shape, not security
    report = Report()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as session:
        client = _Client(session, plan, report, rng)
        await client.learn_catalog()
        actions, weights = zip(*client.mix(), strict=True)
        in_flight: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        for index in range(plan.total):
            delay = start + index / plan.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= plan.concurrency:
                report.shed += 1
                continue
            task = asyncio.create_task(rng.choices(actions, weights)[0]())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=60)
    return report


def parse_args(argv: Sequence[str]) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m bench traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--target", default="http://127.0.0.1:8080", help="the proxy's public URL")
    parser.add_argument("--users", type=int, default=200, help="distinct user ids (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at most (default 32)")
    parser.add_argument("--seed", type=int, default=None, help="make the mix repeatable")
    args = parser.parse_args(list(argv))
    if not 0 < args.rate <= 10_000 or not 0 < args.duration <= 86_400:
        parser.error("--rate must be in (0, 10000] and --duration in (0, 86400]")
    if args.users < 1 or args.concurrency < 1:
        parser.error("--users and --concurrency must be at least 1")
    if not args.target.startswith(("http://", "https://")):
        parser.error("--target must be an http(s) URL")
    return Plan(target=args.target.rstrip("/"), rate=args.rate, duration_s=args.duration,
                users=args.users, concurrency=args.concurrency, seed=args.seed)  # fmt: skip


def main(argv: list[str]) -> int:
    """Exit 0 when the proxy answered; 1 when nothing answered at all (wrong --target, stack down)."""
    plan = parse_args(argv)
    print(f"sending {plan.total} requests to {plan.target} over {plan.duration_s:g} s", file=sys.stderr)
    report = asyncio.run(run(plan))
    print("\n".join(report.lines()))
    return 1 if report.sent == 0 or report.unanswered == report.sent else 0
