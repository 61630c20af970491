"""The control-plane app in-process over a real SQLite database (no controller: hints are recorded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.api.app import create_app
from podium.api.deps import Services
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from tests.api.fake_catalog import FakeCatalog

ADMIN = "test-admin-token"


class Hints(list[str]):
    def __call__(self, endpoint_id: str | None = None) -> None:
        self.append(endpoint_id or "")


async def _client(
    tmp_path: Path, catalog: Any, runtime: str = "local"
) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    settings = Settings(data_dir=tmp_path, admin_token=ADMIN)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap(ADMIN)
    hints = Hints()
    endpoints = EndpointService(store, hints, SourceValidator(catalog, runtime))
    app = create_app(Services(settings, tokens, endpoints, catalog=catalog))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://podium", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as client:
        yield client, store, hints
    await store.close()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    """No catalog: container endpoints only, capacity not counted."""
    async for x in _client(tmp_path, None):
        yield x


@pytest.fixture
async def capi(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    """With a catalog: region `local` has 2 h100 GPUs and 4 cpu slots."""
    async for x in _client(tmp_path, FakeCatalog(h100=2, cpu_slots=4)):
        yield x
