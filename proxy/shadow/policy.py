"""A route's compiled shadow policy and its deterministic sampling.

Owns: ShadowPolicy (the `shadow` block, checked and prepared once per load) and the sampling decision
for a request (same request id or sticky key -> same answer, in every replica and on replay). The
learned noise is noise.py, the cost budget budget.py. Pure: no I/O, no clock, no randomness. The I/O
(mirroring, buffering, recording) is mirror.py, call.py and exchange.py.

Sampling hashes with salt `<route salt>#shadow` (and `#noise` for the A/A repeat), never the rollout's
own salt: with the same salt, `percent: 10` would pick exactly the buckets the rollout already sends
to the candidate, and shadowing only looks at requests served by the primary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from proxy.config.shadow import Shadow
from proxy.routing.bucketing import bucket, threshold
from proxy.routing.rules import KeySource
from proxy.shadow.compare import ComparePolicy, parse_path

__all__ = ["SampleBy", "ShadowPolicy", "SkipReason", "compile_compare", "compile_shadow"]

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
    keep_bodies_bytes: int = 8 * 1024 * 1024  # per route: the kept mismatches' bodies (samples.py)
    sample_by: SampleBy = "request_id"
    max_per_minute: int | None = None  # copies a minute per replica (budget.py); None: unlimited
    salt: str = ""
    sticky_key: tuple[KeySource, ...] = ()  # the route's: who a kept mismatch was for (hashed, userkey.py)
    threshold: int = field(init=False)
    noise_threshold: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", threshold(self.percent))
        object.__setattr__(self, "noise_threshold", threshold(self.noise_percent))

    @property
    def noise_fingerprint(self) -> tuple[object, ...]:
        """What learned noise depends on: it is dropped when any of this changes (noise.py)."""
        return (self.compare, self.noise_percent, self.noise_methods)

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


def compile_shadow(
    shadow: Shadow | None, *, salt: str, sticky_key: tuple[KeySource, ...] = ()
) -> ShadowPolicy | None:
    """None when there is no shadow block or it mirrors 0 %: an idle policy costs nothing per request."""
    if shadow is None or shadow.percent == 0:
        return None
    compare = shadow.compare
    return ShadowPolicy(
        percent=shadow.percent,
        methods=frozenset(shadow.methods),
        max_in_flight=shadow.max_in_flight,
        max_body_bytes=shadow.max_body_bytes,
        timeout_s=shadow.timeout_s,
        compare=compile_compare(compare.status, compare.headers, compare.ignore, compare.images),
        noise_percent=shadow.noise_baseline.percent,
        noise_methods=frozenset(shadow.noise_baseline.methods),
        keep_mismatches=shadow.keep_mismatches,
        keep_bodies_bytes=shadow.keep_bodies_bytes,
        sample_by=shadow.sample_by,
        max_per_minute=shadow.max_per_minute,
        salt=salt,
        sticky_key=sticky_key,
    )
