"""`podium up` with the `local` region on the docker runtime: a container endpoint from an image runs in
the engine (Debian podman's Docker API here) and answers through the gateway. Skipped where podman or
the test image is missing (scripts/ci-podman.sh installs podman and builds it)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, start_podium, stop_podium
from tests.podman import IMAGE, engine_ready, podman_service

pytestmark = pytest.mark.skipif(not engine_ready(), reason=f"needs podman and the image {IMAGE}")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[str]:
    with podman_service(tmp_path / "engine.sock") as url:
        yield url


def test_image_endpoint_runs_in_the_engine(tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    (data_dir / "catalog" / "region.yaml").write_text("regions:\n  - name: local\n    runtime: docker\n")
    monkeypatch.setenv("DOCKER_HOST", engine)
    p = start_podium(data_dir, free_port())
    try:
        ep = p.cli_json(
            "endpoint",
            "create",
            "--name",
            "boxed",
            "--image",
            IMAGE,
            "--container-command",
            "python3 -m http.server 8000",
            "--container-port",
            "8000",
            "--health-check-path",
            "/",
            "--env",
            "PORT=9999",  # replaced by the container port: warned, not silent
        )
        served = p.wait_state(ep["id"], "serving", timeout=60)
        with p.http() as h:
            kinds = {e["kind"]: e["message"] for e in h.get(f"/v0/endpoints/{ep['id']}/events").json()["events"]}
        assert "env.PORT='9999' is replaced" in kinds.get("env_port_replaced", ""), kinds
        assert served["status"]["instances"][0]["address"]
        resp = httpx.get(f"{p.url}/e/{ep['app_name']}/", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert resp.status_code == 200 and "Directory listing" in resp.text
        names = subprocess.run(
            ["podman", "--url", engine, "ps", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            env={**os.environ},
        ).stdout
        assert any(ep["id"] in n or "podium" in n for n in names.splitlines()), names
        with p.http() as h:
            h.delete(f"/v0/endpoints/{ep['id']}")
            deadline = time.monotonic() + 30
            while h.get(f"/v0/endpoints/{ep['id']}").status_code != 404:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        stop_podium(p)
