"""The api role's `status.engine` source (`RemoteEngine`): one fetch per ttl however many requests read
at once, nulls (not stale numbers) while the controller cannot be reached, and a payload it cannot read
is no status rather than a 500."""

from __future__ import annotations

import asyncio
from typing import Any

from podium.core.stats import EngineLoad
from podium.roles.internal import RemoteEngine

PAYLOAD = {
    "replicas": {"r1": {"engine": "vllm", "waiting": 3.0, "running": 1.0, "kv_cache_usage": 0.5, "scraped_at": 1.0}},
    "endpoints": {"e1": {"replicas": 1, "waiting": 3.0, "running": 1.0, "kv_cache_avg": 0.5, "kv_cache_max": 0.5}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Controller:
    """Answers like GET /internal/v0/engine, slowly enough that concurrent readers overlap."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | None = PAYLOAD
        self.calls = 0

    async def fetch(self) -> dict[str, Any] | None:
        self.calls += 1
        await asyncio.sleep(0.01)
        return self.answer


async def test_concurrent_reads_share_one_fetch_per_ttl() -> None:
    clock, ctl = Clock(), Controller()
    engine = RemoteEngine(ctl.fetch, ttl_s=1.0, clock=clock)
    await asyncio.gather(*(engine.refresh() for _ in range(20)))
    assert ctl.calls == 1
    assert engine.endpoint_engine("e1") == EngineLoad(1, 3.0, 1.0, 0.5, 0.5)
    assert engine.replica_engine("r1") == PAYLOAD["replicas"]["r1"]
    assert engine.endpoint_engine("other") is None and engine.replica_engine("other") is None
    clock.now += 0.9
    await engine.refresh()
    assert ctl.calls == 1  # within the ttl: cached
    clock.now += 0.2
    await engine.refresh()
    assert ctl.calls == 2


async def test_an_unreachable_controller_shows_null_not_stale_numbers() -> None:
    clock, ctl = Clock(), Controller()
    engine = RemoteEngine(ctl.fetch, ttl_s=1.0, clock=clock)
    await engine.refresh()
    assert engine.endpoint_engine("e1") is not None
    ctl.answer = None  # RemoteController.engine() answers None when the GET fails
    clock.now += 2
    await engine.refresh()
    assert engine.endpoint_engine("e1") is None and engine.replica_engine("r1") is None
    await engine.refresh()
    assert ctl.calls == 2  # a failure is cached too: a dead controller is not asked per request
    assert engine.last_decision("e1") is None


async def test_a_payload_it_cannot_read_is_no_status() -> None:
    ctl = Controller()
    ctl.answer = {"endpoints": {"e1": {"replicas": 1, "unknown_field": 2}}, "replicas": {"r1": "not a dict"}}
    engine = RemoteEngine(ctl.fetch, clock=Clock())
    await engine.refresh()
    assert engine.endpoint_engine("e1") is None and engine.replica_engine("r1") is None
