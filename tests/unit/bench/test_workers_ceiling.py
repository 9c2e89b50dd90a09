from __future__ import annotations

from bench.scenarios.workers import ceiling_note


def test_on_two_cores_the_load_beside_the_proxy_caps_what_a_second_worker_buys() -> None:
    note = ceiling_note(70.0, 20.0, cores=2, measured=1.46)
    # one worker: 1/70 per µs on its core; two: 2 cores / (70 + 20) µs per request -> 2 x 70 / 90
    assert "at most 1.56× one worker's rate here (measured: 1.46×)" in note
    assert "less than 12 µs per request" in note  # 70 x 0.3 / 1.7


def test_with_cores_to_spare_the_ceiling_is_two_workers_worth() -> None:
    assert "at most 2.00×" in ceiling_note(70.0, 20.0, cores=8, measured=1.9)


def test_a_run_without_figures_says_so() -> None:
    assert "could not be measured" in ceiling_note(0.0, 0.0, cores=2, measured=0.0)
