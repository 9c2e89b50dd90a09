"""A route's compiled shadow policy, its deterministic sampling, and the learned noise baseline.

Owns: ShadowPolicy (the `shadow` block, checked and prepared once per load), the sampling decision
for a request (same request id or sticky key -> same answer, in every replica and on replay), and
NoiseMemory (paths that differed between two answers of the primary itself, per route, bounded).
Pure: no I/O, no clock, no randomness. The I/O (mirroring, buffering, recording) is shadow.py.

Sampling hashes with salt `<route salt>#shadow` (and `#noise` for the A/A repeat), never the rollout's
own salt: with the same salt, `percent: 10` would pick exactly the buckets the rollout already sends
to the candidate, and shadowing only looks at requests served by the primary.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxy.bucketing import bucket, threshold
from proxy.compare import ComparePolicy, Difference, parse_path

SkipReason = Literal["skipped_method", "sampled_out"]
SampleBy = Literal["request_id", "sticky_key"]


@dataclass(frozen=True)
class ShadowPolicy:
    percent: float
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    max_in_flight: int = 32
    max_body_bytes: int = 1024 * 1024
    timeout_s: float = 30.0
    compare: ComparePolicy = field(default_factory=ComparePolicy)
    noise_percent: float = 0.0
    noise_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    keep_mismatches: int = 100
    sample_by: SampleBy = "request_id"
    salt: str = ""
    threshold: int = field(init=False)
    noise_threshold: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", threshold(self.percent))
        object.__setattr__(self, "noise_threshold", threshold(self.noise_percent))

    def skip_reason(self, method: str, key: str) -> SkipReason | None:
        """None: mirror this request. `key` is the request id or the sticky key (see sample_by)."""
        if method not in self.methods:
            return "skipped_method"
        if bucket(key, salt=f"{self.salt}#shadow") >= self.threshold:
            return "sampled_out"
        return None

    def wants_noise_sample(self, method: str, request_id: str) -> bool:
        """Whether this compared request also gets a second call to the primary (A/A)."""
        if self.noise_threshold == 0 or method not in self.noise_methods:
            return False
        return bucket(request_id, salt=f"{self.salt}#noise") < self.noise_threshold


def compile_compare(
    status: bool, headers: Iterable[str], ignore: Iterable[str], images: str
) -> ComparePolicy:
    mode: Literal["dimensions", "bytes", "off"] = (
        "bytes" if images == "bytes" else "off" if images == "off" else "dimensions"
    )
    return ComparePolicy(
        status=status,
        headers=tuple(dict.fromkeys(name.lower() for name in headers)),
        ignore=tuple(parse_path(text) for text in ignore),
        images=mode,
    )


NoiseKey = tuple[str, str]  # (kind group, path with list indexes generalized to [*])


def noise_key(difference: Difference) -> NoiseKey:
    """A field that is random in images[0] is random in images[3] too: indexes are generalized."""
    group = "body" if difference.kind in ("body_shape", "body_value") else difference.kind
    return group, _generalize(difference.path)


def _generalize(path: str) -> str:
    out, i = [], 0
    while i < len(path):
        if path[i] == "[" and i + 1 < len(path) and path[i + 1].isdigit():
            end = path.find("]", i)
            if end != -1 and path[i + 1 : end].isdigit():
                out.append("[*]")
                i = end + 1
                continue
        out.append(path[i])
        i += 1
    return "".join(out)


class NoiseMemory:
    """Per route, the paths seen to differ between two primary answers; the oldest are forgotten first.

    Memory is bounded twice: at most `max_paths` paths per route and `max_routes` routes.
    """

    def __init__(self, *, max_paths: int = 256, max_routes: int = 256) -> None:
        self.max_paths = max_paths
        self.max_routes = max_routes
        self._routes: OrderedDict[str, OrderedDict[NoiseKey, None]] = OrderedDict()

    def learn(self, route: str, differences: Iterable[Difference]) -> list[NoiseKey]:
        """Remember every difference between two primary answers as noise; returns the new keys."""
        keys = [noise_key(difference) for difference in differences]
        if not keys:
            return []
        known = self._routes.get(route)
        if known is None:
            known = self._routes[route] = OrderedDict()
            while len(self._routes) > self.max_routes:
                self._routes.popitem(last=False)
        added = []
        for key in keys:
            if key in known:
                known.move_to_end(key)
            else:
                known[key] = None
                added.append(key)
        while len(known) > self.max_paths:
            known.popitem(last=False)
        return added

    def split(
        self, route: str, differences: Iterable[Difference]
    ) -> tuple[list[Difference], list[Difference]]:
        """(real mismatches, those explained by noise)."""
        known: Mapping[NoiseKey, None] = self._routes.get(route) or {}
        real: list[Difference] = []
        noise: list[Difference] = []
        for difference in differences:
            (noise if noise_key(difference) in known else real).append(difference)
        return real, noise

    def paths(self, route: str) -> list[str]:
        return [path if group == "body" else f"{group}:{path}" for group, path in self._routes.get(route, {})]

    def routes(self) -> list[str]:
        return list(self._routes)

    def keep_only(self, routes: Iterable[str]) -> None:
        """Forget routes that no longer exist (after a reload)."""
        wanted = set(routes)
        for name in [name for name in self._routes if name not in wanted]:
            del self._routes[name]
