"""Leader failover across PROCESSES on a real PostgreSQL: two controllers' leases contend, exactly one
leads; SIGKILL it and the other leads within 10 s (default ttl 6 s); a LeaderLocator follows."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from podium.roles.leader import LeaderLocator
from podium.store.db import migrate
from podium.store.repos import Store
from tests.conftest import PYTHON, REPO, free_port
from tests.store.postgres import pg_bin, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here"),
]

# One contender: leads through LeaderLease.lead() and writes its state to a file while it does.
CONTENDER = """
import asyncio, os, sys
from podium.roles.leader import LeaderLease
from podium.store.repos import Store

url, holder, path = sys.argv[1:4]

def write(state):
    with open(path + ".tmp", "w") as f:
        f.write(state)
    os.replace(path + ".tmp", path)

async def main():
    store = Store(url)
    write("follower")
    async with LeaderLease(store.leases, holder, "http://" + holder) as lease:
        async def work():
            write("leader")
            try:
                await asyncio.Event().wait()
            finally:
                write("follower")
        await lease.lead(work)

asyncio.run(main())
"""


@contextmanager
def contenders(url: str, tmp: Path, names: list[str]) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in names:
            with open(tmp / f"{name}.log", "wb") as log:
                procs[name] = subprocess.Popen(
                    [PYTHON, "-c", CONTENDER, url, name, str(tmp / f"{name}.state")], cwd=REPO, stderr=log
                )
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def states(tmp: Path, names: list[str]) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = (tmp / f"{name}.state").read_text()
        except FileNotFoundError:
            found[name] = "starting"
    return found


def leaders(tmp: Path, names: list[str]) -> list[str]:
    return [n for n, s in states(tmp, names).items() if s == "leader"]


async def poll(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := cond()):
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        await asyncio.sleep(0.05)
    return found


async def test_sigkill_of_the_leader_process_fails_over_within_10s(tmp_path: Path) -> None:
    names = ["ctl-a", "ctl-b"]
    with postgres_server(free_port()) as url:
        migrate(url)
        store = Store(url)
        locator = LeaderLocator(store.leases)
        try:
            with contenders(url, tmp_path, names) as procs:
                first = (await poll(lambda: leaders(tmp_path, names), 20, "a first leader"))[0]
                assert (await store.leases.current("controller")).holder == first  # type: ignore[union-attr]
                assert await locator.url() == f"http://{first}"
                watch_until = time.monotonic() + 2.5  # over a renewal: never two leaders, no flapping
                while time.monotonic() < watch_until:
                    assert leaders(tmp_path, names) == [first], states(tmp_path, names)
                    await asyncio.sleep(0.05)
                assert all(p.poll() is None for p in procs.values())

                os.kill(procs[first].pid, signal.SIGKILL)
                killed_at = time.monotonic()
                procs[first].wait(timeout=10)
                second = next(n for n in names if n != first)
                await poll(lambda: leaders(tmp_path, [second]) == [second], 10, "the takeover")  # first's file is stale
                took = time.monotonic() - killed_at
                locator.invalidate()  # the follower's request to the dead leader failed
                assert await locator.wait_url(10 - took) == f"http://{second}"
                print(f"failover after SIGKILL: {took:.2f} s")
        finally:
            await store.close()
