"""Each policy on its own: table-driven, no clock, no wrapper rules."""

from __future__ import annotations

import pytest

from podium.autoscaler.context import ScalingContext
from podium.autoscaler.policies import (
    ConcurrencyPolicy,
    LoadSignals,
    QueueDelayPolicy,
    RequestCountPolicy,
    policy_for,
    replicas_for,
)
from podium.core.specs import ScalePolicy, Scaling
from podium.core.stats import EndpointStats


def ctx(
    *, mc: int = 10, in_flight: int = 0, queued: int = 0, wait: float = 0.0, current: int = 1, ready: int = 1
) -> ScalingContext:
    return ScalingContext(
        endpoint_id="ep-1",
        scaling=Scaling(min_replicas=0, max_replicas=100, max_concurrency=mc),
        stats=EndpointStats(in_flight=in_flight, queued=queued, oldest_wait_s=wait),
        current=current,
        ready=ready,
        live=current,
    )


@pytest.mark.parametrize(
    ("target", "mc", "burst_load", "want"),
    [
        (0.7, 10, 0.0, 0),  # no load, no replicas asked for (the wrapper keeps the floor)
        (0.7, 10, 7.0, 1),  # exactly at target
        (0.7, 10, 7.01, 2),  # just over target
        (0.7, 10, 70.0, 10),
        (0.7, 10, 0.2, 1),  # any load needs a replica
        (1.0, 32, 33.0, 2),
        (0.5, 1, 3.0, 6),  # max_concurrency 1: half a request per replica
        (5.0, 32, 11.0, 3),  # value > 1 is an absolute in-flight target per replica
        (50.0, 32, 64.0, 2),  # ... never above max_concurrency
    ],
)
def test_concurrency_policy(target: float, mc: int, burst_load: float, want: int) -> None:
    rec = ConcurrencyPolicy(target).decide(ctx(mc=mc), LoadSignals.steady(burst_load), now=0.0)
    assert rec.replicas == want
    assert "concurrency" in rec.reason


@pytest.mark.parametrize(
    ("case", "current", "signals", "want"),
    [
        ("noise above target, within capacity: the average decides", 4, LoadSignals(38, 40, 26), 4),
        ("burst beyond capacity: sized for the burst", 4, LoadSignals(41, 44, 26), 6),
        ("burst at zero replicas", 0, LoadSignals(0.5, 1, 0.1), 1),
        ("slow growth: the average alone scales up", 4, LoadSignals(34, 36, 30), 5),
        ("falling load: the average, not the last second", 6, LoadSignals(5, 6, 30), 5),
    ],
)
def test_concurrency_burst_and_stable_windows(case: str, current: int, signals: LoadSignals, want: int) -> None:
    rec = ConcurrencyPolicy(0.7).decide(ctx(mc=10, current=current), signals, now=0.0)
    assert rec.replicas == want, (case, rec.reason)


@pytest.mark.parametrize(
    ("n", "in_flight", "queued", "want"),
    [
        (5, 0, 0, 0),
        (5, 1, 0, 1),
        (5, 5, 0, 1),
        (5, 5, 1, 2),
        (5, 3, 9, 3),
        (1, 4, 4, 8),
        (2.5, 5, 0, 2),
        (2.5, 5, 1, 3),
    ],
)
def test_request_count_policy(n: float, in_flight: int, queued: int, want: int) -> None:
    # The burst average is ignored on purpose: request-count acts on this tick's numbers.
    rec = RequestCountPolicy(n).decide(ctx(in_flight=in_flight, queued=queued), LoadSignals.steady(0.0), now=0.0)
    assert rec.replicas == want


@pytest.mark.parametrize(
    ("case", "kwargs", "burst_load", "want"),
    [
        ("breach adds one", dict(queued=1, wait=2.5, current=1, ready=1), 11.0, 2),
        ("breach sized by queue", dict(queued=25, wait=3.0, current=1, ready=1), 35.0, 4),
        ("breach while one boots: no extra", dict(queued=3, wait=3.0, current=2, ready=1), 13.0, 2),
        ("breach grows past booting", dict(queued=15, wait=3.0, current=2, ready=1), 25.0, 3),
        ("breach at zero", dict(queued=4, wait=5.0, current=0, ready=0), 4.0, 1),
        ("queue under threshold holds", dict(queued=9, wait=1.9, current=3, ready=3), 39.0, 3),
        ("wait exactly at threshold holds", dict(queued=1, wait=2.0, current=1, ready=1), 11.0, 1),
        ("no queue: what in-flight fills", dict(in_flight=12, current=4, ready=4), 12.0, 2),
        ("no queue: 10% band", dict(in_flight=19, current=4, ready=4), 19.0, 3),
        ("no queue never scales up", dict(in_flight=30, current=2, ready=2), 30.0, 2),
        ("no traffic", dict(current=2, ready=2), 0.0, 0),
    ],
)
def test_queue_delay_policy(case: str, kwargs: dict, burst_load: float, want: int) -> None:
    rec = QueueDelayPolicy(2.0).decide(ctx(mc=10, **kwargs), LoadSignals.steady(burst_load), now=0.0)
    assert rec.replicas == want, case


def test_policy_for_maps_every_kind() -> None:
    assert policy_for(ScalePolicy.parse("queue-delay=2")) == QueueDelayPolicy(2.0)
    assert policy_for(ScalePolicy.parse("request-count=5")) == RequestCountPolicy(5.0)
    assert policy_for(ScalePolicy()) == ConcurrencyPolicy(0.7)


def test_replicas_for_ignores_float_noise() -> None:
    assert replicas_for(0.7 * 3 * 10, 0.7 * 10) == 3
    assert replicas_for(-1, 5) == 0
