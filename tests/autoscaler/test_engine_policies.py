"""kv-cache=S and engine-queue=N: table-driven, pure, with the engine load as the controller reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from podium.autoscaler.context import ScalingContext
from podium.autoscaler.decide import decide
from podium.autoscaler.policies import EngineQueuePolicy, KvCachePolicy, LoadSignals, policy_for
from podium.cli.spec_flags import parse_policy
from podium.core.specs import ScalePolicy, ScalePolicyKind, Scaling
from podium.core.stats import EndpointStats, EngineLoad
from tests.api.conftest import _client


def ctx(
    engine: EngineLoad | None, *, current: int = 2, ready: int = 2, in_flight: int = 0, policy: str = "kv-cache=0.8"
) -> ScalingContext:
    return ScalingContext(
        endpoint_id="ep-1",
        scaling=Scaling(min_replicas=0, max_replicas=10, max_concurrency=8, scale_policy=ScalePolicy.parse(policy)),
        stats=EndpointStats(in_flight=in_flight),
        current=current,
        ready=ready,
        live=current,
        engine=engine,
    )


def kv(avg: float, replicas: int = 2) -> EngineLoad:
    return EngineLoad(replicas=replicas, waiting=0, running=1, kv_cache_avg=avg, kv_cache_max=avg)


@pytest.mark.parametrize(
    ("target", "ready", "avg", "want", "hold"),
    [
        (0.8, 2, 0.0, 0, 0),  # empty caches: no engine work (the wrapper keeps one while active)
        (0.8, 2, 0.8, 2, 3),  # exactly at target; the 10% band holds a third if one was there
        (0.8, 2, 0.81, 3, 3),  # just over
        (0.8, 2, 0.99, 3, 3),
        (0.8, 1, 1.0, 2, 2),
        (0.5, 4, 0.9, 8, 8),  # 3.6 caches of work at 0.5 each
        (0.8, 3, 0.2, 1, 1),  # 0.6 of one cache: scale down to one
    ],
)
def test_kv_cache_sizes_for_average_use(target: float, ready: int, avg: float, want: int, hold: int) -> None:
    rec = KvCachePolicy(target).decide(ctx(kv(avg, ready), ready=ready), LoadSignals.steady(0), 0.0)
    assert (rec.replicas, rec.keep) == (want, hold), rec.reason
    assert "kv-cache" in rec.reason


def test_kv_cache_does_not_grow_while_new_replicas_boot() -> None:
    # 2 ready at 95%, 3 desired already (one booting): still 3, not 4 on every tick
    rec = KvCachePolicy(0.8).decide(ctx(kv(0.95), current=3, ready=2), LoadSignals.steady(4), 0.0)
    assert rec.replicas == 3


@pytest.mark.parametrize("engine", [None, EngineLoad(replicas=1, waiting=3, running=1)])
def test_kv_cache_without_engine_metrics_falls_back_to_concurrency(engine: EngineLoad | None) -> None:
    rec = KvCachePolicy(0.8).decide(ctx(engine, in_flight=12), LoadSignals.steady(12), 0.0)
    assert rec.replicas == 3  # 12 in flight / (0.7 x 8) per replica
    assert "no engine metrics" in rec.reason


@pytest.mark.parametrize(
    ("n", "ready", "current", "waiting", "want"),
    [
        (4, 2, 2, 0, 0),  # nothing waits and nothing is in flight: the wrapper keeps the floor
        (4, 2, 2, 8, 2),  # exactly 4 per replica: keep
        (4, 2, 2, 9, 3),  # one over: one more
        (4, 2, 2, 20, 5),  # 12 over at 4 each: 3 more
        (4, 1, 1, 100, 25),  # a long queue: sized for it at once
        (4, 2, 4, 9, 4),  # two already booting: no more asked for
        (1, 1, 1, 2, 2),
    ],
)
def test_engine_queue(n: float, ready: int, current: int, waiting: float, want: int) -> None:
    engine = EngineLoad(replicas=ready, waiting=waiting, running=ready * 4)
    c = ctx(engine, current=current, ready=ready, policy=f"engine-queue={n:g}")
    rec = EngineQueuePolicy(n).decide(c, LoadSignals.steady(0), 0.0)
    assert rec.replicas == want, rec.reason
    assert "engine-queue" in rec.reason


def test_engine_queue_without_queue_sizes_for_in_flight_work() -> None:
    engine = EngineLoad(replicas=3, waiting=0, running=10)
    rec = EngineQueuePolicy(4).decide(
        ctx(engine, current=3, ready=3, policy="engine-queue=4"), LoadSignals.steady(10), 0
    )
    assert rec.replicas == 2  # 10 in flight fit 2 replicas of 8 slots at 90%


def test_engine_queue_without_engine_metrics_falls_back() -> None:
    rec = EngineQueuePolicy(4).decide(ctx(None, in_flight=1, policy="engine-queue=4"), LoadSignals.steady(1), 0.0)
    assert rec.replicas == 1 and "no engine metrics" in rec.reason


def test_policy_for_and_parse() -> None:
    assert policy_for(ScalePolicy.parse("kv-cache=0.8")) == KvCachePolicy(0.8)
    assert policy_for(ScalePolicy.parse("engine-queue=3")) == EngineQueuePolicy(3)
    assert ScalePolicy.parse("engine-queue=3").kind is ScalePolicyKind.ENGINE_QUEUE
    assert str(ScalePolicy.parse("kv-cache=0.8")) == "kv-cache=0.8"
    with pytest.raises(ValueError, match="kv-cache"):
        ScalePolicy.parse("kv-cache=80")
    with pytest.raises(ValueError):
        ScalePolicy.parse("engine-queue=0")


def test_wrapper_scales_out_on_engine_queue_at_once_and_caps_at_max() -> None:
    engine = EngineLoad(replicas=1, waiting=50, running=4)
    decision, _ = decide(ctx(engine, current=1, ready=1, in_flight=4, policy="engine-queue=2"), None, 100.0)
    assert decision.desired == 10  # 1 + ceil(48 / 2) = 25, capped at max_replicas
    assert "engine-queue" in decision.reason


def test_cli_flag_takes_the_engine_policies() -> None:
    assert parse_policy("kv-cache=0.8") == {"kind": "kv-cache", "value": 0.8}
    assert parse_policy("engine-queue=4") == {"kind": "engine-queue", "value": 4.0}
    for bad in ("kv-cache=1.5", "engine-queue=-1", "kv-cash=0.8"):
        with pytest.raises(typer.Exit):
            parse_policy(bad)


async def test_api_answers_422_naming_the_field(tmp_path: Path) -> None:
    async for client, _, _ in _client(tmp_path, None):
        body = {
            "name": "e",
            "container": {"command": "x"},
            "scaling": {"scale_policy": {"kind": "kv-cache", "value": 80}},
        }
        r = await client.post("/v0/endpoints", json=body)
        assert r.status_code == 422 and "scaling.scale_policy" in r.text, r.text
        body["scaling"] = {"scale_policy": {"kind": "engine-queue", "value": 3}}
        assert (await client.post("/v0/endpoints", json=body)).status_code == 201
