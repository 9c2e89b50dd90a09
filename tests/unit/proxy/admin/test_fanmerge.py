"""The parent's admin answers under --workers N, from what each worker answered (pure merges)."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.admin import fanmerge
from proxy.admin.fanmerge import Answer, Disagreement


def route(requests: tuple[int, int], *, percent: float = 25.0, tripped: bool = False) -> dict[str, Any]:
    return {
        "name": "images", "primary": "legacy", "candidate": "new", "percent": 0.0 if tripped else percent,
        "requests": {"primary": requests[0], "candidate": requests[1]},
        "guard": {"tripped": tripped, "reason": "error rate 0.9 > 0.5" if tripped else None,
                  "window": {"requests": requests[1], "errors": requests[1] if tripped else 0}},
    }  # fmt: skip


def routes_body(*routes: dict[str, Any], default: int = 0, circuit: str = "closed") -> dict[str, Any]:
    return {"routes": list(routes), "default": {"upstream": "legacy", "requests": default},
            "circuits": {"legacy": "closed", "new": circuit}}  # fmt: skip


def test_routes_sum_the_counts_and_show_a_guard_any_worker_tripped_and_the_worst_circuit() -> None:
    merged = fanmerge.routes([
        routes_body(route((3, 1)), default=2),
        routes_body(route((4, 5), tripped=True), default=1, circuit="open"),
    ])  # fmt: skip

    (images,) = merged["routes"]
    assert images["requests"] == {"primary": 7, "candidate": 6}
    assert images["percent"] == 25.0
    assert images["guard"] == {"tripped": True, "reason": "error rate 0.9 > 0.5",
                               "window": {"requests": 6, "errors": 5}, "tripped_workers": [1]}  # fmt: skip
    assert merged["default"] == {"upstream": "legacy", "requests": 3}
    assert merged["circuits"] == {"legacy": "closed", "new": "open"}
    assert merged["workers"] == 2


def test_routes_refuse_to_merge_workers_that_serve_different_routes() -> None:
    other = {**route((0, 0)), "candidate": "legacy"}

    with pytest.raises(Disagreement) as refused:
        fanmerge.routes([routes_body(route((1, 1))), routes_body(other)])

    assert "different routes" in str(refused.value)
    assert [w["worker"] for w in refused.value.workers] == [0, 1]


def test_config_is_the_first_workers_when_all_serve_the_same_file_else_a_disagreement() -> None:
    same = [{"sha256": "a", "loaded_at": 1.0, "path": "r.yaml", "config": {}},
            {"sha256": "a", "loaded_at": 2.0, "path": "r.yaml", "config": {}}]  # fmt: skip
    assert fanmerge.config(same) == {**same[0], "workers": 2}

    with pytest.raises(Disagreement) as refused:
        fanmerge.config([same[0], {**same[1], "sha256": "b"}])
    assert refused.value.workers == [{"worker": 0, "sha256": "a", "loaded_at": 1.0},
                                     {"worker": 1, "sha256": "b", "loaded_at": 2.0}]  # fmt: skip


def mismatch(at: float, request_id: str) -> dict[str, Any]:
    return {"at": at, "route": "images", "request_id": request_id}


def test_mismatches_are_merged_newest_first_each_naming_its_worker_then_cut_to_the_limit() -> None:
    bodies = [
        {"route": None, "count": 2, "kept": {"images": 2}, "noise": {"images": ["$.id"]},
         "mismatches": [mismatch(30, "a"), mismatch(10, "b")]},
        {"route": None, "count": 2, "kept": {"images": 5}, "noise": {"images": ["$.id", "$.at"]},
         "mismatches": [mismatch(40, "c"), mismatch(20, "d")]},
    ]  # fmt: skip

    merged = fanmerge.mismatches(bodies, limit=3)

    assert [(m["request_id"], m["worker"]) for m in merged["mismatches"]] == [("c", 1), ("a", 0), ("d", 1)]
    assert merged["count"] == 3
    assert merged["kept"] == {"images": 7}
    assert merged["noise"] == {"images": ["$.id", "$.at"]}


def test_a_merged_mismatch_ref_names_the_worker_that_keeps_it() -> None:
    bodies = [
        {"route": None, "count": 1, "kept": {}, "noise": {},
         "mismatches": [{**mismatch(at, "x"), "ref": "7"}]}
        for at in (1.0, 2.0)
    ]
    merged = fanmerge.mismatches(bodies, limit=5)
    assert [m["ref"] for m in merged["mismatches"]] == ["1-7", "0-7"]


def test_noise_shows_each_path_once_first_learned_last_seen_and_which_workers_learned_it() -> None:
    def learned(path: str, at: str, seen: str, pairs: int) -> dict[str, Any]:
        return {"path": path, "learned_at": at, "last_seen_at": seen, "pairs": pairs}

    bodies = [
        {"route": "images", "noise": {"images": {"pairs": 10, "paths": [
            learned("$.id", "2026-01-01T00:00:05+00:00", "2026-01-01T00:01:00+00:00", 3)]}}},
        {"route": "images", "noise": {"images": {"pairs": 7, "paths": [
            learned("$.id", "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:30+00:00", 2),
            learned("$.at", "2026-01-01T00:00:09+00:00", "2026-01-01T00:00:09+00:00", 1)]}}},
    ]  # fmt: skip

    merged = fanmerge.noise(bodies)["noise"]["images"]

    assert merged["pairs"] == 17
    assert merged["paths"] == [
        {**learned("$.id", "2026-01-01T00:00:01+00:00", "2026-01-01T00:01:00+00:00", 5), "workers": [0, 1]},
        {**learned("$.at", "2026-01-01T00:00:09+00:00", "2026-01-01T00:00:09+00:00", 1), "workers": [1]},
    ]


def test_a_change_is_ok_only_when_every_worker_made_it_and_the_results_say_each_worker() -> None:
    reloaded = fanmerge.reloaded([{"ok": True, "changed": False, "sha256": "a", "errors": []},
                                  {"ok": True, "changed": True, "sha256": "a", "errors": []}])  # fmt: skip
    assert reloaded["changed"] is True
    assert reloaded["sha256"] == "a"
    assert [w["changed"] for w in reloaded["workers"]] == [False, True]

    reset = fanmerge.guard_reset([{"route": "images", "was_tripped": False, "tripped": False},
                                  {"route": "images", "was_tripped": True, "tripped": False}])  # fmt: skip
    assert reset == {"route": "images", "was_tripped": True, "tripped": False, "workers": [False, True]}

    forgotten = fanmerge.noise_reset([{"route": "images", "forgotten": n} for n in (2, 3)])
    assert forgotten == {"route": "images", "forgotten": 3, "workers": [2, 3]}


def error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "why"}}


def test_a_refusal_every_worker_gave_alike_is_passed_on_as_it_is() -> None:
    answers = [Answer(0, 404, error("unknown_route")), Answer(1, 404, error("unknown_route"))]

    assert fanmerge.refusal(answers, "POST /x") == (404, error("unknown_route"))
    assert fanmerge.refusal([Answer(0, 200, {}), Answer(1, 200, {})], "POST /x") is None


def test_a_partial_failure_answers_with_the_first_failure_and_every_workers_answer() -> None:
    invalid = [Answer(0, 200, {"ok": True}), Answer(1, 422, error("invalid_config"))]
    status, body = fanmerge.refusal(invalid, "POST /reload") or (0, {})
    assert status == 422
    assert body["error"]["code"] == "invalid_config"
    assert "worker 1 of 2" in body["error"]["message"]
    assert body["error"]["workers"] == [
        {"worker": 0, "status": 200, "body": {"ok": True}},
        {"worker": 1, "status": 422, "body": error("invalid_config")},
    ]

    gone = [Answer(0, 200, {"ok": True}), Answer(1, 0, error=ConnectionRefusedError.__name__)]
    status, body = fanmerge.refusal(gone, "POST /reload") or (0, {})
    assert (status, body["error"]["code"]) == (502, "worker_unreachable")
    assert body["error"]["workers"][1] == {"worker": 1, "status": None, "error": "ConnectionRefusedError"}


def test_ready_only_when_every_worker_is_and_an_upstream_is_ok_only_when_every_worker_reaches_it() -> None:
    def ready(status: int, new: str) -> Answer:
        word = "ready" if status == 200 else "not_ready"
        upstreams = {"legacy": "ok", "new": new}
        return Answer(0, status, {"status": word, "config_sha256": "a", "upstreams": upstreams})

    status, body = fanmerge.readiness([ready(200, "ok"), ready(200, "ok")])
    assert (status, body["status"], body["config_sha256"]) == (200, "ready", "a")

    status, body = fanmerge.readiness([ready(200, "ok"), ready(503, "refused"), Answer(2, 0, error="gone")])
    assert (status, body["status"]) == (503, "not_ready")
    assert body["upstreams"] == {"legacy": "ok", "new": "refused"}
    assert [w["status"] for w in body["workers"]] == ["ready", "not_ready", "unreachable"]


def test_healthy_only_when_every_worker_answers() -> None:
    assert fanmerge.health([Answer(0, 200, {}), Answer(1, 200, {})])[0] == 200
    status, body = fanmerge.health([Answer(0, 200, {}), Answer(1, 0, error="gone")])
    assert status == 503
    assert body["workers"] == [{"worker": 0, "status": "ok"}, {"worker": 1, "status": "gone"}]
