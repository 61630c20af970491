"""Health probes: a replica is ready when its health-check path answers 200.

One pooled aiohttp session for all probes; short timeouts so a hung replica never stalls a tick.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp


class HealthProbe(Protocol):
    async def healthy(self, address: str, path: str) -> bool: ...
    async def close(self) -> None: ...


class Prober:
    def __init__(self, timeout_s: float = 2.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=64, force_close=True)
            )
        return self._session

    async def healthy(self, address: str, path: str) -> bool:
        try:
            async with self._client().get(f"http://{address}{path}", allow_redirects=False) as resp:
                return resp.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
