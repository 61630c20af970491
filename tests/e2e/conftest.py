"""End-to-end: `podium up` as a real process, driven by the real CLI and the real `openai` client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, REPO, free_port

ADMIN = "e2e-admin-token"
PODIUM = [PYTHON, "-m", "podium.cli.main"]


@dataclass
class Podium:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]
    mark: str  # put in replicas' env (`--env PODIUM_TEST_MARK=…`) to find their processes

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*PODIUM, *args], env=self.env, capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"podium {' '.join(args)} failed ({res.returncode}): {res.stderr}{res.stdout}")
        return res

    def cli_json(self, *args: str) -> dict:
        return json.loads(self.cli(*args, "--format", "json").stdout)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)

    def wait_state(self, endpoint_id: str, state: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self.http() as h:
            while True:
                ep = h.get(f"/v0/endpoints/{endpoint_id}").json()
                if ep["status"]["state"] == state:
                    return ep
                if time.monotonic() > deadline:
                    raise AssertionError(f"{endpoint_id} never reached {state}: {ep['status']}")
                time.sleep(0.05)


def start_podium(data_dir: Path, port: int) -> Podium:
    env = {
        **os.environ,
        "PODIUM_ADMIN_TOKEN": ADMIN,
        "PODIUM_API_TOKEN": ADMIN,
        "PODIUM_URL": f"http://127.0.0.1:{port}",
    }
    log = open(data_dir.parent / f"podium-{port}.log", "ab")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [*PODIUM, "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"podium up exited: {(data_dir.parent / f'podium-{port}.log').read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Podium(url, data_dir, proc, env, data_dir.parent.name)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("podium up did not serve /healthz within 30 s")


def stop_podium(p: Podium, sig: int = signal.SIGTERM) -> None:
    if p.proc.poll() is None:
        p.proc.send_signal(sig)
        try:
            p.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[Podium]:
    data_dir = tmp_path / "data"
    p = start_podium(data_dir, free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


def replica_pids(mark: str) -> list[int]:
    """Processes whose environment carries this test's mark (tests pass `--env PODIUM_TEST_MARK=…`)."""
    needle = f"PODIUM_TEST_MARK={mark}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def assert_no_replicas_left(mark: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while replica_pids(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert replica_pids(mark) == [], "replica processes left running"


def fake_worker_command(extra: str = "") -> str:
    return f"{PYTHON} -m podium.worker.fake --port $PORT {extra}".strip()


def create_endpoint(p: Podium, name: str, command: str, *flags: str, env: tuple[str, ...] = ()) -> dict:
    """A container endpoint via the real CLI, its replicas marked so the test can find their processes."""
    marks = ",".join([f"PODIUM_TEST_MARK={p.mark}", *env])
    return p.cli_json(
        "endpoint",
        "create",
        "--name",
        name,
        "--container-command",
        command,
        "--health-check-path",
        "/health",
        "--env",
        marks,
        *flags,
    )


def create_fake(p: Podium, name: str, *flags: str) -> dict:
    """A container endpoint whose replica is the fake OpenAI worker."""
    return create_endpoint(p, name, fake_worker_command(), "--container-port", "8000", *flags)
