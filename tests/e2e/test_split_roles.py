"""`podium up --role controller|api|gateway`: the same flows with the parts in separate processes that
talk over HTTP — one controller, one api, two gateways following it; and a token's rate limit holding
across the two gateways together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

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


@dataclass
class Cluster:
    """Split-role processes on one data dir, started, killed and restarted by name."""

    tmp: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def mark(self) -> str:
        return self.tmp.name

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, *names: str) -> None:
        """Start roles by name ("controller", "api", "gw…"), then wait until each serves /healthz."""
        for name in names:
            role = "gateway" if name.startswith("gw") else name
            port = self.ports.setdefault(name, free_port())
            controller = None if role == "controller" else self.url("controller")
            self.procs[name] = spawn(role, self.tmp / "data", port, self.tmp / f"{name}.log", controller)
        for name in names:
            wait_healthy(self.procs[name], self.ports[name], self.tmp / f"{name}.log")

    def kill9(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait(10)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url("api"), headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)

    def create_fake(self, name: str) -> dict:
        with self.api() as api:
            env = {"PODIUM_TEST_MARK": self.mark}
            resp = api.post(
                "/v0/endpoints", json={"name": name, "container": {"command": fake_worker_command(), "env": env}}
            )
            assert resp.status_code == 201, resp.text
            return resp.json()

    def stop_all(self) -> None:
        for p in reversed(self.procs.values()):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


@contextlib.contextmanager
def running_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A `Cluster` whose processes are all ended afterwards, and their replicas with them."""
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop_all()
        assert_no_replicas_left(c.mark)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as c:
        yield c


def chat(url: str, model: str, token: str = ADMIN, timeout: float = 30) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )


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


@pytest.mark.slow  # four processes and 60 requests: ~15-40 s on 2 busy cores
def test_two_gateways_together_allow_a_tokens_rate_not_twice_it(cluster: Cluster) -> None:
    """A token limited to 20 requests a minute, sent to two gateways at once: the controller splits its
    rate between them, so together they admit about 20 (each alone used to admit 20)."""
    cluster.start("controller")  # first: it migrates the database the others share
    cluster.start("api", "gw1", "gw2")
    with cluster.api() as api:
        limited = api.post("/v0/tokens", json={"name": "app", "scopes": ["inference"], "rate_limit_rpm": 20}).json()
    ep = cluster.create_fake("limited")  # open endpoint: the limit follows the token
    gateways = [cluster.url("gw1"), cluster.url("gw2")]
    for url in gateways:  # both follow the routes (held until the replica is ready)
        assert chat(url, ep["routing_key"]).status_code == 200
    admitted = {url: 0 for url in gateways}
    body = {"model": ep["routing_key"], "messages": [{"role": "user", "content": "hi"}]}
    clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {limited['token']}"}) for url in gateways]
    t0 = time.monotonic()
    for _ in range(30):
        for url, client in zip(gateways, clients, strict=True):
            r = client.post("/v1/chat/completions", json=body, timeout=30)
            assert r.status_code in (200, 429), r.text
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "rate_limit_exceeded"
            admitted[url] += r.status_code == 200
    refilled = (time.monotonic() - t0) * 20 / 60  # the rate comes back while the requests are sent
    for client in clients:
        client.close()
    total = sum(admitted.values())
    assert 16 <= total <= 22 + refilled < 40, (admitted, refilled)  # each gateway alone used to admit 20
    assert all(n >= 5 for n in admitted.values()), admitted  # each gateway had a fair share
