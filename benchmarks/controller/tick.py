"""The controller's tick at 1, 100 and 1,000 endpoints: time, SQL statements and routes published.

  .venv/bin/python benchmarks/controller/tick.py [--sizes 1,100,1000] [--ticks 20] [--ready]

A real SQLite store (a temp dir), a fake runtime, prober and gateway (tests/controller/fakes.py), so
what is measured is the controller's own work: its queries, planning and route publishing.
Endpoints are idle (min 0) unless --ready (each then holds one ready replica). The numbers are for
steady state: a few ticks settle first, then `--ticks` ticks are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.controller.fakes

from tests.controller.fakes import FakeGateway, FakeProber, FakeRuntime

from podium.controller.loop import Controller
from podium.core.specs import ContainerSource, EndpointSpec, Scaling
from podium.gateway.routes import EndpointRoute
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.settings import ControllerTuning
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store


class CountingGateway(FakeGateway):
    published = 0

    def set_route(self, route: EndpointRoute) -> None:
        self.published += 1
        super().set_route(route)


async def measure(size: int, ticks: int, ready: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        url = sqlite_url(Path(tmp))
        migrate(url)
        store = Store(url)
        statements = [0]

        def count(*_: Any) -> None:
            statements[0] += 1

        event.listen(store.engine.sync_engine, "before_cursor_execute", count)
        gateway = CountingGateway()
        controller = Controller(store, FakeRuntime(), gateway, tuning=ControllerTuning(), prober=FakeProber())
        endpoints = EndpointService(store, controller.hint, SourceValidator(None, "local"))
        n = 1 if ready else 0
        for i in range(size):
            spec = EndpointSpec(
                name=f"ep{i}",
                container=ContainerSource(command="server --port $PORT"),
                scaling=Scaling(min_replicas=n, max_replicas=1),
            )
            await endpoints.create(spec, "container")
        for _ in range(4):
            await controller.tick()
            await asyncio.sleep(0)
        statements[0], gateway.published = 0, 0
        times = []
        for _ in range(ticks):
            t0 = time.perf_counter()
            await controller.tick()
            times.append(time.perf_counter() - t0)
        result = {
            "endpoints": size,
            "tick_ms": statistics.median(times) * 1000,
            "queries_per_tick": statements[0] / ticks,
            "routes_published_per_tick": gateway.published / ticks,
        }
        await store.close()
        return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,100,1000")
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--ready", action="store_true", help="one ready replica per endpoint")
    args = parser.parse_args()
    print("endpoints  tick_ms  queries/tick  routes_published/tick")
    for size in (int(s) for s in args.sizes.split(",")):
        r = await measure(size, args.ticks, args.ready)
        print(
            f"{r['endpoints']:>9}  {r['tick_ms']:>7.2f}  {r['queries_per_tick']:>12.1f}"
            f"  {r['routes_published_per_tick']:>21.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
