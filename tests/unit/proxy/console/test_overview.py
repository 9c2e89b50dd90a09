"""The routes page's facts: the effective percent and why, flags, guard, breakers, per route."""

from __future__ import annotations

from typing import Any

from proxy.console.figures import Traffic
from proxy.console.overview import describe_flag, route_views

ROUTES: dict[str, Any] = {
    "routes": [{"name": "images", "primary": "legacy", "candidate": "new", "percent": 25.0,
                "requests": {"primary": 3, "candidate": 1},
                "guard": {"tripped": False, "reason": None, "window": {"requests": 1, "errors": 0}}}],
    "default": {"upstream": "legacy", "requests": 0},
    "circuits": {"new": "open", "other": "closed"},
}  # fmt: skip
CONFIG: dict[str, Any] = {"config": {"routes": [{
    "name": "images", "rollout": {"percent": 25.0},
    "flags": [
        {"header": "X-B", "cookie": None, "query": None, "equals": "new", "in": None, "use": "candidate"},
        {"header": None, "cookie": "uid", "query": None, "equals": None, "in": ["a", "b"], "use": "primary"},
    ],
    "guard": {"max_error_rate": 0.2, "min_requests": 20, "window_s": 60.0},
    "shadow": {"percent": 100.0},
}]}}  # fmt: skip


def test_a_route_says_its_percent_comes_from_the_config_and_shows_its_flags_guard_and_breakers() -> None:
    (view,) = route_views(ROUTES, CONFIG, Traffic(), {}, {"images": 4})
    assert (view.percent, view.configured) == (25.0, 25.0)
    assert view.why == "config: rollout.percent in routes.yaml"
    assert view.flags == ["header X-B = new → candidate", "cookie uid in [a, b] → primary"]
    assert view.guard is not None
    assert view.guard["policy"]["min_requests"] == 20
    assert view.circuits == {"new": "open"}
    assert view.shadowed
    assert view.kept_mismatches == 4


def test_a_tripped_guard_and_the_controller_explain_the_percent() -> None:
    tripped = {**ROUTES, "routes": [{**ROUTES["routes"][0], "percent": 0.0,
                                     "guard": {"tripped": True, "reason": "error rate 0.5 > 0.2",
                                               "window": {"requests": 20, "errors": 10}}}]}  # fmt: skip
    (view,) = route_views(tripped, CONFIG, Traffic(), {}, {})
    assert view.why.startswith("guard tripped (error rate 0.5 > 0.2)")

    controller = {"images": {"phase": "progressing", "step": 1, "steps": [5, 25, 50, 100], "percent": 25}}
    (view,) = route_views(ROUTES, CONFIG, Traffic(), controller, {})
    assert view.why == ("the progressive controller writes rollout.percent: phase progressing, step 1 of 4")
    assert view.controller == controller["images"]


def test_without_the_config_a_route_still_shows_what_get_routes_said() -> None:
    (view,) = route_views(ROUTES, None, Traffic(), {}, {})
    assert view.configured is None
    assert view.flags == []
    assert view.why == "config: no rollout block"


def test_a_flag_reads_as_a_sentence() -> None:
    assert describe_flag({"query": "backend", "equals": "new", "use": "candidate"}) == \
        "query backend = new → candidate"
