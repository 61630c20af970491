"""DockerBackend with no engine behind its socket: every call says so as RuntimeUnavailable (which the
controller waits out), never as a replica failure or an aiohttp traceback. Needs no engine."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from podium.runtime.base import LaunchSpec, RuntimeUnavailable
from podium.runtime.docker import DockerBackend


async def test_every_call_to_a_missing_engine_is_runtime_unavailable(tmp_path: Path) -> None:
    sock = tmp_path / "gone.sock"
    backend = DockerBackend(tmp_path / "data", docker_host=f"unix://{sock}")
    spec = LaunchSpec(replica_id="rep-1", endpoint_id="ep-1", command=["x"], image="localhost/x:1")
    t0 = time.monotonic()
    try:
        for call in (backend.list(), backend.poll("rep-1"), backend.start(spec), backend.stop("rep-1")):
            with pytest.raises(RuntimeUnavailable, match=f"container engine at {sock} is unreachable"):
                await call
        with pytest.raises(RuntimeUnavailable):
            [line async for line in backend.logs("rep-1")]
    finally:
        await backend.close()
    assert time.monotonic() - t0 < 5


async def test_an_engine_that_never_answers_is_unavailable_within_the_call_timeout(tmp_path: Path) -> None:
    """A socket that accepts and never answers (a hung engine): each call ends after call_timeout_s
    instead of holding the controller's tick (the old default was 60 s, then an aiohttp timeout)."""
    sock = tmp_path / "hung.sock"
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(sock))
        hung.listen(16)
        backend = DockerBackend(tmp_path / "data", docker_host=f"unix://{sock}", call_timeout_s=0.3)
        try:
            for call in (backend.list(), backend.poll("rep-1")):
                t0 = time.monotonic()
                with pytest.raises(RuntimeUnavailable, match="no answer in time"):
                    await call
                assert time.monotonic() - t0 < 2
        finally:
            await backend.close()
