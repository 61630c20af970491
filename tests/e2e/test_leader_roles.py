"""Two `podium up --role controller` on one throwaway PostgreSQL (issue 12 item 5): exactly one leads
(the other answers 503 on /internal/v0); a gateway and an api started without --controller-url find
the leader in the lease; `kill -9` of the leader: the other leads within 10 s, adopts the replica
without restarting it, and the gateway follows it and serves again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, PODIUM, assert_no_replicas_left, fake_worker_command, replica_pids
from tests.e2e.test_split_roles import chat, wait_healthy
from tests.store.postgres import pg_bin, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here"),
]

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.1)
    return got


def internal_status(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/internal/v0/routes", headers=AUTH, timeout=2).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_server(free_port()) as url:
        yield url


def test_controller_failover_keeps_replicas_and_followers_find_the_leader(tmp_path: Path, database: str) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN, "PODIUM_DATABASE_URL": database}
    ports = {name: free_port() for name in ("ctl-a", "ctl-b", "api", "gw")}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str) -> None:
        role = {"ctl-a": "controller", "ctl-b": "controller"}.get(name, name.replace("gw", "gateway"))
        url = f"http://127.0.0.1:{ports[name]}"
        args = [*PODIUM, "up", "--role", role, "--port", str(ports[name]), "--data-dir", str(data)]
        log = (tmp_path / f"{name}.log").open("ab")
        procs[name] = subprocess.Popen([*args, "--advertise-url", url], env=env, stdout=log, stderr=subprocess.STDOUT)

    try:
        for name in ports:
            spawn(name)
        for name in ports:
            wait_healthy(procs[name], ports[name], tmp_path / f"{name}.log")
        leading = until(
            lambda: sorted(n for n in ("ctl-a", "ctl-b") if internal_status(ports[n]) == 200) or None, 20, "a leader"
        )
        assert len(leading) == 1, leading
        leader = leading[0]
        other = "ctl-b" if leader == "ctl-a" else "ctl-a"
        assert internal_status(ports[other]) == 503

        with httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", headers=AUTH, timeout=30) as api:
            body = {
                "name": "ha",
                "container": {"command": fake_worker_command(), "env": {"PODIUM_TEST_MARK": tmp_path.name}},
            }
            ep = api.post("/v0/endpoints", json=body).json()
            gw = f"http://127.0.0.1:{ports['gw']}"
            until(lambda: chat(gw, ep["routing_key"], timeout=5).status_code == 200, 30, "served via the gateway")
            before = [
                (i["id"], i["started_at"]) for i in api.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]
            ]

            procs[leader].send_signal(signal.SIGKILL)
            procs[leader].wait(10)
            killed = time.monotonic()
            until(lambda: internal_status(ports[other]) == 200, 10, "the other controller leading")
            took = time.monotonic() - killed
            until(lambda: chat(gw, ep["routing_key"], timeout=5).status_code == 200, 20, "served after the failover")
            after = [
                (i["id"], i["started_at"]) for i in api.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]
            ]
            assert after == before, (before, after)  # adopted, not restarted
            hinted = api.patch(f"/v0/endpoints/{ep['id']}", json={"description": "after failover"})
            assert hinted.status_code == 200, hinted.text  # the api found the new leader for its writes
            api.delete(f"/v0/endpoints/{ep['id']}").raise_for_status()  # the leader stops the replica: a
            assert_no_replicas_left(tmp_path.name, timeout=30)  # controller's SIGTERM leaves it to adopt
        print(f"\ncontroller failover after kill -9: {took:.2f}s")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for left in replica_pids(tmp_path.name):  # a failed run's replica (SIGTERM leaves it running)
            os.kill(left, signal.SIGKILL)
