"""The runner's share of an endpoint's slots: sync requests first, jobs never starved, one job at zero."""

from __future__ import annotations

from podium.core.stats import EndpointStats
from podium.jobs.repo import Backlog
from podium.jobs.runner import allowance

NOW = 1000.0
FRESH = Backlog(queued=10, oldest_created_at=NOW - 1)
OLD = Backlog(queued=10, oldest_created_at=NOW - 31)


def test_free_slots_go_to_jobs_when_no_sync_request_waits() -> None:
    assert allowance(8, 0, EndpointStats(in_flight=3), FRESH, NOW, 30) == 5
    assert allowance(8, 0, None, Backlog(2, NOW), NOW, 30) == 2  # no more than are queued
    assert allowance(8, 4, EndpointStats(in_flight=1), FRESH, NOW, 30) == 4  # ours not yet seen in flight


def test_a_waiting_sync_request_holds_fresh_jobs_back() -> None:
    assert allowance(8, 0, EndpointStats(in_flight=2, queued=1), FRESH, NOW, 30) == 0
    assert allowance(8, 0, EndpointStats(in_flight=8), FRESH, NOW, 30) == 0  # full


def test_old_jobs_get_a_quarter_of_the_slots_even_under_sync_load() -> None:
    assert allowance(8, 0, EndpointStats(in_flight=8, queued=5), OLD, NOW, 30) == 2
    assert allowance(8, 2, EndpointStats(in_flight=8, queued=5), OLD, NOW, 30) == 0
    assert allowance(1, 0, EndpointStats(in_flight=1, queued=5), OLD, NOW, 30) == 1  # at least one


def test_one_job_wakes_an_endpoint_at_zero() -> None:
    assert allowance(0, 0, None, FRESH, NOW, 30) == 1
    assert allowance(0, 1, None, FRESH, NOW, 30) == 0
