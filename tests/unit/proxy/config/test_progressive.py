"""The `progressive` block of routes.yaml: a full block, the defaults, and every error at file:line: path."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from proxy.config import ConfigError, parse_config
from proxy.config.progressive import Progressive

HEAD = """\
version: 1
upstreams:
  legacy: {url: "http://127.0.0.1:8081"}
  imageservice: {url: "http://127.0.0.1:8082"}
default_upstream: legacy
routes:
  - name: images
    match: {path_prefix: /api/images, methods: [GET, HEAD, POST]}
    primary: legacy
    candidate: imageservice
    rollout: {percent: 0}
"""


def with_block(block: str, head: str = HEAD) -> str:
    """The block (written at column 0) lands on the images route; its first line is line 12."""
    return head + textwrap.indent(textwrap.dedent(block), "    ")


def progressive_of(text: str) -> Progressive:
    block = parse_config(text).routes[0].progressive
    assert block is not None
    return block


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.errors


def test_the_issue_example_with_a_pause_and_a_custom_check_is_valid() -> None:
    text = with_block("""\
        shadow: {percent: 100}
        progressive:
          steps: [1, 5, pause, 25, 50, 100]
          interval_s: 60
          min_requests: 50
          max_failures: 2
          max_inconclusive: 10
          significance: 0.01
          checks:
            error_rate:    {max_increase: 0.01}
            latency_p95:   {max_ratio: 1.25}
            shadow_mismatch_rate: {max: 0.02}
            custom: [{name: queue_depth, query: "max(imageservice_in_flight)", max: 30}]
        """)
    block = progressive_of(text)

    assert block.steps == [1.0, 5.0, "pause", 25.0, 50.0, 100.0]
    assert block.percents == (1.0, 5.0, 25.0, 50.0, 100.0)
    assert (block.interval_s, block.min_requests, block.max_failures) == (60, 50, 2)
    assert (block.max_inconclusive, block.significance) == (10, 0.01)
    assert block.checks.model_dump(exclude={"custom"}) == {
        "error_rate": {"max_increase": 0.01},
        "latency_p95": {"max_ratio": 1.25},
        "shadow_mismatch_rate": {"max": 0.02},
    }
    checks = block.checks
    assert [(c.name, c.query, c.max) for c in checks.custom] == [
        ("queue_depth", "max(imageservice_in_flight)", 30.0)
    ]


def test_a_block_with_steps_and_one_check_gets_the_documented_defaults() -> None:
    text = with_block("progressive: {steps: [10, 100], checks: {error_rate: {max_increase: 0}}}")
    block = progressive_of(text)

    assert block.interval_s == 60
    assert block.min_requests == 50
    assert block.max_failures == 2
    assert block.max_inconclusive == 10
    assert block.significance == 0.05
    assert block.checks.latency_p95 is None
    assert block.checks.shadow_mismatch_rate is None
    assert block.checks.custom == []


def test_a_route_without_the_block_has_none() -> None:
    assert parse_config(HEAD).routes[0].progressive is None


def test_a_last_step_below_100_is_allowed_and_ends_the_rollout_there() -> None:
    text = with_block("progressive: {steps: [1, 10, 50], checks: {latency_p95: {max_ratio: 1}}}")
    block = progressive_of(text)
    assert block.percents[-1] == 50


def test_the_block_survives_show_and_validate() -> None:
    text = with_block("progressive: {steps: [1, pause, 100], checks: {error_rate: {max_increase: 0.01}}}\n")
    config = parse_config(text)

    shown = yaml.safe_dump(config.model_dump(mode="json", by_alias=True))
    assert parse_config(shown) == config


NOT_A_STEP = "must be greater than 0 and at most 100 (0 % is where a rollout starts, not a step)"


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ("[]", "steps: must list at least one percent, e.g. [1, 5, 25, 50, 100]"),
        ("[pause, 5]", "steps: must not start with pause: the rollout starts when the block is added"),
        ("[5, pause]", "steps: must not end with pause: the last percent already ends the rollout "
         "(succeeded)"),
        ("[1, pause, pause, 5]", "steps: has two pauses in a row ([1] and [2]): one waits as long"),
        ("[1, 5, 5]", "steps: must increase: [2] is 5, not above the 5 before it"),
        ("[10, pause, 5]", "steps: must increase: [2] is 5, not above the 10 before it"),
        ("[0, 5]", f"steps[0]: {NOT_A_STEP}"),
        ("[5, 101]", f"steps[1]: {NOT_A_STEP}"),
        ("[1.234]", "steps[0]: must have at most two decimals"),
        ('["5"]', "steps[0]: must be a percent (0 < percent <= 100) or the word pause (got '5')"),
        ("[true]", "steps[0]: must be a percent (0 < percent <= 100) or the word pause (got True)"),
        ("[Pause]", "steps[0]: must be a percent (0 < percent <= 100) or the word pause (got 'Pause')"),
    ],
)
def test_steps_are_percents_that_increase_with_single_pauses_between_them(steps: str, error: str) -> None:
    text = with_block(f"progressive: {{steps: {steps}, checks: {{error_rate: {{max_increase: 0.01}}}}}}\n")
    assert errors_of(text) == [f"routes.yaml:12: routes[0].progressive.{error}"]


def test_every_bad_number_is_reported_at_its_own_line() -> None:
    text = with_block("""\
        progressive:
          steps: [1, 100]
          interval_s: 1
          min_requests: 0
          max_failures: 0
          max_inconclusive: 1001
          significance: 0.6
          checks:
            error_rate: {max_increase: 1}
            latency_p95: {max_ratio: 0.9}
            custom:
              - {name: q, query: "  ", max: .inf}
        """)
    at = "routes[0].progressive"
    assert errors_of(text) == [
        f"routes.yaml:14: {at}.interval_s: must be from 5 to 86400 seconds: shorter would judge traffic of "
        "the previous step (the proxy settles an edit for 2 s, Prometheus scrapes every 5-15 s)",
        f"routes.yaml:15: {at}.min_requests: must be between 1 and 1000000000",
        f"routes.yaml:16: {at}.max_failures: must be between 1 and 1000",
        f"routes.yaml:17: {at}.max_inconclusive: must be between 1 and 1000",
        f"routes.yaml:18: {at}.significance: must be above 0 and at most 0.5, e.g. 0.05: a one-sided p-value "
        "below it counts",
        f"routes.yaml:20: {at}.checks.error_rate.max_increase: must be a fraction from 0 up to (not "
        "including) 1, e.g. 0.01 for one percentage point",
        f"routes.yaml:21: {at}.checks.latency_p95.max_ratio: must be a ratio from 1 to 100, e.g. 1.25: the "
        "candidate's p95 may be 25 % above",
        f"routes.yaml:23: {at}.checks.custom[0].max: must be a finite number",
        f"routes.yaml:23: {at}.checks.custom[0].query: must not be empty: a PromQL expression returning one "
        "number",
    ]


def test_a_block_needs_a_candidate_and_a_rollout_to_move() -> None:
    head = HEAD.replace("    candidate: imageservice\n    rollout: {percent: 0}\n", "")
    text = with_block("progressive: {steps: [1, 100], checks: {error_rate: {max_increase: 0.01}}}\n", head)

    assert errors_of(text) == [
        "routes.yaml:10: routes[0].progressive: needs a candidate upstream and a rollout block on the route: "
        "it steps rollout.percent up"
    ]


def test_a_shadow_mismatch_check_needs_the_route_s_shadow_block() -> None:
    text = with_block("""\
        progressive:
          steps: [1, 100]
          checks:
            shadow_mismatch_rate: {max: 0.02}
        """)
    assert errors_of(text) == [
        "routes.yaml:15: routes[0].progressive.checks.shadow_mismatch_rate: needs a shadow block on the "
        "route: the mismatch rate comes from its comparisons"
    ]


def test_custom_check_names_are_unique_labels_that_do_not_shadow_a_built_in_one() -> None:
    text = with_block("""\
        progressive:
          steps: [1, 100]
          checks:
            custom:
              - {name: depth, query: "a", max: 1}
              - {name: error_rate, query: "b", max: 1}
              - {name: depth, query: "c", max: 1}
              - {name: "9lives", query: "d", max: 1}
        """)
    at = "routes[0].progressive.checks.custom"
    assert errors_of(text) == [
        f"routes.yaml:17: {at}[1].name: 'error_rate' is a built-in check: give the custom one another name",
        f"routes.yaml:18: {at}[2].name: duplicate check name 'depth' (first used by custom[0])",
        f"routes.yaml:19: {at}[3].name: check name '9lives' must start with a letter and use only letters, "
        "digits, '_' and '-' (at most 63 characters): it becomes a metric label",
    ]


@pytest.mark.parametrize("checks", ["{}", "{custom: []}", "{error_rate: null}"])
def test_at_least_one_check_is_required(checks: str) -> None:
    text = with_block(f"progressive:\n  steps: [1, 100]\n  checks: {checks}\n")
    assert errors_of(text) == [
        "routes.yaml:14: routes[0].progressive.checks: must name at least one check: error_rate, "
        "latency_p95, shadow_mismatch_rate, custom"
    ]


def test_steps_and_checks_are_required_and_a_thresholdless_check_is_refused() -> None:
    text = with_block("progressive:\n  interval_s: 30\n  latency: {}\n")
    assert errors_of(text) == [
        "routes.yaml:12: routes[0].progressive.checks: required field is missing",
        "routes.yaml:12: routes[0].progressive.steps: required field is missing",
        "routes.yaml:14: routes[0].progressive.latency: unknown field (did you mean 'latency_p95'?)",
    ]
    text = with_block("progressive: {steps: [1, 100], checks: {latency_p95: {}}}\n")
    assert errors_of(text) == [
        "routes.yaml:12: routes[0].progressive.checks.latency_p95.max_ratio: required field is missing"
    ]
