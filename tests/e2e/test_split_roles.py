"""`podium up --role controller|api|gateway`: the same flows with the parts in separate processes that
talk over HTTP — one controller, one api, two gateways following it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import openai

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, PODIUM, assert_no_replicas_left, fake_worker_command


def spawn(role: str, data_dir: Path, port: int, log: Path, controller: str | None = None) -> subprocess.Popen[bytes]:
    args = [*PODIUM, "up", "--role", role, "--port", str(port), "--data-dir", str(data_dir)]
    if controller:
        args += ["--controller-url", controller]
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
    return subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited: {log.read_text()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"{proc.args} never served /healthz")


def test_controller_api_and_two_gateways(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mark = tmp_path.name
    ports = {role: free_port() for role in ("controller", "api", "gw1", "gw2")}
    ctl_url = f"http://127.0.0.1:{ports['controller']}"
    roles = {"controller": "controller", "api": "api", "gw1": "gateway", "gw2": "gateway"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, role in roles.items():  # the others start while the controller does: they retry until it answers
            log = tmp_path / f"{name}.log"
            procs.append(spawn(role, data, ports[name], log, None if role == "controller" else ctl_url))
        for proc, name in zip(procs, roles, strict=True):
            wait_healthy(proc, ports[name], tmp_path / f"{name}.log")
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{ports['api']}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )
        ep = api.post(
            "/v0/endpoints",
            json={"name": "split", "container": {"command": fake_worker_command(), "env": {"PODIUM_TEST_MARK": mark}}},
        ).json()
        for gw in ("gw1", "gw2"):  # the create answered after the controller published: held, then served
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{ports[gw]}/v1", api_key=ADMIN)
            reply = client.chat.completions.create(
                model=ep["routing_key"], messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content
        assert api.get(f"/v0/endpoints/{ep['id']}").json()["status"]["state"] == "serving"

        api.post(f"/v0/endpoints/{ep['id']}/stop")
        stopped = httpx.post(
            f"http://127.0.0.1:{ports['gw1']}/v1/chat/completions",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"model": ep["routing_key"], "messages": []},
            timeout=10,
        )
        assert stopped.status_code == 404 and "stopped" in stopped.text

        token = api.post("/v0/tokens", json={"name": "late", "scopes": ["inference"]}).json()["token"]
        api.post(f"/v0/endpoints/{ep['id']}/start")
        late = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['gw2']}/v1", api_key=token)
        assert late.chat.completions.create(model=ep["routing_key"], messages=[{"role": "user", "content": "x"}])
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert_no_replicas_left(mark)
