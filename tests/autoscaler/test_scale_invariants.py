"""Invariants of the wrapper under arbitrary load, whatever the policy (property-based)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from podium.autoscaler.context import ScalingContext, Tuning
from podium.autoscaler.decide import ScalerState, decide
from podium.core.specs import ScalePolicy, Scaling
from podium.core.stats import EndpointStats

TICK = 0.25
TUNING = Tuning(burst_window_s=1.0, stable_window_s=5.0)  # short, so traces cross it often

policies = st.sampled_from(["concurrency=0.7", "concurrency=1", "request-count=3", "queue-delay=0.5"])
bounds = st.tuples(st.integers(0, 3), st.integers(0, 6)).map(lambda t: (t[0], max(t[0], t[1])))
# A tick's traffic: (in_flight, queued, oldest wait); held for a few ticks so windows fill.
ticks = st.tuples(st.integers(0, 40), st.integers(0, 20), st.floats(0, 3), st.integers(1, 12))


@settings(max_examples=150, deadline=None)
@given(policies, bounds, st.floats(0, 8), st.lists(ticks, min_size=1, max_size=25), st.integers(0, 6))
def test_bounds_cold_start_and_no_quick_scale_down(
    policy: str, lohi: tuple[int, int], idle_s: float, trace: list, start: int
) -> None:
    lo, hi = lohi
    scaling = Scaling(
        min_replicas=lo,
        max_replicas=hi,
        idle_timeout_s=idle_s,
        max_concurrency=4,
        scale_policy=ScalePolicy.parse(policy),
    )
    current, now = start, 0.0
    state: ScalerState | None = None
    last_up = -1e9
    for in_flight, queued, wait, repeat in trace:
        for _ in range(repeat):
            stats = EndpointStats(in_flight=in_flight, queued=queued, oldest_wait_s=wait if queued else 0.0)
            ctx = ScalingContext("ep", scaling, stats, current=current, ready=current, live=current)
            decision, state = decide(ctx, state, now, TUNING)
            d = decision.desired
            assert lo <= d <= hi, decision
            if current == 0 and (in_flight or queued) and hi >= 1:
                assert d >= 1, decision  # cold start is never held back
            if d > current:
                last_up = now
            elif d < current and current <= hi:
                # Only idleness (or a lowered max) may undo a scale-up inside the stable window.
                assert decision.reason.startswith("idle") or now - last_up >= TUNING.stable_window_s, decision
            current = d
            now += TICK


@settings(max_examples=50, deadline=None)
@given(policies, bounds, st.lists(ticks, min_size=1, max_size=10))
def test_stopped_endpoint_is_always_zero(policy: str, lohi: tuple[int, int], trace: list) -> None:
    scaling = Scaling(min_replicas=lohi[0], max_replicas=lohi[1], scale_policy=ScalePolicy.parse(policy))
    state: ScalerState | None = None
    for n, (in_flight, queued, wait, _) in enumerate(trace):
        stats = EndpointStats(in_flight=in_flight, queued=queued, oldest_wait_s=wait)
        ctx = ScalingContext("ep", scaling, stats, current=n % 3, enabled=False)
        decision, state = decide(ctx, state, n * TICK, TUNING)
        assert decision.desired == 0
