"""How fast the autoscaler acts, measured on the real loop (not a timed test: numbers vary by box).

1. breach -> hint: a queue-delay breach appears in a gateway's stats at a random moment; time
   until `set_desired` has written the new count and `on_change` (the controller's wake-up
   hint) has been called. The controller starts a replica on that hint, so this is Podium's
   share of "breach -> new replica started" (budget 1 s).
2. wake -> hint: a request at zero replicas calls `Autoscaler.wake`; time until the write is
   done and `on_change` is called (budget 50 ms), with the endpoint already known from a tick
   (the normal case) and unknown (first wake after a restart: one store read more).

Both run against the in-memory store and against the real SQLite store (`StoreScalingAdapter`,
as `podium up` wires it) with 50 endpoints in the database.

    .venv/bin/python benchmarks/autoscaler/latency.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from podium.autoscaler import Autoscaler, ScalingStore, ScalingTarget
from podium.core.specs import ContainerSource, EndpointSpec, ScalePolicy, Scaling
from podium.core.stats import EndpointStats

ENDPOINTS = 50


class MemoryStore:
    def __init__(self, targets: list[ScalingTarget]) -> None:
        self.targets = {t.endpoint_id: t for t in targets}

    async def scaling_targets(self) -> list[ScalingTarget]:
        return list(self.targets.values())

    async def set_desired(self, endpoint_id: str, desired: int, reason: str) -> None:
        t = self.targets[endpoint_id]
        self.targets[endpoint_id] = ScalingTarget(
            t.endpoint_id, t.scaling, t.enabled, desired, t.live_replicas, t.ready_replicas
        )


def scaling() -> Scaling:
    return Scaling(
        min_replicas=0,
        max_replicas=4,
        idle_timeout_s=300,
        max_concurrency=4,
        scale_policy=ScalePolicy.parse("queue-delay=2"),
    )


async def memory_store() -> tuple[ScalingStore, list[str], Callable[[], Awaitable[None]]]:
    ids = [f"ep-{i:03d}" for i in range(ENDPOINTS)]
    store = MemoryStore([ScalingTarget(i, scaling(), True, 1, 1, 1) for i in ids])

    async def close() -> None:
        return None

    return store, ids, close


async def sqlite_store(data_dir: Path) -> tuple[ScalingStore, list[str], Callable[[], Awaitable[None]]]:
    from podium.services.endpoints import EndpointService
    from podium.services.scaling import StoreScalingAdapter
    from podium.store.db import migrate, sqlite_url
    from podium.store.repos import Store

    url = sqlite_url(data_dir)
    await asyncio.to_thread(migrate, url)
    store = Store(url)
    service = EndpointService(store, lambda *_: None, lambda _spec: None)
    ids = []
    for i in range(ENDPOINTS):
        spec = EndpointSpec(name=f"bench-{i}", container=ContainerSource(command="true"), scaling=scaling())
        ids.append((await service.create(spec, "container")).record.row.id)
    adapter = StoreScalingAdapter(store)
    for endpoint_id in ids:
        await adapter.set_desired(endpoint_id, 1, "bench")
    return adapter, ids, store.close


class Stats:
    """A gateway whose numbers the benchmark changes at will."""

    def __init__(self) -> None:
        self.now: dict[str, EndpointStats] = {}

    async def __call__(self) -> Mapping[str, EndpointStats]:
        return dict(self.now)


async def breach_to_hint(store: ScalingStore, ids: list[str], rounds: int) -> list[float]:
    stats = Stats()
    hinted = asyncio.Event()
    scaler = Autoscaler(store, [stats], hinted.set)
    stop = asyncio.Event()
    task = asyncio.create_task(scaler.run(stop))
    out = []
    try:
        for n in range(rounds):
            endpoint_id = ids[n % len(ids)]
            await asyncio.sleep(random.uniform(0.3, 0.6))  # a random phase against the tick
            hinted.clear()
            started = time.perf_counter()
            # 12 queued for 2.5 s > 2 s: three more replicas' worth whether or not the store counts
            # the current one as ready (the SQLite store has no replica rows here).
            stats.now = {endpoint_id: EndpointStats(in_flight=4, queued=12, oldest_wait_s=2.5)}
            await asyncio.wait_for(hinted.wait(), 5)
            out.append(time.perf_counter() - started)
            stats.now = {}
            await store.set_desired(endpoint_id, 1, "bench: reset")
    finally:
        stop.set()
        await task
    return out


async def wake_to_hint(store: ScalingStore, ids: list[str], rounds: int, *, known: bool) -> list[float]:
    out = []
    for n in range(rounds):
        endpoint_id = ids[n % len(ids)]
        await store.set_desired(endpoint_id, 0, "bench: idle")
        hinted = asyncio.Event()
        scaler = Autoscaler(store, [Stats()], hinted.set)
        if known:
            await scaler.tick()  # the loop has seen the endpoint at 0 (the usual state before a wake)
        started = time.perf_counter()
        scaler.wake(endpoint_id)
        returned = time.perf_counter() - started
        assert returned < 0.005, returned
        await asyncio.wait_for(hinted.wait(), 5)
        out.append(time.perf_counter() - started)
        await store.set_desired(endpoint_id, 1, "bench")
    return out


async def tick_cost(store: ScalingStore, ids: list[str], rounds: int) -> list[float]:
    """One tick that changes nothing: the steady cost of watching every endpoint."""
    stats = Stats()
    stats.now = {i: EndpointStats(in_flight=2, last_request_at=time.time()) for i in ids}
    scaler = Autoscaler(store, [stats], lambda: None)
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        await scaler.tick()
        out.append(time.perf_counter() - started)
    return out


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"{name:42} n={len(ms):3d}  p50 {statistics.median(ms):7.2f} ms  p95 {p95:7.2f} ms  max {ms[-1]:7.2f} ms"


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in (("memory", memory_store), ("sqlite", lambda: sqlite_store(Path(tmp)))):
            store, ids, close = await make()
            try:
                print(summary(f"{label}: one tick, {ENDPOINTS} endpoints", await tick_cost(store, ids, rounds)))
                print(summary(f"{label}: queue-delay breach -> hint", await breach_to_hint(store, ids, rounds)))
                print(
                    summary(
                        f"{label}: wake -> hint (known endpoint)", await wake_to_hint(store, ids, rounds, known=True)
                    )
                )
                print(
                    summary(
                        f"{label}: wake -> hint (first after restart)",
                        await wake_to_hint(store, ids, rounds, known=False),
                    )
                )
            finally:
                await close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="autoscaler reaction times")
    parser.add_argument("--rounds", type=int, default=40)
    asyncio.run(main(parser.parse_args().rounds))
