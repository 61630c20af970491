"""The control plane inside a real `podium up`: an endpoint token kept in a secret guards the data
plane, rotates with a new version, and secrets, volumes and endpoints survive a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import Podium, assert_no_replicas_left, start_podium, stop_podium

REPLICA = f"{PYTHON} {Path(__file__).parents[1] / 'e2e' / 'replica_server.py'} $PORT"


def _status(p: Podium, app: str, token: str) -> int:
    with httpx.Client(timeout=10) as c:
        return c.get(f"{p.url}/e/{app}/health", headers={"Authorization": f"Bearer {token}"}).status_code


def _eventually(check, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.e2e
def test_token_secret_rotation_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    p = start_podium(data_dir, free_port())
    try:
        p.cli("secret", "create", "--name", "ep-auth", "--value", "AUTH_TOKEN=first-token")
        p.cli("volume", "create", "--name", "shared")
        ep = p.cli_json(
            "endpoint", "create", "--name", "guarded", "--container-command", REPLICA, "--token-secret", "ep-auth",
            "--volume", "shared:/shared", "--env", f"PODIUM_TEST_MARK={p.mark}",
        )  # fmt: skip
        p.wait_state(ep["id"], "serving", timeout=30)
        app = ep["app_name"]
        assert _status(p, app, "first-token") == 200 and _status(p, app, "wrong") == 401
        with httpx.Client(timeout=10, headers={"Authorization": "Bearer first-token"}) as c:
            mounted = c.get(f"{p.url}/e/{app}/env", params={"name": "PODIUM_VOLUME_SHARED"}).json()["value"]
        assert mounted == str(data_dir / "volumes" / "shared")  # the named volume reached the replica
        with p.http() as h:  # plain HTTP from here: each CLI process costs ~0.7 s of start-up
            assert h.post("/v0/secrets/ep-auth/versions", json={"payload": {"AUTH_TOKEN": "second-token"}}).is_success
            assert _eventually(lambda: _status(p, app, "second-token") == 200)
            assert _status(p, app, "first-token") == 401
            assert h.delete("/v0/secrets/ep-auth").status_code == 409  # in use
        stop_podium(p)
        p = start_podium(data_dir, free_port())
        with p.http() as h:
            assert [e["id"] for e in h.get("/v0/endpoints").json()["endpoints"]] == [ep["id"]]
            assert h.get("/v0/secrets/ep-auth").json()["latest_version"] == 2
            assert h.get("/v0/volumes/shared").json()["used_by"] == [ep["id"]]
        p.wait_state(ep["id"], "serving", timeout=30)
        assert _status(p, app, "second-token") == 200  # the token (a hash) and the key survived
        listed = p.cli("endpoint", "get", ep["id"], "--format", "yaml").stdout
        assert "second-token" not in listed and "first-token" not in listed
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)
    logs = "".join(f.read_text(errors="replace") for f in tmp_path.glob("podium-*.log"))
    assert "first-token" not in logs and "second-token" not in logs  # never logged
