"""A family's children, looked up once per label values: `labels()` builds a tuple and takes the
family's lock on every call, which the per-request recording path cannot afford. Children are never
removed from the families, so a kept child stays the one the exposition shows."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

__all__ = ["Children"]


class Children:
    """`children(key)`: the child of `family` whose label values are `key`'s items as text (a status
    may be kept as an int in the key: it is converted once, when the child is made)."""

    __slots__ = ("_cache", "_family")

    def __init__(self, family: Any) -> None:
        self._family = family
        self._cache: dict[tuple[Hashable, ...], Any] = {}

    def __call__(self, key: tuple[Hashable, ...]) -> Any:
        child = self._cache.get(key)
        if child is None:
            child = self._cache[key] = self._family.labels(*(str(value) for value in key))
        return child
