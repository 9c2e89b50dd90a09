"""The learned noise baseline (Diffy's A/A idea): JSON field paths whose values differ between two
answers of the primary itself, per route, bounded, visible and clearable.

Owns NoiseMemory and what may count as noise. Pure: the caller passes the time.

Only a body *value* can be noise. A status, a header, a content type, an image's format or size, a
field that is missing, or a field whose type changed is never excused, however often two primary
answers disagreed on it: one 200-vs-503 pair between two primary calls must not teach the proxy to
call a candidate's 500 a match. A learned path still has to exist with the same type on both sides
(that is a `body_shape` difference, which stays real).

Learned noise belongs to the comparison it was learned under: `follow()` drops a route's noise when
its `compare` or `noise_baseline` block changes (or the route stops shadowing), and an operator can
clear it at any time (`POST /shadow/noise/reset`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from proxy.shadow.compare import Difference

__all__ = ["NoiseMemory", "NoisePath", "learnable", "noise_path"]

_WHOLE_BODY = "(body)"  # a non-JSON body: no field to excuse


def learnable(difference: Difference) -> bool:
    """Whether a difference between two primary answers may be learned (and later excused) as noise."""
    return difference.kind == "body_value" and difference.path != _WHOLE_BODY


def noise_path(difference: Difference) -> str:
    """A field that is random in images[0] is random in images[3] too: list indexes become [*]."""
    return _generalize(difference.path)


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


@dataclass(slots=True)
class NoisePath:
    path: str
    learned_at: float  # when an A/A pair first differed here (unix seconds)
    last_seen_at: float
    pairs: int  # A/A pairs that differed at this path


@dataclass(slots=True)
class _Route:
    fingerprint: object  # the compare + noise_baseline policy the noise was learned under
    paths: OrderedDict[str, NoisePath]
    pairs: int = 0  # A/A pairs compared, differing or not


class NoiseMemory:
    """Bounded twice: at most `max_paths` paths per route (least recently seen dropped first) and
    `max_routes` routes."""

    def __init__(self, *, max_paths: int = 256, max_routes: int = 256) -> None:
        self.max_paths = max_paths
        self.max_routes = max_routes
        self._routes: OrderedDict[str, _Route] = OrderedDict()

    def follow(self, fingerprints: Mapping[str, object]) -> list[str]:
        """After a (re)load: keep a route's noise only while it shadows under the same comparison.
        `fingerprints` maps each shadowed route to its policy's noise fingerprint; returns the routes
        whose noise was dropped."""
        dropped = [
            name for name, known in self._routes.items()
            if name not in fingerprints or known.fingerprint != fingerprints[name]
        ]  # fmt: skip
        for name in dropped:
            del self._routes[name]
        return dropped

    def learn(
        self, route: str, differences: Iterable[Difference], *, fingerprint: object, at: float
    ) -> list[str]:
        """Record one A/A pair; every differing body value becomes noise. Returns the new paths."""
        known = self._routes.get(route)
        if known is None or known.fingerprint != fingerprint:
            known = self._routes[route] = _Route(fingerprint, OrderedDict())
            while len(self._routes) > self.max_routes:
                self._routes.popitem(last=False)
        known.pairs += 1
        added: list[str] = []
        for path in dict.fromkeys(noise_path(d) for d in differences if learnable(d)):
            entry = known.paths.get(path)
            if entry is None:
                known.paths[path] = NoisePath(path, learned_at=at, last_seen_at=at, pairs=1)
                added.append(path)
            else:
                entry.pairs += 1
                entry.last_seen_at = at
                known.paths.move_to_end(path)
        while len(known.paths) > self.max_paths:
            known.paths.popitem(last=False)
        return added

    def split(
        self, route: str, differences: Iterable[Difference]
    ) -> tuple[list[Difference], list[Difference]]:
        """(real mismatches, those explained by noise)."""
        known = self._routes.get(route)
        paths: Mapping[str, NoisePath] = known.paths if known is not None else {}
        real: list[Difference] = []
        noise: list[Difference] = []
        for difference in differences:
            explained = learnable(difference) and noise_path(difference) in paths
            (noise if explained else real).append(difference)
        return real, noise

    def paths(self, route: str) -> list[str]:
        known = self._routes.get(route)
        return list(known.paths) if known is not None else []

    def entries(self, route: str) -> list[NoisePath]:
        known = self._routes.get(route)
        return list(known.paths.values()) if known is not None else []

    def pairs(self, route: str) -> int:
        known = self._routes.get(route)
        return known.pairs if known is not None else 0

    def routes(self) -> list[str]:
        return list(self._routes)

    def reset(self, route: str) -> int:
        """Forget a route's noise; returns how many paths it had."""
        known = self._routes.pop(route, None)
        return len(known.paths) if known is not None else 0
