"""A real control-plane listener (uvicorn on a loopback port, in a thread) for CLI tests.

The CLI runs in-process (Typer's CliRunner) but talks real HTTP to it, exactly as it talks to
`podium up`; a restart builds a fresh app and store over the same data dir.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from podium.api.app import create_app
from podium.api.deps import Services
from podium.cli.main import app as cli_app
from podium.runtime.fake import FakeBackend
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService, sha256_hex
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from tests.api.fake_catalog import FakeCatalog
from tests.conftest import free_port

ADMIN = "cli-admin-token"


class Server:
    """One listener over `data_dir`; `restart()` is a new process-equivalent (new app, store, loop)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        settings = Settings(data_dir=self.data_dir, admin_token=ADMIN, port=self.port)
        migrate(settings.db_url)
        with sqlite3.connect(self.data_dir / "podium.db") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO tokens (id, name, scopes, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                ("tok-cli", "cli", "admin", sha256_hex(ADMIN), time.time()),
            )
        store = Store(settings.db_url)
        catalog = FakeCatalog()
        validator = SourceValidator(catalog, FakeBackend.name)  # the fake stands in for any runtime, images too
        endpoints = EndpointService(store, lambda _id=None: None, validator)
        app = create_app(Services(settings, TokenService(store), endpoints, catalog=catalog, runtime=FakeBackend()))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("control plane did not start")

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Cli:
    server: Server
    runner: CliRunner

    def env(self) -> dict[str, str]:
        return {"PODIUM_URL": self.server.url, "PODIUM_API_TOKEN": ADMIN}

    def __call__(self, *args: str, ok: bool = True) -> Any:
        result = self.runner.invoke(cli_app, list(args), env=self.env())
        if ok and result.exit_code != 0:
            raise AssertionError(f"podium {' '.join(args)} -> {result.exit_code}: {result.output}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--format", "json").stdout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def cli(server: Server) -> Cli:
    return Cli(server, CliRunner())
