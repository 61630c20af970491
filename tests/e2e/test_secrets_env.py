"""Env from secrets is resolved when a replica starts: a new version reaches the next replica, the
value never appears in the API, and `--token-secret` makes the endpoint's token."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.conftest import PYTHON
from tests.e2e.conftest import ADMIN, Podium

SERVER = f"{PYTHON} {Path(__file__).with_name('replica_server.py')} $PORT"


def env_of(p: Podium, app: str, name: str) -> str | None:
    r = httpx.get(f"{p.url}/e/{app}/env", params={"name": name}, headers={"Authorization": f"Bearer {ADMIN}"})
    return r.json()["value"]


def test_env_secret_resolved_at_replica_start(podium: Podium) -> None:
    with podium.http() as h:
        assert h.post("/v0/secrets", json={"name": "hf", "payload": {"HF_TOKEN": "v1-secret"}}).status_code == 201
    ep = podium.cli_json(
        "endpoint",
        "create",
        "--name",
        "sec",
        "--container-command",
        SERVER,
        "--env",
        f"PODIUM_TEST_MARK={podium.mark}",
        "--env-secret",
        "HF_TOKEN=hf",
    )
    podium.wait_state(ep["id"], "serving")
    assert env_of(podium, ep["app_name"], "HF_TOKEN") == "v1-secret"
    shown = podium.cli("endpoint", "get", ep["id"], "--format", "json").stdout
    assert "v1-secret" not in shown
    with podium.http() as h:
        assert h.post("/v0/secrets/hf/versions", json={"payload": {"HF_TOKEN": "v2-secret"}}).status_code == 201
    podium.cli("endpoint", "update", ep["id"], "--env", "ROLL=1")  # a new generation: replicas roll
    deadline = time.monotonic() + 15
    while env_of(podium, ep["app_name"], "HF_TOKEN") != "v2-secret":
        assert time.monotonic() < deadline, "the rolled replica did not get the new secret version"
        time.sleep(0.1)


def test_token_secret_is_the_endpoint_token(podium: Podium) -> None:
    with podium.http() as h:
        h.post("/v0/secrets", json={"name": "ep-token", "payload": {"AUTH_TOKEN": "tok-from-secret"}})
    ep = podium.cli_json(
        "endpoint",
        "create",
        "--name",
        "tok",
        "--container-command",
        SERVER,
        "--env",
        f"PODIUM_TEST_MARK={podium.mark}",
        "--token-secret",
        "ep-token",
    )
    podium.wait_state(ep["id"], "serving")
    url = f"{podium.url}/e/{ep['app_name']}/ping"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer tok-from-secret"}).status_code == 200
