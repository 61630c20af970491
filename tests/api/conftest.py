"""The control-plane app in-process over a real SQLite database (no controller: hints are recorded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

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

ADMIN = "test-admin-token"


class Hints(list[str]):
    def __call__(self, endpoint_id: str | None = None) -> None:
        self.append(endpoint_id or "")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    settings = Settings(data_dir=tmp_path, admin_token=ADMIN)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap(ADMIN)
    hints = Hints()
    endpoints = EndpointService(store, hints, SourceValidator(None, "local"))
    app = create_app(Services(settings, tokens, endpoints, {}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://podium", headers={"Authorization": f"Bearer {ADMIN}"}
    ) as client:
        yield client, store, hints
    await store.close()
