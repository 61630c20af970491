"""The Engine API client under DockerBackend: HTTP over the engine's unix socket, with every call bounded.

Why its own module: each call has a timeout (an engine that accepts and never answers must not freeze
the controller), every way of not reaching the engine becomes one `RuntimeUnavailable` (so the
controller can wait it out instead of counting replica failures), and an image pull is a stream read
line by line (progress for the endpoint's events; a stall timeout ends a pull that stopped moving).
Also here: the installation id that keeps installations sharing an engine apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from podium.runtime.base import RuntimeUnavailable

INSTALLATION_ENV = "PODIUM_INSTALLATION_ID"
INSTALLATION_FILE = "installation_id"
_INSTALLATION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class EngineError(Exception):
    """The engine answered, with an error (4xx/5xx, or an error inside a pull stream)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"engine answered {status}: {message}")
        self.status, self.message = status, message


def installation_id(data_dir: Path) -> str:
    """Who this Podium is on a shared engine: PODIUM_INSTALLATION_ID, else an id generated once into
    <data_dir>/installation_id. Containers carry it as a label; only ours are adopted or ended."""
    chosen = os.environ.get(INSTALLATION_ENV, "").strip()
    path = Path(data_dir) / INSTALLATION_FILE
    if not chosen:
        try:
            chosen = path.read_text().strip()
        except FileNotFoundError:
            chosen = secrets.token_hex(4)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(chosen + "\n")
            os.replace(tmp, path)
    if not _INSTALLATION_RE.match(chosen):
        raise ValueError(
            f"installation id {chosen!r} ({INSTALLATION_ENV} or {path}): use 1-40 of a-z 0-9 _ . -, starting alnum"
        )
    return chosen


class EngineClient:
    def __init__(self, socket_path: str, *, call_timeout_s: float = 15.0) -> None:
        self.socket_path, self.call_timeout_s = socket_path, call_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self._session

    def unavailable(self, exc: BaseException) -> RuntimeUnavailable:
        why = str(exc) or type(exc).__name__
        if isinstance(exc, asyncio.TimeoutError):
            why = "no answer in time"
        return RuntimeUnavailable(f"container engine at {self.socket_path} is unreachable: {why}")

    async def call(self, method: str, path: str, *, timeout_s: float | None = None, **kw: Any) -> Any:
        """One request; JSON answers decoded. EngineError for an error answer, RuntimeUnavailable
        when the engine cannot be reached or does not answer within timeout_s (default call_timeout_s)."""
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.call_timeout_s)
        try:
            async with self._http().request(method, f"http://engine{path}", timeout=timeout, **kw) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise EngineError(resp.status, _message(body))
                if body and resp.content_type == "application/json":
                    return json.loads(body)
                return body
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
            raise self.unavailable(e) from e

    async def stream(self, path: str, params: dict[str, str], *, idle_timeout_s: float | None) -> AsyncIterator[bytes]:
        """A GET answered as a stream (logs): chunks as they come; nothing at all for an error answer.
        RuntimeUnavailable only when the engine cannot be reached at the start. A stream that sends
        nothing for idle_timeout_s ends there (None: a follow, which may be quiet for hours)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=idle_timeout_s)
        try:
            resp = await self._http().get(f"http://engine{path}", params=params, timeout=timeout)
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
            raise self.unavailable(e) from e
        async with resp:  # a timeout or a lost engine mid-stream is a ClientError: the lines so far stand
            if resp.status >= 400:
                return
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except aiohttp.ClientError:
                return  # the engine went away mid-stream: the lines so far are all there is

    async def pull(
        self,
        params: dict[str, str],
        headers: dict[str, str],
        progress: Callable[[str], Awaitable[None]],
        *,
        stall_timeout_s: float,
        total_timeout_s: float,
    ) -> None:
        """POST /images/create, reading its JSON-lines answer as it comes: each new status goes to
        `progress`; an error line raises EngineError. A pull that sends nothing for stall_timeout_s
        (a registry that accepts and never answers) or runs past total_timeout_s ends with EngineError
        504, and closing the request makes the engine give it up."""
        timeout = aiohttp.ClientTimeout(total=total_timeout_s, sock_connect=5, sock_read=stall_timeout_s)
        last = ""
        try:
            async with self._http().post(
                "http://engine/images/create", params=params, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 400:
                    raise EngineError(resp.status, _message(await resp.read()))
                async for raw in resp.content:
                    line = _json_line(raw)
                    if line.get("error"):
                        raise EngineError(500, str(line["error"]))
                    status = _status_text(line)
                    if status and status != last:
                        last = status
                        await progress(status)
        except TimeoutError as e:
            waited = f"nothing for {stall_timeout_s:g}s" if last else f"no answer in {stall_timeout_s:g}s"
            raise EngineError(504, f"image pull timed out ({waited}; last: {last or 'none'})") from e
        except (aiohttp.ClientConnectionError, OSError) as e:
            raise self.unavailable(e) from e

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", body.decode()))
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")


def _json_line(raw: bytes) -> dict[str, Any]:
    try:
        out = json.loads(raw)
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _status_text(line: dict[str, Any]) -> str:
    """'Downloading a1b2c3: 12.0MB/80.0MB' style, without the per-byte noise of progress bars."""
    status = str(line.get("status") or line.get("stream") or "").strip()
    ident = str(line.get("id") or "")
    return f"{status} {ident}".strip() if ident and status in ("Pulling fs layer", "Pull complete") else status
