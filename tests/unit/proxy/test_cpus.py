"""`serve --workers auto`: one worker per CPU the process may use, within its cgroup's CPU quota."""

from __future__ import annotations

import os

from proxy.cpus import MAX_WORKERS, cpu_count, quota_of, usable_cpus


def test_without_a_quota_every_usable_cpu_gets_a_worker_at_least_one_at_most_the_cap() -> None:
    assert cpu_count(8, None) == 8
    assert cpu_count(0, None) == 1
    assert cpu_count(512, None) == MAX_WORKERS


def test_a_cpu_quota_bounds_the_count_rounded_up() -> None:
    assert cpu_count(64, 2.0) == 2
    assert cpu_count(64, 0.25) == 1
    assert cpu_count(64, 1.5) == 2
    assert cpu_count(4, 16.0) == 4


def test_cgroup_quota_files_are_read_as_cpus_and_no_quota_is_none() -> None:
    assert quota_of("200000 100000") == 2.0
    assert quota_of("50000 100000") == 0.5
    assert quota_of("max 100000") is None  # cgroup v2: no quota
    assert quota_of("-1 100000") is None  # cgroup v1: no quota
    assert quota_of("") is None
    assert quota_of("garbage here") is None


def test_this_process_gets_no_more_workers_than_its_affinity_allows() -> None:
    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))
