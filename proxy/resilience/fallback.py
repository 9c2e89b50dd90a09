"""The fallback decision: after the candidate failed, may the same request be replayed to the primary?

Owns: FallbackPolicy (a route's compiled `fallback` block), the failure kinds and replay(). Pure.
Does not own: keeping the body or making the second call (dataplane/replay.py, dataplane/failover.py),
nor counting fallbacks (state.py).

The rules, in order (NGINX's `proxy_next_upstream` makes the same call for non-idempotent requests):
- the failure kind must be listed in `when` (`circuit_open` and `reset` count as `connect_error`);
- `404` is a reason for GET and HEAD only: a 404 to a write says nothing about where the data lives;
- a non-idempotent method (POST, PATCH, anything not in RFC 9110's idempotent set) is replayed only
  when nothing can have reached the candidate (`connect_error`, `circuit_open`), unless the route sets
  `replay_non_idempotent: true` and accepts that the candidate may have acted on it as well;
- the body must have been buffered whole (it fits `max_body_bytes`): a body that was streamed away
  cannot be sent a second time.
A response whose headers already went to the client is never replaced: callers decide on status and
headers before streaming, which is why the 5xx/404 test happens on the head alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "IDEMPOTENT", "KINDS", "FallbackPolicy", "Kind", "Listed", "Verdict", "kind_of_error", "kind_of_status",
    "replay",
]  # fmt: skip

Kind = Literal["connect_error", "circuit_open", "reset", "timeout", "5xx", "404"]
Listed = Literal["connect_error", "timeout", "5xx", "404"]
KINDS: tuple[Kind, ...] = ("connect_error", "circuit_open", "reset", "timeout", "5xx", "404")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_NOTHING_SENT = frozenset({"connect_error", "circuit_open"})
_AS_LISTED: dict[Kind, Listed] = {
    "connect_error": "connect_error", "circuit_open": "connect_error", "reset": "connect_error",
    "timeout": "timeout", "5xx": "5xx", "404": "404",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    when: frozenset[Listed]
    max_body_bytes: int
    replay_non_idempotent: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    replay: bool
    why: str  # the reason to replay (a metric label), or why not (for the log)


def kind_of_status(status: int) -> Kind | None:
    if 500 <= status <= 599:
        return "5xx"
    if status == 404:
        return "404"
    return None


def kind_of_error(error_kind: str) -> Kind:
    """forwarding.UpstreamError.kind (connect | timeout | reset | protocol) -> a fallback kind."""
    if error_kind in ("connect", "busy"):  # busy: the proxy's own cap refused it, nothing was sent
        return "connect_error"
    if error_kind == "timeout":
        return "timeout"
    return "reset"  # reset or protocol: the connection broke after the request may have arrived


def replay(policy: FallbackPolicy, kind: Kind, *, method: str, body_buffered: bool) -> Verdict:
    if _AS_LISTED[kind] not in policy.when:
        return Verdict(False, f"{kind} is not listed in fallback.when")
    if kind == "404" and method not in ("GET", "HEAD"):
        return Verdict(False, "404 falls back for GET and HEAD only")
    if method not in IDEMPOTENT and kind not in _NOTHING_SENT and not policy.replay_non_idempotent:
        return Verdict(False, f"{method} is not idempotent and the candidate may have received it")
    if not body_buffered:
        return Verdict(False, "the request body was not buffered (larger than fallback.max_body_bytes)")
    return Verdict(True, kind)
