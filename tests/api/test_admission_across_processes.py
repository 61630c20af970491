"""Two control planes over one database (as two `--role api` processes): racing creates still never
overbook, because capacity admission takes the store's cross-process lock, not only a per-process one."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from podium.core.specs import EndpointSpec
from podium.services.endpoints import EndpointService
from tests.api.conftest import _client
from tests.api.fake_catalog import FakeCatalog
from tests.api.test_dedicated_api import BIG


async def test_two_api_processes_never_overbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = EndpointService._others

    async def slow_others(self: EndpointService, exclude_id: str | None) -> list[EndpointSpec]:
        others = await original(self, exclude_id)
        await asyncio.sleep(0.02)  # widen the check-then-write window: without a shared lock both pass
        return others

    monkeypatch.setattr(EndpointService, "_others", slow_others)
    planes = [contextlib.asynccontextmanager(_client)(tmp_path, FakeCatalog(h100=1, cpu_slots=4)) for _ in range(2)]
    async with planes[0] as (first, store, _), planes[1] as (second, _, _):
        bodies = [{**BIG, "name": f"racer-{i}"} for i in range(8)]
        answers = await asyncio.gather(
            *((first if i % 2 else second).post("/v0/dedicated_endpoints", json=b) for i, b in enumerate(bodies))
        )
        assert sorted(r.status_code for r in answers) == [201] + [409] * 7  # one GPU: one winner
        assert len(await store.list_endpoints()) == 1
