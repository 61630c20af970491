"""Metering: replica-seconds and GPU-seconds per endpoint, counted only while replicas run, and the
prompt/completion tokens the gateways counted, per endpoint and per API token.

Finished stretches are booked in `usage` when a replica ends; running replicas are counted up to
now. A window [since, until) clips both, so the numbers for adjacent windows add up. Tokens are
booked by the hour they were collected in (store/token_usage.py): a window counts the hours that
overlap it, so token numbers are exact for whole hours and cover a little more otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from podium.store.repos import Store
from podium.store.token_usage import TokenUsageStore


@dataclass
class EndpointUsage:
    endpoint_id: str
    name: str
    replica_seconds: float = 0.0
    gpu_seconds: float = 0.0
    running_replicas: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TokenUsage:
    """One caller's tokens on one endpoint. `token_id`: a platform token's id, `endpoint` (the
    endpoint's own token) or `anonymous` (an open endpoint called without a token)."""

    endpoint_id: str
    token_id: str
    token_name: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class UsageReport:
    since: float
    until: float
    endpoints: list[EndpointUsage] = field(default_factory=list)
    tokens: list[TokenUsage] = field(default_factory=list)

    @property
    def replica_seconds(self) -> float:
        return sum(e.replica_seconds for e in self.endpoints)

    @property
    def gpu_seconds(self) -> float:
        return sum(e.gpu_seconds for e in self.endpoints)

    @property
    def prompt_tokens(self) -> int:
        return sum(e.prompt_tokens for e in self.endpoints)

    @property
    def completion_tokens(self) -> int:
        return sum(e.completion_tokens for e in self.endpoints)


def _overlap(start: float, end: float, since: float, until: float) -> float:
    return max(0.0, min(end, until) - max(start, since))


def token_store(store: Store) -> TokenUsageStore:
    return TokenUsageStore(store.session, postgres=store.url.startswith("postgresql"))


class UsageService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def report(
        self, since: float | None = None, until: float | None = None, endpoint_id: str | None = None
    ) -> UsageReport:
        until = until if until is not None else time.time()
        since = since if since is not None else 0.0
        out: dict[str, EndpointUsage] = {}
        for u in await self.store.usage_rows(since, endpoint_id):
            e = out.setdefault(u.endpoint_id, EndpointUsage(u.endpoint_id, u.endpoint_name))
            secs = _overlap(u.started_at, u.ended_at, since, until)
            e.replica_seconds += secs
            e.gpu_seconds += secs * u.gpu_count
        names = {row.id: row.name for row in await self.store.list_endpoints()}
        now = time.time()
        for r in await self.store.live_replicas(endpoint_id):
            if r.started_at is None:
                continue
            e = out.setdefault(r.endpoint_id, EndpointUsage(r.endpoint_id, names.get(r.endpoint_id, "")))
            secs = _overlap(r.started_at, now, since, until)
            e.replica_seconds += secs
            e.gpu_seconds += secs * (len(r.gpus.split(",")) if r.gpus else 0)
            e.running_replicas += 1
        tokens = await self._tokens(since, until, endpoint_id, names, out)
        return UsageReport(since, until, sorted(out.values(), key=lambda e: -e.replica_seconds), tokens)

    async def _tokens(
        self,
        since: float,
        until: float,
        endpoint_id: str | None,
        names: dict[str, str],
        out: dict[str, EndpointUsage],
    ) -> list[TokenUsage]:
        token_names = {t.id: t.name for t in await self.store.tokens(include_revoked=True)}
        rows: list[TokenUsage] = []
        for t in await token_store(self.store).totals(since, until, endpoint_id):
            e = out.setdefault(t.endpoint_id, EndpointUsage(t.endpoint_id, names.get(t.endpoint_id, "")))
            e.prompt_tokens += t.prompt_tokens
            e.completion_tokens += t.completion_tokens
            name = token_names.get(t.caller, t.caller)
            rows.append(TokenUsage(t.endpoint_id, t.caller, name, t.prompt_tokens, t.completion_tokens))
        return rows
