"""An unreachable ray_address is a clear, quick error naming the address, never a hang, and the
event loop keeps running meanwhile (no cluster needed)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from podium.core.errors import PodiumError
from podium.runtime.base import LaunchSpec, RuntimeUnavailable
from podium.runtime.ray import RayBackend, RayUnavailable
from tests.conftest import free_port
from tests.ray_cluster import ray_available

pytestmark = pytest.mark.skipif(not ray_available(), reason="ray is not installed (scripts/ci-ray.sh installs it)")


async def test_a_closed_port_is_refused_at_once(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    b = RayBackend(address, tmp_path, call_timeout_s=2.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(RayUnavailable) as err:
            await b.start(LaunchSpec("r1", "ep", ["true"]))
        assert str(err.value).startswith(f"Ray cluster at {address}: cannot connect: "), err.value
        assert isinstance(err.value, RuntimeUnavailable) and isinstance(err.value, PodiumError)
        # Asked again: the same kind of answer, as fast.
        with pytest.raises(RayUnavailable, match=address):
            await b.poll("r1")
        with pytest.raises(RayUnavailable, match=address):
            await b.nodes()
        assert time.monotonic() - t0 < 2
    finally:
        await b.close()


async def test_a_silent_address_times_out_without_blocking_the_loop(tmp_path: Path) -> None:
    """Something listens but never speaks Ray: connecting is bounded by connect_timeout_s, the
    driver process is ended, and the event loop ticks all along."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        b = RayBackend(address, tmp_path, connect_timeout_s=5.0, call_timeout_s=2.0)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        t = asyncio.create_task(ticker())
        try:
            t0 = time.monotonic()
            with pytest.raises(RayUnavailable, match=address) as err:
                await b.nodes()
            took = time.monotonic() - t0
            assert took < 9, took
            assert ticks >= took / 0.05 / 3  # the loop ran (generously: 2 shared cores)
            assert "cannot connect" in str(err.value)
            assert b.client.pid is None
        finally:
            t.cancel()
            await b.close()
