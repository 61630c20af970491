"""Running one job: its request replayed through a gateway, so it takes a replica slot like any
synchronous request (and the gateway's hold wakes an endpoint at zero). The runner sends it with the
admin token (the submitter was authorised, and charged, when the job was accepted) and
`X-Podium-Job: <id>` so replicas' logs can tell jobs apart."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp

from podium.jobs.repo import Outcome
from podium.jobs.tables import FAILED, SUCCEEDED, JobRow

# the gateway's 503s that mean the request never reached a replica: the job is queued again
NOT_STARTED = frozenset({"cold_start_timeout", "queue_full", "queue_timeout", "shutdown"})


class Retry(Exception):
    """The job did not reach a replica (gateway busy, cold start too long, gateway down): queue it again."""


class Dispatcher:
    def __init__(self, gateway_url: Callable[[], str | None], admin_token: str) -> None:
        self._gateway_url = gateway_url
        self._headers = {"Authorization": f"Bearer {admin_token}"}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no total timeout: the gateway's request_timeout_s bounds a request; cancel cuts it
            connector = aiohttp.TCPConnector(limit=0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def run(self, job: JobRow) -> Outcome:
        """The job's request through a gateway; raises Retry when it never reached a replica."""
        base = self._gateway_url()
        if base is None:
            raise Retry("no gateway attached yet")
        headers = {**self._headers, "X-Podium-Job": job.id}
        if job.content_type:
            headers["Content-Type"] = job.content_type
        try:
            async with self._client().request(
                job.method, base.rstrip("/") + job.path, data=job.body, headers=headers
            ) as resp:
                body = await resp.read()
                status, content_type = resp.status, resp.headers.get("Content-Type", "")
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise Retry(f"gateway unreachable: {exc}") from exc
        if status == 503 and _error_code(body) in NOT_STARTED:
            raise Retry(f"gateway answered 503 {_error_code(body)}")
        if status < 400:
            return Outcome(SUCCEEDED, status, content_type, body)
        return Outcome(FAILED, status, content_type, body, error=f"the request was answered {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _error_code(body: bytes) -> str | None:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None
