"""The control plane in process over the shipped catalog and SQLite (tests/api's harness), and the
gateway harness (tests/gateway's) for adapter routing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.catalog import Catalog
from podium.store.repos import Store
from tests.api.conftest import Hints, _client
from tests.cli.conftest import cli, server  # noqa: F401  (fixtures, used by test_models_cli)
from tests.gateway.conftest import harness  # noqa: F401  (a fixture, used by test_adapters)

Api = tuple[httpx.AsyncClient, Store, Hints]


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[Api]:
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    async for x in _client(tmp_path, catalog):
        yield x
