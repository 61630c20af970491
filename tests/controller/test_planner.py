"""The reconcile plan as a table: inputs -> expected actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from podium.controller.planner import CanaryStats, EndpointInput, ReplicaInput, RolloutInput, backoff_delay, plan
from podium.core.states import ReplicaState as S


def ep(
    target: int = 1,
    *,
    enabled: bool = True,
    deleting: bool = False,
    gen: int = 1,
    failed: bool = False,
    backoff_until: float = 0.0,
) -> EndpointInput:
    return EndpointInput("ep-1", enabled, deleting, target, gen, failed, backoff_until)


def rep(rid: str, state: S, gen: int = 1, created: float = 0.0) -> ReplicaInput:
    return ReplicaInput(rid, state, gen, created)


@pytest.mark.parametrize(
    ("endpoint", "replicas", "start", "drain", "delete"),
    [
        (ep(1), [], 1, (), False),
        (ep(3), [rep("a", S.READY)], 2, (), False),
        (ep(1), [rep("a", S.READY)], 0, (), False),
        (ep(1), [rep("a", S.STARTING)], 0, (), False),
        # scale down drops booting replicas before ready ones, then the newest ready
        (ep(1), [rep("a", S.READY, created=1), rep("b", S.STARTING, created=2)], 0, ("b",), False),
        (ep(1), [rep("a", S.READY, created=1), rep("b", S.READY, created=2)], 0, ("b",), False),
        # stopped endpoints hold nothing
        (ep(2, enabled=False), [rep("a", S.READY)], 0, ("a",), False),
        # deleting: drain, then delete the record once nothing is live
        (ep(1, deleting=True), [rep("a", S.READY)], 0, ("a",), False),
        (ep(1, deleting=True), [rep("a", S.DRAINING)], 0, (), False),
        (ep(1, deleting=True), [rep("a", S.STOPPED), rep("b", S.FAILED)], 0, (), True),
        # unhealthy replicas are replaced
        (ep(1), [rep("a", S.UNHEALTHY)], 1, ("a",), False),
        # a draining replica is not counted: a replacement starts
        (ep(1), [rep("a", S.DRAINING)], 1, (), False),
        # rolling update: old ready replica keeps serving until a new one is ready
        (ep(1, gen=2), [rep("a", S.READY, gen=1)], 1, (), False),
        (ep(1, gen=2), [rep("a", S.READY, gen=1), rep("b", S.STARTING, gen=2)], 0, (), False),
        (ep(1, gen=2), [rep("a", S.READY, gen=1), rep("b", S.READY, gen=2)], 0, ("a",), False),
        (ep(1, gen=2), [rep("a", S.STARTING, gen=1)], 1, ("a",), False),
        # failed endpoints start nothing; backoff delays starts
        (ep(1, failed=True), [], 0, (), False),
        (ep(1, backoff_until=100.0), [], 0, (), False),
        (ep(0), [rep("a", S.READY)], 0, ("a",), False),
    ],
)
def test_plan_table(endpoint, replicas, start, drain, delete) -> None:
    p = plan(endpoint, replicas, now=50.0)
    assert p.start == start
    assert p.drain == drain
    assert p.delete_endpoint == delete


def test_backoff_reports_waiting() -> None:
    p = plan(ep(1, backoff_until=100.0), [], now=99.0)
    assert p.waiting_for_backoff and p.start == 0
    assert plan(ep(1, backoff_until=100.0), [], now=100.0).start == 1


@pytest.mark.parametrize(("failures", "delay"), [(0, 0), (1, 0.5), (2, 1.0), (3, 2.0), (10, 60.0)])
def test_backoff_delay(failures: int, delay: float) -> None:
    assert backoff_delay(failures, 0.5, 60.0) == delay


# --- rollouts (issue 13) -----------------------------------------------------------------------


def roll(target: int, gen: int = 2, failures: int = 0, **rollout: object) -> EndpointInput:
    return EndpointInput("ep-1", True, False, target, gen, False, 0.0, failures, RolloutInput(**rollout))  # type: ignore[arg-type]


R, ST = S.READY, S.STARTING
TWO_OLD = [rep("o1", R, 1, 1.0), rep("o2", R, 1, 2.0)]


@pytest.mark.parametrize(
    ("endpoint", "replicas", "start", "drain"),
    [
        # surge first, 2 replicas, max_surge 1 / max_unavailable 0: one new, then one old leaves per new ready
        (roll(2), TWO_OLD, 1, ()),
        (roll(2), [*TWO_OLD, rep("n1", ST, 2, 3.0)], 0, ()),
        (roll(2), [*TWO_OLD, rep("n1", R, 2, 3.0)], 1, ("o1",)),
        (roll(2), [rep("o2", R, 1, 2.0), rep("n1", R, 2, 3.0), rep("n2", ST, 2, 4.0)], 0, ()),
        (roll(2), [rep("o2", R, 1, 2.0), rep("n1", R, 2, 3.0), rep("n2", R, 2, 4.0)], 0, ("o2",)),
        # max_surge 2: both new at once, the old stay until they are ready
        (roll(2, max_surge=2), TWO_OLD, 2, ()),
        # no surge, one unavailable: an old one leaves first, then its replacement starts
        (roll(2, max_surge=0, max_unavailable=1), TWO_OLD, 1, ("o1",)),
        # no capacity for a surge replica (GPUs): one at a time, as above
        (roll(2, no_surge=True), TWO_OLD, 1, ("o1",)),
        # at min 0 with no replicas, the next start simply uses the new revision
        (roll(0), [], 0, ()),
        (roll(1), [], 1, ()),
        # scaled to zero mid-rollout: everything goes
        (roll(0), [*TWO_OLD, rep("n1", ST, 2, 3.0)], 0, ("n1", "o1", "o2")),
        # an old replica still booting serves nobody: it goes at once
        (roll(1), [rep("o1", ST, 1, 1.0)], 1, ("o1",)),
        # a scaling change alone (same revision) moves nothing old
        (roll(3, gen=1), TWO_OLD, 1, ()),
        # canary 25% of 4: one new replica beside the four old, which all stay until promote
        (roll(4, canary_percent=25), [rep(f"o{i}", R, 1, float(i)) for i in range(4)], 1, ()),
        (roll(4, canary_percent=25), [*(rep(f"o{i}", R, 1, float(i)) for i in range(4)), rep("n", R, 2, 9.0)], 0, ()),
        # canary 50% of 2 with the canary ready: holds (nothing drains, nothing starts)
        (roll(2, canary_percent=50), [*TWO_OLD, rep("n1", R, 2, 3.0)], 0, ()),
    ],
)
def test_rollout_table(endpoint, replicas, start, drain) -> None:
    p = plan(endpoint, replicas, now=50.0)
    assert (p.start, p.drain, p.rollback_to) == (start, drain, None)


def test_rollout_progress_is_reported() -> None:
    p = plan(roll(2), [*TWO_OLD, rep("n1", R, 2, 3.0)], now=50.0)
    assert p.progress == "rolling to revision 2: 1/2 new ready, 1 old serving"
    assert plan(roll(2), [rep("n1", R, 2, 3.0), rep("n2", R, 2, 4.0)], now=50.0).progress is None


@pytest.mark.parametrize(
    ("endpoint", "replicas", "back", "why"),
    [
        # the new revision failed its starts while the old one serves: back to the old one
        (roll(2, failures=3), [*TWO_OLD], 1, "3 failed starts"),
        # not ready by the deadline
        (roll(2, started_at=0.0, deadline_s=10.0), [*TWO_OLD, rep("n1", ST, 2, 3.0)], 1, "not ready within 10s"),
        # canary much worse than the old revision, with enough requests on both sides
        (
            roll(2, canary_percent=50, canary=CanaryStats(40, 10, 40, 0)),
            [*TWO_OLD, rep("n1", R, 2, 3.0)],
            1,
            "canary error rate 25.0% vs 0.0%",
        ),
        # several old revisions: the newest that still serves
        (roll(2, gen=3, failures=5), [rep("o1", R, 1, 1.0), rep("o2", R, 2, 2.0)], 2, "5 failed starts"),
    ],
)
def test_failed_rollout_rolls_back(endpoint, replicas, back, why) -> None:
    p = plan(endpoint, replicas, now=50.0)
    assert p.rollback_to == back and p.start == 0 and p.drain == ()
    assert why in p.reasons[0]


@pytest.mark.parametrize(
    ("endpoint", "replicas"),
    [
        # nothing old serves: no rollback (the endpoint's own failure handling applies)
        (roll(2, failures=5), []),
        (roll(2, failures=5), [rep("o1", ST, 1, 1.0)]),
        # a canary that is ready and waiting for promote is past the deadline, but complete: it holds
        (roll(2, canary_percent=50, started_at=0.0, deadline_s=10.0), [*TWO_OLD, rep("n1", R, 2, 3.0)]),
        # a worse canary with too few requests to judge
        (roll(2, canary_percent=50, canary=CanaryStats(5, 5, 40, 0)), [*TWO_OLD, rep("n1", R, 2, 3.0)]),
        # within the margin
        (roll(2, canary_percent=50, canary=CanaryStats(100, 6, 100, 2)), [*TWO_OLD, rep("n1", R, 2, 3.0)]),
        # done rolling: the deadline no longer matters
        (roll(2, started_at=0.0, deadline_s=10.0), [rep("n1", R, 2, 3.0), rep("n2", R, 2, 4.0)]),
    ],
)
def test_no_rollback(endpoint, replicas) -> None:
    assert plan(endpoint, replicas, now=50.0).rollback_to is None


@pytest.mark.parametrize(
    ("endpoint", "replicas", "start", "refill", "drain"),
    [
        # canary 50% of 2, one old replica ended: the old revision gets a replacement, the canary holds
        (roll(2, canary_percent=50), [rep("o1", R, 1, 1.0), rep("n1", R, 2, 3.0)], 0, 1, ()),
        # ... which boots without being drained as "old and booting"
        (roll(2, canary_percent=50), [rep("o1", R, 1, 1.0), rep("o3", ST, 1, 4.0), rep("n1", R, 2, 3.0)], 0, 0, ()),
        # scaled up to 3 during a 50% canary: 2 new (ceil 1.5) and the old revision back to 3
        (roll(3, canary_percent=50), [*TWO_OLD, rep("n1", R, 2, 3.0)], 1, 1, ()),
        # scaled down to 1: the canary keeps one, the old revision one (the oldest leaves first)
        (roll(1, canary_percent=50), [*TWO_OLD, rep("n1", R, 2, 3.0)], 0, 0, ("o1",)),
        # an older revision's booting replica is not the one measured against: it goes
        (roll(2, gen=3, canary_percent=50), [*TWO_OLD, rep("x", ST, 2, 5.0), rep("n1", R, 3, 3.0)], 0, 0, ("x",)),
    ],
)
def test_a_canary_keeps_the_old_revision_at_the_target(endpoint, replicas, start, refill, drain) -> None:
    p = plan(endpoint, replicas, now=50.0)
    assert (p.start, p.start_stable, p.drain, p.rollback_to) == (start, refill, drain, None)
    assert p.stable == 1


def test_a_canary_refill_waits_for_the_crash_backoff() -> None:
    held = replace(roll(2, canary_percent=50), backoff_until=99.0)
    p = plan(held, [rep("o1", R, 1, 1.0), rep("n1", R, 2, 3.0)], now=50.0)
    assert p.start_stable == 0 and p.waiting_for_backoff
