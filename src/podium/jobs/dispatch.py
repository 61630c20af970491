"""Running one job: its request replayed through a gateway, so it takes a replica slot like any
synchronous request (and the gateway's hold wakes an endpoint at zero). The runner sends it with the
admin token (the submitter was authorised, and charged, when the job was accepted) and
`X-Podium-Job: <id>` so replicas' logs can tell jobs apart."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import unquote

import aiohttp

from podium.http.message import Headers, Request, Responder
from podium.jobs.repo import Outcome
from podium.jobs.tables import FAILED, SUCCEEDED, JobRow

# the gateway's 503s that mean the request never reached a replica: the job is queued again
NOT_STARTED = frozenset({"cold_start_timeout", "queue_full", "queue_timeout", "shutdown"})


class JobDispatcher(Protocol):
    async def run(self, job: JobRow) -> Outcome: ...

    async def close(self) -> None: ...


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
        return outcome_of(status, content_type, body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def outcome_of(status: int, content_type: str, body: bytes) -> Outcome:
    """A replayed request's answer as the job's result; raises Retry when it never reached a replica."""
    if status == 503 and _error_code(body) in NOT_STARTED:
        raise Retry(f"gateway answered 503 {_error_code(body)}")
    if status < 400:
        return Outcome(SUCCEEDED, status, content_type, body)
    return Outcome(FAILED, status, content_type, body, error=f"the request was answered {status}")


class Collect:
    """A Responder that keeps the whole answer (a job's result is stored whole, streams included)."""

    def __init__(self) -> None:
        self.started = False
        self.status = 0
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.aborted = False

    async def send_full(self, status: int, headers: Headers, body: bytes) -> None:
        self.started, self.status, self.headers = True, status, headers
        self.chunks.append(body)

    async def start(self, status: int, headers: Headers, content_length: int | None) -> None:
        self.started, self.status, self.headers = True, status, headers

    async def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    async def end(self) -> None:
        pass

    def abort(self) -> None:
        self.aborted = True

    def content_type(self) -> str:
        return next((v.decode("latin-1") for k, v in self.headers if k.lower() == b"content-type"), "")


class LocalDispatcher:
    """Replays jobs through the gateway in this process (role all): the same admission, balancer slots,
    relay and metrics as a request from outside, without a loopback HTTP client and server per job."""

    def __init__(self, handle: Callable[[Request, Responder], Awaitable[None]], admin_token: str) -> None:
        self._handle = handle
        self._auth = f"Bearer {admin_token}".encode()

    async def run(self, job: JobRow) -> Outcome:
        raw_path, _, query = job.path.encode("latin-1").partition(b"?")
        headers: Headers = [
            (b"host", b"podium-jobs"),
            (b"authorization", self._auth),
            (b"x-podium-job", job.id.encode()),
        ]
        if job.content_type:
            headers.append((b"content-type", job.content_type.encode("latin-1")))
        headers.append((b"content-length", str(len(job.body)).encode()))
        path = unquote(raw_path.decode("latin-1"))
        out = Collect()
        await self._handle(Request(job.method, path, raw_path, query, headers, job.body, b"127.0.0.1"), out)
        if out.aborted:  # the replica's answer was cut mid-way
            return Outcome(FAILED, out.status or None, out.content_type(), b"".join(out.chunks), "the answer was cut")
        return outcome_of(out.status, out.content_type(), b"".join(out.chunks))

    async def close(self) -> None:
        pass


def _error_code(body: bytes) -> str | None:
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None
