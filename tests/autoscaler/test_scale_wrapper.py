"""The shared wrapper around every policy, driven tick by tick with a fake clock."""

from __future__ import annotations

import math

import pytest

from podium.autoscaler.context import Decision, ScalingContext, Tuning
from podium.autoscaler.decide import ScalerState, decide, note_wake
from podium.core.specs import ScalePolicy, Scaling
from podium.core.stats import EndpointStats

TICK = 0.25
TUNING = Tuning(burst_window_s=1.0, stable_window_s=30.0)


class Driver:
    """Feeds `decide` one tick at a time and applies each decision, as the loop does.

    Replicas become ready at once (the controller is not under test here).
    """

    def __init__(self, scaling: Scaling, current: int = 0, now: float = 1000.0) -> None:
        self.scaling = scaling
        self.current = current
        self.now = now
        self.state: ScalerState | None = None
        self.history: list[int] = []
        self.enabled = True

    def step(
        self,
        in_flight: int = 0,
        queued: int = 0,
        wait: float = 0.0,
        since_last_request_s: float | None = None,
        complete: bool = True,
    ) -> Decision:
        ctx = ScalingContext(
            endpoint_id="ep-1",
            scaling=self.scaling,
            stats=EndpointStats(in_flight=in_flight, queued=queued, oldest_wait_s=wait),
            current=self.current,
            ready=self.current,
            live=self.current,
            enabled=self.enabled,
            since_last_request_s=since_last_request_s,
            stats_complete=complete,
        )
        decision, self.state = decide(ctx, self.state, self.now, TUNING)
        assert self.scaling.min_replicas <= decision.desired <= self.scaling.max_replicas or not self.enabled
        self.current = decision.desired
        self.history.append(decision.desired)
        self.now += TICK
        return decision

    def run(self, seconds: float, **load: float | None) -> Decision:
        decision = self.step(**load)  # type: ignore[arg-type]
        for _ in range(int(seconds / TICK) - 1):
            decision = self.step(**load)  # type: ignore[arg-type]
        return decision

    def changes(self) -> int:
        return sum(1 for a, b in zip(self.history, self.history[1:], strict=False) if a != b)


def scaling(policy: str = "concurrency=0.7", **kw: float) -> Scaling:
    base: dict[str, float] = dict(min_replicas=0, max_replicas=20, max_concurrency=10, idle_timeout_s=60)
    base.update(kw)
    return Scaling(scale_policy=ScalePolicy.parse(policy), **base)  # type: ignore[arg-type]


def test_burst_scales_up_within_one_second() -> None:
    d = Driver(scaling(), current=1)
    first = d.step(in_flight=10, queued=90)
    assert first.desired > 1  # the first tick of a burst already adds replicas
    d.run(0.75, in_flight=10, queued=90)
    assert d.current == math.ceil(100 / 7)


def test_ramp_keeps_capacity_ahead_of_load_without_ever_scaling_down() -> None:
    d = Driver(scaling(max_replicas=50), current=1)
    for i in range(240):  # 60 s ramp from 0 to 240 requests
        d.step(in_flight=i)
        # Capacity (10 slots per replica) trails the load by at most one burst window of growth.
        assert d.current * 10 >= i - 4, (i, d.current)
    assert d.history == sorted(d.history)


@pytest.mark.parametrize("policy", ["concurrency=0.7", "request-count=7", "queue-delay=1"])
def test_load_on_a_threshold_does_not_flap(policy: str) -> None:
    """Demand alternates just under / just over a replica boundary every tick for 150 s.

    The gateway's numbers follow capacity, as the balancer enforces them: what does not fit in
    current x max_concurrency slots queues, and the queue is old enough to breach.
    """
    d = Driver(scaling(policy), current=10)
    for i in range(600):
        demand = 71 if i % 2 else 69
        if policy.startswith("queue-delay"):
            demand += 30  # 99 / 101 against 10 slots per replica
        in_flight = min(demand, d.current * 10)
        queued = demand - in_flight
        d.step(in_flight=in_flight, queued=queued, wait=1.5 if queued else 0.0, since_last_request_s=0.0)
    assert d.changes() <= 1, d.history
    assert d.current == (10 if policy.startswith("concurrency") else 11)


