"""A real `podium up` over a data dir in a bad state: its bootstrap admin token revoked (start used to
crash on the unique hash) and files left world-readable by an older version (0644 -> 0600, data dir
0700). The generated admin token is never printed (its output often ends up in podium.log)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, REPO, free_port

PODIUM = [PYTHON, "-m", "podium.cli.main"]


class Up:
    """One `podium up` process on a free port; its output goes to `log`."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("PODIUM_ADMIN_TOKEN", "PODIUM_MASTER_KEY")}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*PODIUM, "up", "--port", str(self.port), "--data-dir", str(data_dir)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"podium up exited: {log.read_text()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "podium up did not serve /healthz within 30 s"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def ups() -> Iterator[list[Up]]:
    started: list[Up] = []
    try:
        yield started
    finally:
        for up in started:
            up.stop()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow  # two `podium up` starts: ~25 s on a loaded 2-core machine
@pytest.mark.e2e
def test_restart_after_bootstrap_revoked_with_loose_modes(tmp_path: Path, ups: list[Up]) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "podium.log"
    ups.append(Up(data_dir, log))
    token = (data_dir / "admin_token").read_text().strip()
    output = log.read_text()
    assert "admin token created" in output and str(data_dir / "admin_token") in output
    assert token not in output  # where it is, never the token itself

    admin = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=ups[0].url, headers=admin, timeout=10) as h:
        boot = next(t["id"] for t in h.get("/v0/tokens").json()["tokens"] if t["name"] == "bootstrap-admin")
        assert h.delete(f"/v0/tokens/{boot}").status_code == 409  # the last admin token
        ops = h.post("/v0/tokens", json={"name": "ops", "scopes": ["admin"]}).json()
        body = {"name": "e", "container": {"command": "true"}, "scaling": {"min_replicas": 0}}
        assert h.post("/v0/endpoints", json=body).status_code == 201
        assert h.delete(f"/v0/tokens/{boot}").status_code == 204
    ups[0].stop()

    data_dir.chmod(0o755)  # what an older version left
    db_files = [p for p in data_dir.glob("podium.db*") if p.is_file() and not p.name.endswith(".lock")]
    assert any(p.name == "podium.db" for p in db_files)
    for p in db_files:
        p.chmod(0o644)

    ups.append(Up(data_dir, log))  # used to exit: IntegrityError UNIQUE constraint failed: tokens.sha256
    assert _mode(data_dir) == 0o700
    for p in data_dir.glob("podium.db*"):
        if p.is_file() and not p.name.endswith(".lock"):
            assert _mode(p) == 0o600, p
    with httpx.Client(base_url=ups[1].url, timeout=10) as h:
        assert h.get("/v0/endpoints", headers=admin).status_code == 200  # re-activated
        ops_auth = {"Authorization": f"Bearer {ops['token']}"}
        assert [e["name"] for e in h.get("/v0/endpoints", headers=ops_auth).json()["endpoints"]] == ["e"]
    assert token not in log.read_text()
