"""The gateway side of split roles against a controller that is down: one warning per outage, the last
routes kept; and a snapshot from a new epoch replaces everything (real sockets, a stub controller)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web

from podium.core.stats import EndpointStats
from podium.gateway.routes import EndpointRoute, PlatformToken
from podium.roles.follower import RouteFollower
from tests.conftest import free_port


class Recorder:
    def __init__(self) -> None:
        self.routes: dict[str, EndpointRoute] = {}
        self.shares: dict[str, float] = {}

    def set_route(self, route: EndpointRoute) -> None:
        self.routes[route.endpoint_id] = route

    def remove_route(self, endpoint_id: str) -> None:
        self.routes.pop(endpoint_id, None)

    def set_platform_tokens(self, tokens: list[PlatformToken]) -> None:
        pass

    def stats(self) -> dict[str, EndpointStats]:
        return {}

    def replica_in_flight(self, replica_id: str) -> int:
        return 0

    def token_demand(self) -> dict[str, float]:
        return {}

    def set_rate_shares(self, shares: Mapping[str, float]) -> None:
        self.shares = dict(shares)


async def test_a_controller_outage_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    follower = RouteFollower(f"http://127.0.0.1:{free_port()}", "admin", "http://gw", retry_s=0.02)
    follower.attach(Recorder())
    stop = asyncio.Event()

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "following routes" in r.getMessage()]

    with caplog.at_level(logging.DEBUG, "podium.roles"):
        task = asyncio.create_task(follower.run(stop))
        deadline = asyncio.get_running_loop().time() + 5
        while len(failures()) < 10:  # ten failed polls in a row
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [r.levelno for r in failures()].count(logging.WARNING) == 1


async def test_the_follower_sends_its_epoch_and_applies_shares() -> None:
    seen: list[dict[str, Any]] = []
    snapshot = {"epoch": "e1", "version": 3, "routes": [], "tokens": [], "rate_shares": {"a" * 64: 4.5}}

    async def routes(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response(snapshot)

    app = web.Application()
    app.router.add_get("/internal/v0/routes", routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    recorder = Recorder()
    follower = RouteFollower(f"http://127.0.0.1:{port}", "admin", "http://gw")
    follower.attach(recorder)
    try:
        await follower.poll_once()
        await follower.poll_once()
    finally:
        await follower.close()
        await runner.cleanup()
    assert seen[0]["epoch"] == "" and seen[1] == {
        "since": "3",
        "epoch": "e1",
        "gateway": "http://gw",
        "timeout": "25.0",
    }
    assert recorder.shares == {"a" * 64: 4.5}
