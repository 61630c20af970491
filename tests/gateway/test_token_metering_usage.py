"""Token totals from the gateways reach the store and `GET /v0/usage` / `podium usage`: what grew is
booked once, across a controller restart, a gateway restart and a re-created endpoint; the store's
upsert on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from podium.cli.usage import usage_tables
from podium.core.specs import ContainerSource, EndpointSpec
from podium.gateway.app import Gateway
from podium.roles.follower import RouteFollower
from podium.roles.routebook import RouteBook
from podium.services.token_meter import TokenMeter, local_usage
from podium.services.usage import token_store
from podium.store.db import migrate
from podium.store.repos import Store
from podium.store.token_usage import TokenDelta, TokenUsageStore
from tests.api.conftest import _client
from tests.conftest import free_port
from tests.gateway.conftest import make_route
from tests.store.postgres import postgres_server

HOUR = 3600.0


class Source:
    """A gateway's running totals, as Gateway.token_usage() reports them."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.totals: dict[tuple[str, str], tuple[int, int]] = {}

    def __call__(self) -> dict[str, Any]:
        usage = [
            {"endpoint_id": e, "caller": c, "prompt_tokens": p, "completion_tokens": o}
            for (e, c), (p, o) in sorted(self.totals.items())
        ]
        return {"instance": self.instance, "usage": usage}


async def totals(
    store: TokenUsageStore, since: float = 0, until: float = 1e12
) -> dict[tuple[str, str], tuple[int, int]]:
    return {(t.endpoint_id, t.caller): (t.prompt_tokens, t.completion_tokens) for t in await store.totals(since, until)}


async def test_meter_books_growth_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    migrate(url)
    store = Store(url)
    tokens = token_store(store)
    clock = [10 * HOUR + 5]
    gw = Source("gw-a")
    meter = TokenMeter(tokens, [local_usage(gw)], wall=lambda: clock[0])
    gw.totals = {("ep-1", "tok-1"): (100, 10), ("ep-1", "anonymous"): (5, 1)}
    assert await meter.collect() == 2
    assert await meter.collect() == 0  # nothing grew
    gw.totals[("ep-1", "tok-1")] = (150, 30)
    clock[0] += HOUR  # the next hour
    assert await meter.collect() == 1
    assert await totals(tokens) == {("ep-1", "tok-1"): (150, 30), ("ep-1", "anonymous"): (5, 1)}
    assert await totals(tokens, since=11 * HOUR) == {("ep-1", "tok-1"): (50, 20)}  # that hour only
    assert await totals(tokens, until=11 * HOUR) == {("ep-1", "tok-1"): (100, 10), ("ep-1", "anonymous"): (5, 1)}

    # the controller restarts: it learns where it stood from the store, books only what is new
    again = TokenMeter(tokens, [local_usage(gw)], wall=lambda: clock[0])
    gw.totals[("ep-1", "tok-1")] = (160, 31)
    assert await again.collect() == 1
    # the endpoint was re-created on that gateway: its totals start again from zero
    gw.totals[("ep-1", "anonymous")] = (2, 2)
    assert await again.collect() == 1
    # a restarted gateway (new instance) counts from zero again
    gw2 = Source("gw-b")
    gw2.totals = {("ep-1", "tok-1"): (7, 7)}
    again.sources.append(local_usage(gw2))
    assert await again.collect() == 1
    assert await totals(tokens) == {("ep-1", "tok-1"): (167, 38), ("ep-1", "anonymous"): (7, 3)}
    await store.close()


async def test_usage_api_and_cli_report_tokens(tmp_path: Path) -> None:
    async for client, store, _ in _client(tmp_path, None):
        spec = EndpointSpec(name="chat", container=ContainerSource(command="x"))
        r = await client.post("/v0/endpoints", json=spec.model_dump(mode="json", exclude_none=True))
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        tok = (await client.post("/v0/tokens", json={"name": "team-a", "scopes": ["inference"]})).json()
        deltas = [TokenDelta("gw", eid, tok["id"], 120, 30), TokenDelta("gw", eid, "anonymous", 5, 1)]
        await token_store(store).add(deltas, at=1_000_000.0)
        data = (await client.get("/v0/usage")).json()
        assert (data["prompt_tokens"], data["completion_tokens"]) == (125, 31)
        [ep] = data["endpoints"]
        assert (ep["endpoint_id"], ep["prompt_tokens"], ep["completion_tokens"]) == (eid, 125, 31)
        assert {(t["token_id"], t["token_name"], t["prompt_tokens"]) for t in data["tokens"]} == {
            (tok["id"], "team-a", 120),
            ("anonymous", "anonymous", 5),
        }
        assert (await client.get("/v0/usage", params={"since": 2_000_000})).json()["tokens"] == []
        assert (await client.get("/v0/usage", params={"endpoint_id": "chat"})).json()["prompt_tokens"] == 125
        table = usage_tables(data)
        assert "PROMPT-TOKENS" in table and "team-a" in table and "125" in table
        unauth = await client.get("/v0/usage", headers={"Authorization": "Bearer nope"})
        assert unauth.status_code == 401


async def test_upsert_adds_on_postgres() -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        store = Store(url)
        tokens = token_store(store)
        assert tokens.postgres
        await tokens.add([TokenDelta("gw", "ep-1", "tok-1", 3, 4)], at=HOUR * 5)
        await tokens.add([TokenDelta("gw", "ep-1", "tok-1", 10, 20), TokenDelta("gw", "ep-2", "x", 1, 1)], HOUR * 5)
        assert await totals(tokens) == {("ep-1", "tok-1"): (13, 24), ("ep-2", "x"): (1, 1)}
        assert await tokens.booked("gw") == {("ep-1", "tok-1"): (13, 24), ("ep-2", "x"): (1, 1)}
        await store.close()


async def test_remote_gateway_totals_ride_on_the_stats_pull(tmp_path: Path) -> None:
    """A gateway-role process: its follower's stats carry the token totals; the controller's route book
    keeps them and the meter books them."""
    gateway = Gateway(wake=lambda _e: None)
    gateway.set_route(make_route([]))
    gateway._metrics["ep-test"].add_usage((40, 8), "tok-9")
    follower = RouteFollower("http://127.0.0.1:9", "admin", "http://gw")
    follower.attach(gateway)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(follower.stats())

    app = web.Application()
    app.router.add_get("/internal/v0/stats", stats)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    book = RouteBook("admin", primed=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    migrate(url)
    store = Store(url)
    try:
        book.register(f"http://127.0.0.1:{port}")
        assert "ep-test" in await book.stats()
        [report] = await book.token_usage()
        assert report["instance"] == gateway.instance
        meter = TokenMeter(token_store(store), [book.token_usage])
        assert await meter.collect() == 1
        assert await totals(token_store(store)) == {("ep-test", "tok-9"): (40, 8)}
    finally:
        await book.close()
        await runner.cleanup()
        await gateway.aclose()
        await store.close()
