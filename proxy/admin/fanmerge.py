"""How the workers' admin answers make the parent's under `serve --workers N`: one function per endpoint.

Owns the merge rule of each admin endpoint (the table is in docs/admin.md): counts are summed, a state
any worker is in shows (a tripped guard, an open circuit), a fact that is the same in every worker by
construction is taken from the first and checked where a difference would mislead (the routes, the
config's sha256: Disagreement, answered 409). Owns no I/O: answers in (Answer, from peers.py), JSON out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Answer", "Body", "Disagreement", "config", "guard_reset", "health", "mismatches", "noise", "noise_reset",
    "readiness", "refusal", "reloaded", "routes",
]  # fmt: skip

Body = dict[str, Any]
_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}  # a circuit shows the worst state any worker has


@dataclass(frozen=True, slots=True)
class Answer:
    """What one worker answered: status 0 when it did not (restarting, hung past the timeout)."""

    worker: int
    status: int
    body: Any = None  # the JSON, or the text of /metrics
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def summary(self) -> Body:
        if self.status == 0:
            return {"worker": self.worker, "status": None, "error": self.error}
        return {"worker": self.worker, "status": self.status, "body": self.body}


class Disagreement(ValueError):
    """The workers answered 200 but serve different things; `workers` says what each serves."""

    def __init__(self, message: str, workers: list[Body]) -> None:
        super().__init__(message)
        self.workers = workers


def refusal(answers: Sequence[Answer], what: str) -> tuple[int, Body] | None:
    """None when every worker answered 200. When all refused alike (a bad parameter, an unknown route), their
    answer; otherwise the first failure's status (502 when a worker did not answer) and each worker's."""
    bad = [answer for answer in answers if not answer.ok]
    if not bad:
        return None
    first = bad[0]
    if first.status and all(a.status == first.status and a.body == first.body for a in answers):
        return first.status, first.body
    if first.status == 0:
        status, code = 502, "worker_unreachable"
    else:
        error = first.body.get("error") if isinstance(first.body, dict) else None
        code = error.get("code", "worker_failed") if isinstance(error, dict) else "worker_failed"
        status = first.status
    failed = ", ".join(str(a.worker) for a in bad)
    message = f"{what} failed on worker {failed} of {len(answers)}; each worker's answer is under workers"
    return status, {"error": {"code": code, "message": message, "workers": [a.summary() for a in answers]}}


def health(answers: Sequence[Answer]) -> tuple[int, Body]:
    ok = all(answer.ok for answer in answers)
    workers = [
        {"worker": a.worker, "status": "ok" if a.ok else a.error or f"answered {a.status}"} for a in answers
    ]
    return (200 if ok else 503), {"status": "ok" if ok else "unhealthy", "workers": workers}


def readiness(answers: Sequence[Answer]) -> tuple[int, Body]:
    """Ready when every worker is; an upstream is "ok" when every worker that answered reaches it."""
    upstreams: dict[str, str] = {}
    shas, workers = set(), []
    for answer in answers:
        body = answer.body if isinstance(answer.body, dict) and "status" in answer.body else None
        if body is None:
            workers.append({"worker": answer.worker, "status": "unreachable", "error": answer.error})
            continue
        sha = body.get("config_sha256")
        shas.add(sha)
        workers.append({"worker": answer.worker, "status": body["status"], "config_sha256": sha})
        for name, state in body.get("upstreams", {}).items():
            if upstreams.get(name, "ok") == "ok":
                upstreams[name] = state
    ready = all(answer.ok for answer in answers)
    return (200 if ready else 503), {
        "status": "ready" if ready else "not_ready",
        "config_sha256": shas.pop() if len(shas) == 1 else None,
        "upstreams": upstreams,
        "workers": workers,
    }


def config(bodies: Sequence[Body]) -> Body:
    if len({body["sha256"] for body in bodies}) > 1:
        each = [_pick(b, i, "sha256", "loaded_at") for i, b in enumerate(bodies)]
        raise Disagreement("the workers serve different configurations; POST /reload, then ask again", each)
    return {**bodies[0], "workers": len(bodies)}


def _pick(body: Body, worker: int, *keys: str) -> Body:
    return {"worker": worker, **{key: body[key] for key in keys}}


def _shape(body: Body) -> tuple[object, ...]:
    routes = tuple((r["name"], r["primary"], r["candidate"], "guard" in r) for r in body["routes"])
    return routes, body["default"]["upstream"]


def routes(bodies: Sequence[Body]) -> Body:
    """Counts summed; the percent is the highest a worker routes with (a worker whose guard tripped says 0:
    the guard shows which tripped); a circuit is in the worst state any worker has it in."""
    if len({_shape(body) for body in bodies}) > 1:
        named = [{"worker": i, "routes": [r["name"] for r in b["routes"]]} for i, b in enumerate(bodies)]
        raise Disagreement("the workers serve different routes; POST /reload, then ask again", named)
    merged = []
    for n, first in enumerate(bodies[0]["routes"]):
        each = [body["routes"][n] for body in bodies]
        route = {
            **first,
            "percent": max(r["percent"] for r in each),
            "requests": {role: sum(r["requests"][role] for r in each) for role in first["requests"]},
        }
        if "guard" in first:
            route["guard"] = _guard([r["guard"] for r in each])
        merged.append(route)
    circuits: dict[str, str] = {}
    for body in bodies:
        for upstream, state in body["circuits"].items():
            if _SEVERITY.get(state, 0) >= _SEVERITY.get(circuits.get(upstream, "closed"), 0):
                circuits[upstream] = state
    default = {**bodies[0]["default"], "requests": sum(body["default"]["requests"] for body in bodies)}
    return {"routes": merged, "default": default, "circuits": circuits, "workers": len(bodies)}


def _guard(guards: Sequence[Body]) -> Body:
    tripped = [i for i, guard in enumerate(guards) if guard["tripped"]]
    return {
        "tripped": bool(tripped),
        "reason": guards[tripped[0]]["reason"] if tripped else None,
        "window": {key: sum(g["window"][key] for g in guards) for key in ("requests", "errors")},
        "tripped_workers": tripped,
    }


def reloaded(bodies: Sequence[Body]) -> Body:
    shas = {body["sha256"] for body in bodies}
    return {
        "ok": True,
        "changed": any(body["changed"] for body in bodies),
        "sha256": shas.pop() if len(shas) == 1 else None,
        "errors": [],
        "workers": [_pick(body, i, "changed", "sha256") for i, body in enumerate(bodies)],
    }


def guard_reset(bodies: Sequence[Body]) -> Body:
    was = [body["was_tripped"] for body in bodies]
    return {"route": bodies[0]["route"], "was_tripped": any(was), "tripped": False, "workers": was}


def mismatches(bodies: Sequence[Body], limit: int) -> Body:
    """Every worker's newest `limit`, newest first across workers, each naming its worker (and its `ref` made
    `<worker>-<ref>`); then `limit`."""
    found = [{**m, "worker": i, **_ref(i, m)} for i, body in enumerate(bodies) for m in body["mismatches"]]
    found.sort(key=lambda mismatch: mismatch["at"], reverse=True)  # stable: a tie keeps the worker order
    found = found[:limit]
    kept: dict[str, int] = {}
    noisy: dict[str, list[str]] = {}
    for body in bodies:
        for route, count in body["kept"].items():
            kept[route] = kept.get(route, 0) + count
        for route, paths in body["noise"].items():
            known = noisy.setdefault(route, [])
            known.extend(path for path in paths if path not in known)
    route = bodies[0]["route"]
    return {"route": route, "count": len(found), "kept": kept, "noise": noisy, "mismatches": found}


def _ref(worker: int, mismatch: Body) -> Body:
    """A worker's ref made the parent's: `<worker>-<ref>` (fanout.py reads it back)."""
    return {"ref": f"{worker}-{mismatch['ref']}"} if "ref" in mismatch else {}


def noise(bodies: Sequence[Body]) -> Body:
    """Each worker learns its own noise: pairs summed; a path shows when it was first learned, last seen,
    from how many pairs in all, and which workers learned it (only those excuse it)."""
    merged: dict[str, tuple[list[int], dict[str, Body]]] = {}
    for worker, body in enumerate(bodies):
        for route, learned in body["noise"].items():
            pairs, paths = merged.setdefault(route, ([0], {}))
            pairs[0] += learned["pairs"]
            for entry in learned["paths"]:
                known = paths.get(entry["path"])
                if known is None:
                    paths[entry["path"]] = {**entry, "workers": [worker]}
                    continue
                known["learned_at"] = min(known["learned_at"], entry["learned_at"])  # ISO 8601 UTC: sortable
                known["last_seen_at"] = max(known["last_seen_at"], entry["last_seen_at"])
                known["pairs"] += entry["pairs"]
                known["workers"].append(worker)
    out = {name: {"pairs": n[0], "paths": list(paths.values())} for name, (n, paths) in merged.items()}
    return {"route": bodies[0]["route"], "noise": out}


def noise_reset(bodies: Sequence[Body]) -> Body:
    """`forgotten`: the most paths one worker forgot (the workers mostly learn the same ones); each worker's
    count under `workers`."""
    each = [body["forgotten"] for body in bodies]
    return {"route": bodies[0]["route"], "forgotten": max(each), "workers": each}
