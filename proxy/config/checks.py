"""Rules of routes.yaml that span fields, and the wording of every schema error.

Owns: Issue (one located error), cross_checks() (upstream references, unique route names,
candidate <-> rollout, flags that need a candidate, what a progressive block needs on its route),
describe_pydantic_error().
Does not own: single-field rules (the models in schema.py, routes.py, shadow.py, resilience.py,
progressive.py).

cross_checks() reads the raw, possibly invalid data and checks only what it can, so these
errors are reported in the same run as the field errors instead of after they are fixed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import ErrorDetails

from proxy.config.yamlsource import Path

__all__ = [
    "KNOWN_FIELDS", "NAME", "NAME_RULE", "RESERVED_ROUTE_FIELDS", "SAFE_METHODS", "Issue", "cross_checks",
    "describe_pydantic_error",
]  # fmt: skip

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
NAME_RULE = ("must start with a letter and use only letters, digits, '_' and '-' (at most 63 characters): "
             "it becomes a metric label")
RESERVED_ROUTE_FIELDS: frozenset[str] = frozenset()  # route fields named for a later version
KNOWN_FIELDS = (
    "version", "upstreams", "default_upstream", "trusted_proxies", "routes", "limits", "url",
    "connect_timeout_s", "timeout_s", "max_body_bytes", "name", "match", "primary", "candidate",
    "rollout", "flags", "path_prefix", "path_regex", "methods", "percent", "sticky_key",
    "on_missing_key", "salt", "header", "cookie", "query", "equals", "in", "use",
    "shadow", "max_in_flight", "compare", "status", "headers", "ignore", "images", "noise_baseline",
    "keep_mismatches", "keep_bodies_bytes", "sample_by", "max_per_minute",
    "fallback", "guard", "when", "replay_non_idempotent", "max_error_rate", "min_requests", "window_s",
    "circuit", "failures", "open_s", "max_open_s", "max_headers", "max_header_bytes", "max_url_bytes",
    "client_read_timeout_s", "max_connections", "ownership", "owner", "client_body_timeout_s",
    "memory_budget_bytes", "body_buffer_bytes", "spool_budget_bytes", "request_body", "queue_timeout_s",
    "progressive", "steps", "interval_s", "max_failures", "max_inconclusive", "significance", "checks",
    "error_rate", "max_increase", "latency_p95", "max_ratio", "shadow_mismatch_rate", "max", "custom",
    "ca_bundle",
)


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


def cross_checks(data: Any) -> list[tuple[Path, str]]:
    """Problems between fields of the raw config; whatever has the wrong type is skipped here."""
    found: list[tuple[Path, str]] = []
    if not isinstance(data, dict):
        return found
    upstreams = data.get("upstreams")
    known: set[str] | None = None
    if isinstance(upstreams, dict):
        known = {name for name in upstreams if isinstance(name, str)}
        for name in sorted(known):
            if not NAME.fullmatch(name):
                found.append((("upstreams", name), f"upstream name {name!r} {NAME_RULE}"))

    def reference(path: Path, value: Any) -> None:
        if known is not None and isinstance(value, str) and value not in known:
            listed = ", ".join(n if n.isprintable() else repr(n) for n in sorted(known)) or "none"
            found.append((path, f"unknown upstream {value!r} (known: {listed})"))

    reference(("default_upstream",), data.get("default_upstream"))
    routes = data.get("routes")
    if not isinstance(routes, list):
        return found
    first_use: dict[str, int] = {}
    for index, route in enumerate(routes):
        if isinstance(route, dict):
            found.extend(_route_checks(("routes", index), route, first_use))
            reference(("routes", index, "primary"), route.get("primary"))
            reference(("routes", index, "candidate"), route.get("candidate"))
    return found


def _route_checks(at: Path, route: dict[str, Any], first_use: dict[str, int]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    name = route.get("name")
    if isinstance(name, str):
        if name in first_use:
            first = f"routes[{first_use[name]}]"
            found.append(((*at, "name"), f"duplicate route name {name!r} (first used by {first})"))
        else:
            first_use[name] = int(at[-1])
    candidate, rollout = route.get("candidate"), route.get("rollout")
    if candidate is not None and rollout is None:
        found.append(((*at, "candidate"), "needs a rollout block: candidate and rollout go together"))
    if rollout is not None and candidate is None:
        found.append(((*at, "rollout"), "needs a candidate upstream: candidate and rollout go together"))
    flags = route.get("flags")
    if candidate is None and isinstance(flags, list):
        for index, flag in enumerate(flags):
            if isinstance(flag, dict) and flag.get("use") == "candidate":
                found.append(((*at, "flags", index, "use"), "is candidate, but the route has no candidate"))
    for block in ("fallback", "guard", "ownership"):
        if route.get(block) not in (None, []) and candidate is None:
            found.append(((*at, block), f"needs a candidate upstream on the route: {block} concerns it"))
    shadow = route.get("shadow")
    if isinstance(shadow, dict):
        found.extend(_shadow_checks((*at, "shadow"), route, shadow))
    progressive = route.get("progressive")
    if isinstance(progressive, dict):
        found.extend(_progressive_checks((*at, "progressive"), route, progressive))
    return found


def _progressive_checks(at: Path, route: dict[str, Any], block: dict[str, Any]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    missing = [what for what, key in (("a candidate upstream", "candidate"), ("a rollout block", "rollout"))
               if route.get(key) is None]
    if missing:
        found.append((at, f"needs {' and '.join(missing)} on the route: it steps rollout.percent up"))
    checks = block.get("checks")
    if not isinstance(checks, dict):
        return found
    if checks.get("shadow_mismatch_rate") is not None and route.get("shadow") is None:
        found.append(((*at, "checks", "shadow_mismatch_rate"),
                      "needs a shadow block on the route: the mismatch rate comes from its comparisons"))
    custom = checks.get("custom")
    first: dict[str, int] = {}
    for index, check in enumerate(custom if isinstance(custom, list) else []):
        name = check.get("name") if isinstance(check, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            found.append(((*at, "checks", "custom", index, "name"),
                          f"duplicate check name {name!r} (first used by custom[{first[name]}])"))
        else:
            first[name] = index
    return found


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110: a copy of these changes nothing


def _shadow_checks(at: Path, route: dict[str, Any], shadow: dict[str, Any]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if route.get("candidate") is None:
        found.append((at, "needs a candidate upstream on the route: the shadow copy goes to the candidate"))
    methods = shadow.get("methods")
    if isinstance(methods, list) and shadow.get("max_per_minute") is None:
        unsafe = sorted({m.upper() for m in methods if isinstance(m, str)} - SAFE_METHODS)
        if unsafe:
            found.append((at, f"mirrors {', '.join(unsafe)}, so max_per_minute is required: every copy of an "
                          "unsafe method makes the candidate do real work (a paid image API charges for "
                          "each one); set the most copies a minute you accept paying for"))
    match = route.get("match")
    matched = match.get("methods") if isinstance(match, dict) else None
    if not isinstance(matched, list):
        return found
    allowed = {m.upper() for m in matched if isinstance(m, str)}
    if methods is None and not allowed & {"GET", "HEAD"}:
        found.append((at, "mirrors GET and HEAD by default, but match.methods has neither: list methods"))
    elif isinstance(methods, list):
        for index, method in enumerate(methods):
            if isinstance(method, str) and method.upper() not in allowed:
                found.append(((*at, "methods", index), f"{method.upper()} is not in match.methods, "
                              "so it is never mirrored"))
    return found


def describe_pydantic_error(error: ErrorDetails) -> str:
    """One short sentence for a pydantic error, in the words of routes.yaml."""
    kind, loc = error["type"], error["loc"]
    value = error.get("input")
    context = error.get("ctx") or {}
    if kind == "config":
        return str(context["reason"])
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    if kind == "bool_type":
        return "must be true or false" + _got(value)
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        field = str(loc[-1])
        if field in RESERVED_ROUTE_FIELDS and len(loc) == 3 and loc[0] == "routes":
            return "not supported yet by this version"
        close = difflib.get_close_matches(field, KNOWN_FIELDS, n=1, cutoff=0.7)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "string_type":
        got = _got(value)
        if not (isinstance(value, (bool, str, dict, list)) or value is None):
            got = got[:-1] + "; quote it)"  # 0755 or 2026-01-01 unquoted are not text in YAML
        return "must be a string" + got
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "must be a number" + _got(value)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + _got(value)
    if kind == "literal_error":
        return f"must be {context.get('expected', 'one of the allowed values')}" + _got(value)
    if kind == "list_type":
        return "must be a list" + _got(value)
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping" + _got(value)
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _got(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
        return f' (got the boolean {text}; write "{text}" in quotes if you mean the text)'
    if value is None:
        return " (got nothing)"
    if isinstance(value, dict):
        return " (got a mapping)"
    if isinstance(value, list):
        return " (got a list)"
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f" (got {shown})" if isinstance(value, str) else f" (got {type(value).__name__} {shown})"
