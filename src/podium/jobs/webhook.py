"""Webhook delivery: the finished job's JSON (what GET /jobs/{id} answers) POSTed to the URL the client
named in `X-Podium-Webhook`. Deliveries are due rows in the store (`webhook_state` pending,
`webhook_next_at`), so a restart resumes them; each attempt is recorded on the job, retried with
doubling backoff until `attempts` are spent."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp

from podium.jobs.repo import JobRepo
from podium.jobs.tables import JobRow
from podium.jobs.views import job_json


class Webhooks:
    def __init__(
        self, repo: JobRepo, *, attempts: int, backoff_s: float, wall_clock: Callable[[], float], timeout_s: float = 10
    ) -> None:
        self.repo, self.attempts, self.backoff_s, self._wall = repo, attempts, backoff_s, wall_clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def deliver(self, job: JobRow) -> None:
        """One attempt; recorded, and the next one scheduled (or the delivery given up)."""
        at = self._wall()
        status: int | None = None
        error: str | None = None
        try:
            headers = {"X-Podium-Job": job.id}
            async with self._client().post(job.webhook_url or "", json=job_json(job), headers=headers) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = str(exc) or type(exc).__name__
        ok = status is not None and 200 <= status < 300
        if not ok and error is None:
            error = f"the receiver answered {status}"
        done = len(_attempts(job)) + 1
        if ok:
            state, next_at = "delivered", None
        elif done >= self.attempts:
            state, next_at = "failed", None
        else:
            state, next_at = "pending", at + self.backoff_s * 2 ** (done - 1)
        await self.repo.record_webhook(job.id, {"at": at, "status": status, "error": error}, state, next_at)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _attempts(job: JobRow) -> list[object]:
    return list(json.loads(job.webhook_attempts or "[]"))
