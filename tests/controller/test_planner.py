"""The reconcile plan as a table: inputs -> expected actions."""

from __future__ import annotations

import pytest

from podium.controller.planner import EndpointInput, ReplicaInput, backoff_delay, plan
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
