"""Fixtures for runtime tests: a LocalBackend on a temporary data dir that never leaks processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from podium.runtime import procfs
from podium.runtime.base import LaunchSpec
from podium.runtime.local import LocalBackend
from podium.runtime.records import read_record

PY = sys.executable


def spec(rid: str, command: list[str], **kw: object) -> LaunchSpec:
    return LaunchSpec(replica_id=rid, endpoint_id="ep-test", command=command, **kw)  # type: ignore[arg-type]


def py(code: str) -> list[str]:
    """argv running a python snippet, unbuffered so output reaches the log at once."""
    return [PY, "-u", "-c", code]


def pid_alive(pid: int) -> bool:
    st = procfs.read_stat(pid)
    return st is not None and st.state not in ("Z", "X")


async def eventually(check: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


async def wait_port(address: str, timeout: float = 5.0) -> float:
    """Seconds until address accepts a TCP connection."""
    host, port = address.rsplit(":", 1)
    t0 = time.perf_counter()
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=0.2).close()
            return time.perf_counter() - t0
        except OSError:
            if time.perf_counter() - t0 > timeout:
                raise
            await asyncio.sleep(0.005)


async def http_status(url: str) -> int:
    def get() -> int:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)

    return await asyncio.to_thread(get)


async def wait_line(backend: LocalBackend, rid: str, text: str, timeout: float = 5.0) -> None:
    await eventually(lambda: text in backend.read_tail(rid, 200), timeout)


def kill_leftovers(data_dir: Path) -> list[int]:
    """SIGKILL every recorded replica group still alive; returns the pgids that were alive."""
    leaked = []
    root = data_dir / "replicas"
    for d in root.iterdir() if root.exists() else []:
        rec = read_record(d)
        if rec and rec.pid and rec.start_time and procfs.group_is_ours(rec.pid, rec.start_time):
            leaked.append(rec.pid)
            os.killpg(rec.pid, signal.SIGKILL)
    return leaked


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_backend(data_dir: Path) -> Iterator[Callable[..., LocalBackend]]:
    """Backends on data_dir (a second one simulates a restarted Podium); all closed afterwards."""
    made: list[LocalBackend] = []

    def make(**kw: object) -> LocalBackend:
        kw.setdefault("close_grace_s", 0.5)
        b = LocalBackend(data_dir, **kw)  # type: ignore[arg-type]
        made.append(b)
        return b

    yield make
    kill_leftovers(data_dir)  # a failed test must not leave processes behind


@pytest.fixture
async def backend(make_backend: Callable[..., LocalBackend], data_dir: Path) -> AsyncIterator[LocalBackend]:
    b = make_backend()
    try:
        yield b
    finally:
        await b.close()
