"""Each endpoint's job policy (spec `jobs: {retry_running, max_queued}`), read from the stored specs.

The runner refreshes it every few seconds from the endpoints it lists anyway; the intake reads the
bound from it on each submit without a query, and reads an endpoint it does not know yet (created since
the last refresh) from the store once. A changed policy applies within a refresh (1-5 s)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class JobPolicy:
    retry_running: bool = False
    max_queued: int | None = None


def policy_of(spec_json: str) -> JobPolicy:
    """The `jobs` section of a stored spec; absent or unreadable: the defaults."""
    try:
        section: Any = json.loads(spec_json).get("jobs") or {}
        return JobPolicy(bool(section.get("retry_running", False)), section.get("max_queued"))
    except (ValueError, AttributeError):
        return JobPolicy()


class JobPolicies:
    def __init__(self, default_max_queued: int) -> None:
        self.default_max_queued = default_max_queued
        self._by_endpoint: dict[str, JobPolicy] = {}

    def replace(self, policies: dict[str, JobPolicy]) -> None:
        self._by_endpoint = policies

    def known(self, endpoint_id: str) -> bool:
        return endpoint_id in self._by_endpoint

    def put(self, endpoint_id: str, policy: JobPolicy) -> None:
        """One endpoint's policy, read when a submit finds it unknown (created since the last refresh)."""
        self._by_endpoint = {**self._by_endpoint, endpoint_id: policy}

    def get(self, endpoint_id: str) -> JobPolicy:
        return self._by_endpoint.get(endpoint_id) or JobPolicy()

    def bound(self, endpoint_id: str) -> int:
        return self.get(endpoint_id).max_queued or self.default_max_queued

    def may_retry(self, endpoint_id: str) -> bool:
        return self.get(endpoint_id).retry_running
