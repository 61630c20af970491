"""The loop with an in-memory store and fake gateways: aggregation, isolation, wake-ups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping

import pytest

from podium.autoscaler.loop import Autoscaler, ScalingTarget
from podium.core.specs import ScalePolicy, Scaling
from podium.core.stats import EndpointStats


class FakeStore:
    def __init__(self, *targets: ScalingTarget) -> None:
        self.targets = {t.endpoint_id: t for t in targets}
        self.writes: list[tuple[str, int, str]] = []
        self.fail_for: set[str] = set()
        self.reads = 0

    async def scaling_targets(self) -> list[ScalingTarget]:
        self.reads += 1
        return list(self.targets.values())

    async def set_desired(self, endpoint_id: str, desired: int, reason: str) -> None:
        if endpoint_id in self.fail_for:
            raise RuntimeError("database is locked")
        self.writes.append((endpoint_id, desired, reason))
        t = self.targets[endpoint_id]
        self.targets[endpoint_id] = ScalingTarget(
            t.endpoint_id, t.scaling, t.enabled, desired, t.live_replicas, t.ready_replicas
        )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def target(endpoint_id: str, desired: int = 1, *, enabled: bool = True, **kw: object) -> ScalingTarget:
    fields: dict[str, object] = dict(min_replicas=0, max_replicas=10, idle_timeout_s=300)
    fields["scale_policy"] = ScalePolicy.parse(str(kw.pop("policy", "request-count=5")))
    fields.update(kw)
    return ScalingTarget(endpoint_id, Scaling.model_validate(fields), enabled, desired, desired, desired)


def source(stats: Mapping[str, EndpointStats]):  # type: ignore[no-untyped-def]
    async def read() -> Mapping[str, EndpointStats]:
        return stats

    return read


async def failing_source() -> Mapping[str, EndpointStats]:
    raise ConnectionError("gateway 3 is down")


def make(store: FakeStore, *sources, clock: Clock | None = None) -> tuple[Autoscaler, list[float]]:  # type: ignore[no-untyped-def]
    hints: list[float] = []
    scaler = Autoscaler(
        store, list(sources), lambda: hints.append(time.perf_counter()), clock=clock or Clock(), wall=lambda: 5000.0
    )
    return scaler, hints


async def test_two_gateways_are_aggregated() -> None:
    store = FakeStore(target("ep-a"))
    gw1 = source({"ep-a": EndpointStats(in_flight=5, last_request_at=4999.0)})
    gw2 = source({"ep-a": EndpointStats(in_flight=5, queued=6, oldest_wait_s=0.4)})
    scaler, hints = make(store, gw1, gw2)
    await scaler.tick()
    assert store.writes == [("ep-a", 4, store.writes[0][2])]  # ceil(16 / 5): both gateways counted
    assert "16 in flight or queued" in store.writes[0][2]
    assert len(hints) == 1
    decision = scaler.last_decision("ep-a")
    assert decision is not None and decision.desired == 4


async def test_unchanged_count_writes_nothing_and_does_not_wake_the_controller() -> None:
    store = FakeStore(target("ep-a", desired=2))
    scaler, hints = make(store, source({"ep-a": EndpointStats(in_flight=8)}))
    await scaler.tick()
    assert store.writes == [] and hints == []
    assert scaler.last_decision("ep-a") is not None


async def test_one_failing_endpoint_does_not_stop_the_others() -> None:
    store = FakeStore(target("ep-bad"), target("ep-good"))
    store.fail_for.add("ep-bad")
    stats = {"ep-bad": EndpointStats(in_flight=50), "ep-good": EndpointStats(in_flight=50)}
    scaler, hints = make(store, source(stats))
    await scaler.tick()
    assert [w[:2] for w in store.writes] == [("ep-good", 10)]
    assert len(hints) == 1


async def test_a_missing_gateway_still_scales_up_but_never_down() -> None:
    clock = Clock()
    store = FakeStore(target("ep-up"), target("ep-down", desired=4, idle_timeout_s=1))
    gw = source({"ep-up": EndpointStats(in_flight=12)})
    scaler, _ = make(store, gw, failing_source, clock=clock)
    for _ in range(200):  # 50 s: past the stable window and the idle timeout
        await scaler.tick()
        clock.now += 0.25
    assert store.targets["ep-up"].desired_replicas == 3
    assert store.targets["ep-down"].desired_replicas == 4
    decision = scaler.last_decision("ep-down")
    assert decision is not None and "did not report" in decision.reason


async def test_a_hanging_or_broken_gateway_does_not_hold_the_tick() -> None:
    async def hangs() -> Mapping[str, EndpointStats]:
        await asyncio.sleep(60)
        return {}

    def breaks() -> Awaitable[Mapping[str, EndpointStats]]:
        raise RuntimeError("not even a coroutine")

    store = FakeStore(target("ep-a"))
    scaler = Autoscaler(store, [hangs, breaks, source({"ep-a": EndpointStats(in_flight=12)})], lambda: None)
    started = time.perf_counter()
    await scaler.tick()
    assert time.perf_counter() - started < 1.0  # bounded by two ticks (0.5 s)
    assert store.targets["ep-a"].desired_replicas == 3  # the gateway that answered still counts


async def test_disabled_endpoint_gets_zero_once_and_is_then_left_alone() -> None:
    store = FakeStore(target("ep-a", desired=3, enabled=False, min_replicas=2))
    scaler, hints = make(store, source({"ep-a": EndpointStats(queued=10)}))
    await scaler.tick()
    await scaler.tick()
    assert [w[:2] for w in store.writes] == [("ep-a", 0)]
    assert store.writes[0][2] == "endpoint is stopped"
    assert len(hints) == 1


async def test_deleted_endpoints_are_forgotten() -> None:
    store = FakeStore(target("ep-a"))
    scaler, _ = make(store, source({}))
    await scaler.tick()
    assert scaler.last_decision("ep-a") is not None
    del store.targets["ep-a"]
    await scaler.tick()
    assert scaler.last_decision("ep-a") is None


async def test_wake_returns_at_once_writes_once_and_hints() -> None:
    store = FakeStore(target("ep-a", desired=0))
    scaler, hints = make(store, source({}))
    await scaler.tick()  # learns the endpoint
    started = time.perf_counter()
    for _ in range(100):
        scaler.wake("ep-a")
    assert time.perf_counter() - started < 0.05  # no awaiting inside wake
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [w[:2] for w in store.writes] == [("ep-a", 1)]
    assert len(hints) == 1
    scaler.wake("ep-a")  # already asked for
    await asyncio.sleep(0)
    assert len(store.writes) == 1


async def test_wake_of_an_unknown_endpoint_reads_the_store() -> None:
    store = FakeStore(target("ep-new", desired=0))
    scaler, hints = make(store, source({}))
    scaler.wake("ep-new")
    for _ in range(5):
        await asyncio.sleep(0)
    assert [w[:2] for w in store.writes] == [("ep-new", 1)] and len(hints) == 1


@pytest.mark.parametrize(
    "tgt",
    [target("ep-a", desired=0, enabled=False), target("ep-a", desired=0, max_replicas=0)],
    ids=["stopped", "max-zero"],
)
async def test_wake_is_refused_where_no_replica_may_run(tgt: ScalingTarget) -> None:
    store = FakeStore(tgt)
    scaler, hints = make(store, source({}))
    scaler.wake("ep-a")
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.writes == [] and hints == []


async def test_tick_right_after_wake_does_not_undo_it() -> None:
    clock = Clock()
    store = FakeStore(target("ep-a", desired=0, idle_timeout_s=60))
    scaler, _ = make(store, source({}), clock=clock)
    await scaler.tick()
    scaler.wake("ep-a")
    for _ in range(40):  # 10 s in which the gateway has not yet counted the held request
        await scaler.tick()
        clock.now += 0.25
    assert store.targets["ep-a"].desired_replicas == 1
    assert [w[:2] for w in store.writes] == [("ep-a", 1)]


async def test_run_ticks_until_stopped() -> None:
    store = FakeStore(target("ep-a"))
    scaler = Autoscaler(store, [source({})], lambda: None, interval_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(scaler.run(stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 1.0)
    assert store.reads >= 3
