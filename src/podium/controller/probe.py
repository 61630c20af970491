"""Health probes: a replica is ready when its health-check path answers 200 and, for engine
templates, when it has completed one real token.

Why the second check: an LLM engine answers `/v1/models` (or `/health`) as soon as it has loaded
its weights, long before it has run a single matrix multiply. A build that faults on the first
request (an instruction the CPU advertises but cannot execute) would otherwise pass readiness on
every restart and take traffic it kills itself on. One pooled aiohttp session for all probes;
short timeouts for health probes, so a hung replica never stalls a tick; the generation probe
runs beside the tick (see Observer), so its longer timeout stalls nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp


@dataclass(frozen=True)
class ProbeTarget:
    """How an endpoint's replicas are probed: the health path, and for engines the model to ask."""

    path: str = "/health"
    generate_model: str | None = None  # set: readiness also needs one 1-token completion of this model
    start_timeout_s: float | None = None  # a template's own; None: the server's tuning


class HealthProbe(Protocol):
    async def healthy(self, address: str, path: str) -> bool: ...
    async def generates(self, address: str, model: str) -> bool: ...
    async def close(self) -> None: ...


class Prober:
    def __init__(self, timeout_s: float = 2.0, generate_timeout_s: float = 120.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.generate_timeout = aiohttp.ClientTimeout(total=generate_timeout_s)
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

    async def generates(self, address: str, model: str) -> bool:
        """One greedy token through the OpenAI completions API: 200 with a `choices` list."""
        body = {"model": model, "prompt": "Hello", "max_tokens": 1, "temperature": 0}
        try:
            async with self._client().post(
                f"http://{address}/v1/completions", json=body, timeout=self.generate_timeout
            ) as resp:
                if resp.status != 200:
                    return False
                data = await resp.json(content_type=None)
                return isinstance(data, dict) and isinstance(data.get("choices"), list)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
