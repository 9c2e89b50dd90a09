"""The stub's settings: one frozen dataclass, and the only reading of the environment (from_env).

Owns defaults and their validation; does not parse argv (that is __main__'s job).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from strangler_common.envsecret import SecretError, shadow_key

__all__ = ["DELAY_ENV", "Settings", "SettingsError"]

DELAY_ENV = "LEGACY_IMAGE_DELAY_S"
MAX_DELAY_S = 3600.0


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the setting and the accepted range."""


@dataclass(frozen=True, slots=True)
class Settings:
    image_delay_s: float = 2.0
    """Seconds the single image worker spends on each image (0 in tests)."""
    max_image_request_bytes: int = 64 * 1024
    """Largest POST /api/images body; beyond it 413 payload_too_large (the contract's limit)."""
    max_echo_bytes: int = 1024 * 1024
    """Largest body /api/echo reads back; beyond it 413."""
    max_order_bytes: int = 64 * 1024
    max_export_mb: int = 2048
    max_queue: int = 64
    """Generations waiting for the worker before POST /api/images answers 503 overloaded."""
    max_generations: int = 1000
    """Generations kept in memory; the oldest (and its files) go first."""
    max_idempotency_keys: int = 10_000
    max_orders: int = 10_000
    shadow_key: bytes | None = field(default=None, repr=False)
    """Verifies the proxy's signed shadow marker (STRANGLER_SHADOW_KEY[_FILE]); None: marker ignored."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.image_delay_s) and 0.0 <= self.image_delay_s <= MAX_DELAY_S):
            raise SettingsError(f"image_delay_s must be a number between 0 and {MAX_DELAY_S:g} seconds")
        for name in (
            "max_image_request_bytes",
            "max_echo_bytes",
            "max_order_bytes",
            "max_export_mb",
            "max_queue",
            "max_generations",
            "max_idempotency_keys",
            "max_orders",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables; unset variables keep their defaults."""
        try:
            key = shadow_key(environ)
        except SecretError as exc:
            raise SettingsError(str(exc)) from None
        return replace(cls._with_delay(environ), shadow_key=key)

    @classmethod
    def _with_delay(cls, environ: Mapping[str, str]) -> Settings:
        raw = environ.get(DELAY_ENV)
        if raw is None or raw.strip() == "":
            return cls()
        try:
            delay = float(raw)
        except ValueError:
            raise SettingsError(f"{DELAY_ENV} must be a number of seconds, got {raw!r}") from None
        if not (math.isfinite(delay) and 0.0 <= delay <= MAX_DELAY_S):
            raise SettingsError(f"{DELAY_ENV} must be between 0 and {MAX_DELAY_S:g} seconds, got {raw!r}")
        return cls(image_delay_s=delay)