def test_oscillating_load_holds_enough_for_the_peak() -> None:
    d = Driver(scaling(), current=1)
    for i in range(480):  # 120 s of a 10 s square wave between 14 and 35 in flight
        d.step(in_flight=35 if (i // 20) % 2 else 14)
    settled = d.history[240:]  # after the first minute (one burst, then the stable window)
    assert len(set(settled)) == 1  # never gives back a replica it needs 5 s later
    assert d.current * 10 >= 35  # the peak never queues ...
    assert d.current == 4  # ... and the average (24.5 / 7 per replica) decides the rest


def test_scale_down_waits_for_the_stable_window() -> None:
    d = Driver(scaling(), current=1)
    d.run(5, in_flight=70)
    assert d.current == 10  # burst: 70 in flight cannot fit in 1 replica, sized at once
    d.run(29.5, in_flight=6, since_last_request_s=0.0)
    assert d.current == 10  # the stable window still remembers 10
    decision = d.run(35, in_flight=6, since_last_request_s=0.0)
    assert d.current == 1, decision
    downs = [b for a, b in zip(d.history, d.history[1:], strict=False) if b < a]
    assert downs == sorted(downs, reverse=True)  # steps down, never back up


def test_active_endpoint_keeps_one_replica_until_idle() -> None:
    d = Driver(scaling(idle_timeout_s=60), current=1)
    d.run(5, in_flight=3)
    d.run(40, in_flight=0, since_last_request_s=0.5)  # finished requests keep arriving
    assert d.current == 1


def test_idle_timeout_to_zero_then_cold_start() -> None:
    d = Driver(scaling(idle_timeout_s=20), current=1)
    d.run(2, in_flight=1)
    d.run(19, in_flight=0)
    assert d.current == 1
    decision = d.run(1.5, in_flight=0)
    assert d.current == 0 and "idle" in decision.reason
    cold = d.step(queued=1)
    assert cold.desired == 1 and "cold start" in cold.reason


def test_idle_timeout_to_min() -> None:
    d = Driver(scaling(min_replicas=2, idle_timeout_s=10), current=6)
    d.run(11, since_last_request_s=None)
    assert d.current == 2


def test_idle_clock_uses_gateway_last_request_time() -> None:
    d = Driver(scaling(idle_timeout_s=30), current=1)
    decision = d.step(since_last_request_s=31.0)  # the gateway saw the last request 31 s ago
    assert decision.desired == 0


def test_cold_start_ignores_windows_and_sizes_by_policy() -> None:
    d = Driver(scaling("request-count=1", max_replicas=4), current=0)
    decision = d.step(queued=6)
    assert decision.desired == 4 and "capped" not in decision.reason
    d2 = Driver(scaling(max_replicas=0), current=0)
    assert d2.step(queued=3).desired == 0  # max 0: nothing may start


def test_wake_holds_one_replica_even_with_stale_counts() -> None:
    d = Driver(scaling(idle_timeout_s=30), current=0)
    d.state = note_wake(None, d.now, TUNING)
    assert d.step().desired == 1  # the store still said 0 and the gateway had not counted the request
    d.run(20)
    assert d.current == 1  # the wake counts as traffic for the idle timeout


@pytest.mark.parametrize(
    ("kw", "load", "current", "want"),
    [
        (dict(min_replicas=2, max_replicas=5), 0, 0, 2),  # raised min applies at once
        (dict(min_replicas=0, max_replicas=3), 500, 1, 3),  # capped at max
        (dict(min_replicas=0, max_replicas=3), 0, 7, 3),  # lowered max applies at once
        (dict(min_replicas=4, max_replicas=4), 500, 4, 4),
    ],
)
def test_bounds(kw: dict, load: int, current: int, want: int) -> None:
    d = Driver(scaling(**kw), current=current)
    assert d.step(in_flight=load, since_last_request_s=0.0).desired == want


def test_disabled_endpoint_goes_to_zero_and_forgets() -> None:
    d = Driver(scaling(min_replicas=2), current=3)
    d.enabled = False
    decision = d.step(in_flight=50)
    assert decision.desired == 0 and decision.reason == "endpoint is stopped"


def test_missing_gateway_blocks_scale_down_and_idle() -> None:
    d = Driver(scaling(idle_timeout_s=5), current=4)
    d.run(40, complete=False)
    assert d.current == 4
    d.run(0.5)
    assert d.current < 4


def test_restart_watches_a_full_window_before_scaling_down() -> None:
    d = Driver(scaling(idle_timeout_s=600), current=5)
    d.run(29, in_flight=6, since_last_request_s=0.0)
    assert d.current == 5
    d.run(1.5, in_flight=6, since_last_request_s=0.0)
    assert d.current == 1


def test_queue_delay_breach_starts_replicas_once_while_booting() -> None:
    d = Driver(scaling("queue-delay=2"), current=1)
    ctx_ready = 1
    states = []
    for _ in range(12):  # 3 s of a standing breach while the new replica boots (ready stays 1)
        ctx = ScalingContext(
            endpoint_id="ep-1",
            scaling=d.scaling,
            stats=EndpointStats(in_flight=10, queued=5, oldest_wait_s=3.0),
            current=d.current,
            ready=ctx_ready,
            live=d.current,
        )
        decision, d.state = decide(ctx, d.state, d.now, TUNING)
        d.current = decision.desired
        states.append(decision.desired)
        d.now += TICK
    assert states == [2] * 12
