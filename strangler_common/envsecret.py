"""Secrets from the environment: NAME, or the contents of the file named by NAME_FILE (a mounted secret).

Owns reading them and the errors a person sees when one is set wrong. Never from argv (`ps` shows it),
never logged: the error messages name the variable, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from strangler_common.shadowmark import MIN_KEY_BYTES

__all__ = ["SecretError", "read_secret", "shadow_key"]

SHADOW_KEY_ENV = "STRANGLER_SHADOW_KEY"


class SecretError(ValueError):
    """A secret that is set but unusable; the message names the variable and what is wrong."""


def read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """`name`, or the contents of the file named by `name`_FILE (surrounding white space dropped)."""
    value, path = environ.get(name), environ.get(f"{name}_FILE")
    if value and path:
        raise SecretError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SecretError(f"cannot read {name}_FILE ({path}): {reason}") from None
        if not value:
            raise SecretError(f"{name}_FILE ({path}) is empty")
    return value or None


def shadow_key(environ: Mapping[str, str]) -> bytes | None:
    """The key that signs the shadow marker (STRANGLER_SHADOW_KEY[_FILE]); None when neither is set."""
    value = read_secret(environ, SHADOW_KEY_ENV)
    if value is None:
        return None
    key = value.strip().encode()
    if len(key) < MIN_KEY_BYTES:
        raise SecretError(
            f"{SHADOW_KEY_ENV} must be at least {MIN_KEY_BYTES} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key
