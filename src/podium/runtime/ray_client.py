"""The RayBackend's side of its driver process (ray_driver.py): spawn, ask, time out, respawn.

Every request is bounded: no answer within its timeout is a RuntimeUnavailable naming the cluster's
address. A driver that cannot connect, or that died (Ray ends a driver whose cluster stays
unreachable), is respawned by the next request, but not more often than every `respawn_after_s`, so
a cluster that is down costs one quick error per call, not a process per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from collections import deque
from typing import Any

from podium.core.errors import Unavailable
from podium.runtime.base import RuntimeUnavailable

_STREAM_LIMIT = 16 * 1024 * 1024  # one answer may carry up to ~1 MiB of log lines, JSON-escaped


class RayUnavailable(RuntimeUnavailable, Unavailable):
    """The Ray cluster at the region's ray_address cannot be reached or did not answer in time.
    A RuntimeUnavailable for the controller (wait, retry), a 503 PodiumError for API callers."""


class DriverClient:
    def __init__(
        self,
        address: str,
        namespace: str,
        *,
        python: str = sys.executable,
        connect_timeout_s: float = 30.0,
        respawn_after_s: float = 2.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.address, self.namespace, self.python = address, namespace, python
        self.connect_timeout_s, self.respawn_after_s = connect_timeout_s, respawn_after_s
        self.env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._connecting: asyncio.Lock = asyncio.Lock()
        self._last_failure: tuple[float, str] | None = None
        self._stderr: deque[str] = deque(maxlen=20)

    def _error(self, what: str) -> RayUnavailable:
        return RayUnavailable(f"Ray cluster at {self.address}: {what}")

    async def call(self, op: str, timeout_s: float, **args: Any) -> Any:
        """Ask the driver; its answer, or RayUnavailable (unreachable, no answer in time, driver died)."""
        proc = await self._ensure()
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"id": rid, "op": op, "args": args}).encode() + b"\n")
            await proc.stdin.drain()
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise self._error(f"no answer to {op} within {timeout_s:g} s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise self._error(f"driver process ended ({self._stderr_tail()})") from None
        finally:
            self._pending.pop(rid, None)

    async def _ensure(self) -> asyncio.subprocess.Process:
        async with self._connecting:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            if self._last_failure and time.monotonic() - self._last_failure[0] < self.respawn_after_s:
                raise self._error(self._last_failure[1])
            try:
                self._proc = await self._spawn()
            except RayUnavailable as e:
                self._last_failure = (time.monotonic(), str(e).split(": ", 1)[-1])
                raise
            self._last_failure = None
            return self._proc

    async def _reachable(self) -> None:
        """A plain TCP connect first: a closed port or unknown host is a clear error in milliseconds,
        where ray.init would retry for a long while."""
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit():
            raise self._error("ray_address must be HOST:PORT (the head's GCS port)")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), self.connect_timeout_s)
        except (OSError, TimeoutError) as e:
            raise self._error(
                f"cannot connect: {e.strerror if isinstance(e, OSError) and e.strerror else e or 'timed out'}"
            ) from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def _spawn(self) -> asyncio.subprocess.Process:
        await self._reachable()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "podium.runtime.ray_driver",
            self.address,
            self.namespace,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=_STREAM_LIMIT,
            start_new_session=True,  # a terminal's ^C is for Podium, which closes us itself
        )
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(self._drain_stderr(proc.stderr))
        try:
            first = await asyncio.wait_for(proc.stdout.readline(), self.connect_timeout_s)
        except TimeoutError:
            await self._end(proc)
            raise self._error(f"cannot connect within {self.connect_timeout_s:g} s") from None
        hello = _parse(first)
        if "ready" not in hello:
            await self._end(proc)
            await asyncio.wait_for(stderr_task, 5)
            why = hello.get("error") or f"driver exited ({self._stderr_tail()})"
            raise self._error(f"cannot connect: {why}")
        self._reader = asyncio.create_task(self._read_answers(proc, stderr_task))
        return proc

    async def _read_answers(self, proc: asyncio.subprocess.Process, stderr_task: asyncio.Task[None]) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            msg = _parse(line)
            fut = self._pending.get(msg.get("id", -1))
            if fut is None or fut.done():
                continue
            if "error" in msg:
                fut.set_exception(self._error(str(msg["error"])))
            else:
                fut.set_result(msg.get("ok"))
        await proc.wait()
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await asyncio.wait_for(stderr_task, 2)
        why = self._error(f"driver process ended ({self._stderr_tail()})")
        self._last_failure = (time.monotonic(), str(why).split(": ", 1)[-1])
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(why)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", "replace").strip()
            if text:
                self._stderr.append(text)

    def _stderr_tail(self) -> str:
        return self._stderr[-1][:300] if self._stderr else "no output"

    async def _end(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()

    async def close(self) -> None:
        """End the driver: closing its stdin lets it finish; then it is killed if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            await self._end(proc)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self._last_failure = None  # a deliberate end: a later call may start a new driver at once

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


def _parse(line: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        return {}
    return msg if isinstance(msg, dict) else {}
