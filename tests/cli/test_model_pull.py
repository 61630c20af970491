"""`podium model pull` against a model hub on 127.0.0.1 (tests/cli/fake_hub.py, a real process
speaking the hub's two routes), into the region's cache that a real control-plane listener names.

Proven here: the hub's HTTP API (listing, resolve), the HF cache layout (refs/main, snapshots/SHA),
resume by file (a second pull downloads nothing), gated repos with HF_TOKEN (never printed),
progress, the CLI's region lookup. Not proven here: huggingface.co itself (no network).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from podium.api.app import create_app
from podium.api.deps import Services
from podium.catalog import Catalog
from podium.catalog.model_cache import PullError, cache_report, cached_snapshot, pull
from podium.cli.main import app as cli_app
from podium.runtime.fake import FakeBackend
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService, sha256_hex
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from tests.cli.conftest import ADMIN
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
HF_TOKEN = "hf_gated_token_never_printed"
BIG = bytes(range(256)) * 6000  # 1.5 MB: more than one chunk


def make_repos(root: Path) -> None:
    tiny = root / "org" / "tiny"
    (tiny / "sub").mkdir(parents=True)
    (tiny / "config.json").write_text('{"max_position_embeddings": 2048}')
    (tiny / "model.safetensors").write_bytes(BIG)
    (tiny / "sub" / "tokenizer.json").write_text("{}")
    gated = root / "org" / "gated"
    gated.mkdir(parents=True)
    (gated / "config.json").write_text("{}")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[str]:
    repos = tmp_path / "repos"
    make_repos(repos)
    argv = [sys.executable, "-m", "tests.cli.fake_hub", str(repos), "--gated", f"org/gated={HF_TOKEN}"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_pull_fills_the_hf_cache_and_a_second_pull_downloads_nothing(hub: str, tmp_path: Path) -> None:
    home = tmp_path / "hf"
    seen: list[tuple[int, int]] = []
    assert "model cache miss" in cache_report(str(home), "org/tiny")
    first = pull("org/tiny", home, hub=hub, progress=lambda _n, done, total: seen.append((done, total)))
    snap = cached_snapshot(home, "org/tiny")
    assert snap == first.snapshot and (snap / "model.safetensors").read_bytes() == BIG
    assert (snap / "sub" / "tokenizer.json").read_text() == "{}"
    assert (home / "hub" / "models--org--tiny" / "refs" / "main").read_text() == first.commit
    assert first.files == 3 and first.downloaded_bytes == first.total_bytes > len(BIG)
    assert seen[-1] == (first.total_bytes, first.total_bytes) and len(seen) > 3  # progress within the big file
    assert not list(snap.rglob("*.incomplete"))
    again = pull("org/tiny", home, hub=hub)
    assert again.downloaded_bytes == 0 and again.commit == first.commit
    assert "model cache hit" in cache_report(str(home), "org/tiny")


def test_gated_repos_need_the_token(hub: str, tmp_path: Path) -> None:
    with pytest.raises(PullError, match=r"gated or private.*set HF_TOKEN"):
        pull("org/gated", tmp_path, hub=hub)
    assert pull("org/gated", tmp_path, hub=hub, token=HF_TOKEN).files == 1
    with pytest.raises(PullError, match="is not on"):
        pull("org/nothing", tmp_path, hub=hub)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real control plane whose `local` region has a model cache; yields (url, cache dir)."""
    cache = tmp_path / "region-cache"
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "region.yaml").write_text(f"regions:\n  - name: local\n    model_cache_dir: {cache}\n")
    catalog = Catalog.load([ops], detect_gpus=lambda: None, cpu_count=lambda: 2)
    port = free_port()
    settings = Settings(data_dir=tmp_path, admin_token=ADMIN, port=port)
    migrate(settings.db_url)
    with sqlite3.connect(tmp_path / "podium.db") as conn:
        conn.execute(
            "INSERT INTO tokens (id, name, scopes, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
            ("tok-cli", "cli", "admin", sha256_hex(ADMIN), time.time()),
        )
    store = Store(settings.db_url)
    endpoints = EndpointService(store, lambda _id=None: None, SourceValidator(catalog, "local"))
    app = create_app(Services(settings, TokenService(store), endpoints, catalog=catalog, runtime=FakeBackend()))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.02)
        yield url, cache
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_cli_pulls_into_the_regions_cache_without_printing_the_token(
    hub: str, listener: tuple[str, Path], tmp_path: Path
) -> None:
    url, cache = listener
    env = {"PODIUM_URL": url, "HF_ENDPOINT": hub, "HF_TOKEN": HF_TOKEN, "PODIUM_API_TOKEN": ADMIN}
    runner = CliRunner()
    res = runner.invoke(cli_app, ["model", "pull", "org/gated"], env=env)
    assert res.exit_code == 0, res.output
    assert "pulled org/gated@" in res.output and str(cache) in res.output
    assert HF_TOKEN not in res.output and cached_snapshot(cache, "org/gated") is not None
    res = runner.invoke(cli_app, ["model", "pull", "org/tiny", "--region", "local"], env=env)
    assert res.exit_code == 0 and "3 files" in res.output and "MB downloaded" in res.output, res.output
    assert "100%" in res.output  # the progress (not a terminal: every 10%)
    again = runner.invoke(cli_app, ["model", "pull", "org/tiny"], env=env)
    assert again.exit_code == 0 and "all already cached" in again.output
    missing = runner.invoke(
        cli_app, ["model", "pull", "org/gated", "--cache-dir", str(tmp_path / "x")], env={**env, "HF_TOKEN": ""}
    )
    assert missing.exit_code == 1 and "set HF_TOKEN" in missing.output
    nowhere = runner.invoke(cli_app, ["model", "pull", "org/tiny", "--region", "mars"], env=env)
    assert nowhere.exit_code == 1 and "mars" in nowhere.output
