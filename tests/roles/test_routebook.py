"""The controller's route book for remote gateways: epochs, token-rate shares, and gateways that die.
Real sockets for the stats fetches; an injected clock for the deadlines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import pytest

from podium.gateway.routes import PlatformToken
from podium.roles import routebook
from podium.roles.routebook import LOCAL, RouteBook
from tests.conftest import free_port

LIMITED = PlatformToken("t1", "a" * 64, frozenset({"inference"}), 10)


async def test_a_poll_from_another_epoch_is_answered_at_once() -> None:
    book = RouteBook("admin", primed=True)
    book.set_platform_tokens([LIMITED])  # version 1
    t0 = time.monotonic()
    await book.wait_newer(57, 5.0, "epoch-of-the-controller-before-a-restart")
    await book.wait_newer(57, 5.0, None)  # a gateway that has seen no epoch yet
    assert time.monotonic() - t0 < 0.5
    await book.wait_newer(book.version, 0.2, book.epoch)  # same epoch, nothing new: the long-poll waits
    assert time.monotonic() - t0 >= 0.2
    assert RouteBook("admin").epoch != book.epoch and book.snapshot()["epoch"] == book.epoch


async def test_an_unprimed_book_answers_once_the_controller_has_published(monkeypatch: pytest.MonkeyPatch) -> None:
    book = RouteBook("admin")
    poll = asyncio.create_task(book.wait_newer(-1, 0, None))
    await asyncio.sleep(0.1)
    assert not poll.done()  # a restarted controller must not hand out an empty table
    book.mark_primed()
    assert await asyncio.wait_for(poll, 1) is True
    monkeypatch.setattr(routebook, "PRIME_WAIT_S", 0.05)
    assert await RouteBook("admin").wait_newer(57, 25, "old") is False  # a stuck first tick: 503, ask again


async def test_each_gateway_gets_a_share_and_the_shares_add_up_to_the_limit() -> None:
    book = RouteBook("admin", primed=True)
    book.register("http://gw1")
    book.set_platform_tokens([LIMITED])
    assert book.snapshot("http://gw1")["rate_shares"] == {"a" * 64: pytest.approx(10.0)}
    version = book.version
    book.register("http://gw2")
    assert book.version > version  # a new gateway: the shares change, long-polls return
    shares = [book.snapshot(g)["rate_shares"]["a" * 64] for g in ("http://gw1", "http://gw2")]
    assert shares == [pytest.approx(5.0), pytest.approx(5.0)]
    assert book.snapshot()["rate_shares"] == {}  # not a registered gateway: the whole rate


class FakeLocal:
    def __init__(self) -> None:
        self.shares: dict[str, float] = {}

    def token_demand(self) -> dict[str, float]:
        return {"a" * 64: 120.0}

    def set_rate_shares(self, shares: Mapping[str, float]) -> None:
        self.shares = dict(shares)


async def test_the_in_process_gateway_takes_part_in_the_split() -> None:
    book = RouteBook("admin", primed=True)
    local = FakeLocal()
    book.attach_local(local)
    book.set_platform_tokens([LIMITED])
    assert local.shares == {"a" * 64: pytest.approx(10.0)}  # alone: the whole rate
    book.register("http://gw1")  # attached, no demand yet: the local gateway keeps most of it
    assert local.shares["a" * 64] == pytest.approx(9.5)
    assert book.snapshot("http://gw1")["rate_shares"]["a" * 64] == pytest.approx(0.5)
    assert LOCAL not in {g.url for g in book._live_gateways()}


async def test_a_gateway_that_died_stops_holding_drains_at_once(caplog: pytest.LogCaptureFixture) -> None:
    book = RouteBook("admin", primed=True)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the gateway process is gone
    book.register(url)
    book._gateways[url].replica_in_flight = {"rep-1": 3}  # what it reported before it died
    assert book.replica_in_flight("rep-1") == 3
    with caplog.at_level(logging.WARNING, "podium.roles"):
        for _ in range(8):  # two seconds of autoscaler ticks
            await book.stats()
    assert book.replica_in_flight("rep-1") == 0
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    book.register(url)  # it polls again (restarted): attached again
    assert url in book._gateways
    await book.close()


async def test_a_gateway_that_hangs_is_forgotten_within_seconds(caplog: pytest.LogCaptureFixture) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers (a frozen process, a black-holed host)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    now = [0.0]
    book = RouteBook("admin", primed=True, clock=lambda: now[0], stats_timeout_s=0.05, dead_after_s=3.0)
    url = f"http://127.0.0.1:{port}"
    book.register(url)
    book._gateways[url].replica_in_flight = {"rep-1": 2}
    try:
        with caplog.at_level(logging.WARNING, "podium.roles"):
            await book.stats()
            assert book.replica_in_flight("rep-1") == 2  # one timeout may be a blip
            now[0] = 2.0
            await book.stats()
            assert book.replica_in_flight("rep-1") == 2
            now[0] = 3.5
            await book.stats()
            assert book.replica_in_flight("rep-1") == 0
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2  # failing, then forgotten
    finally:
        server.close()
        await book.close()
