"""A rolling restart of HA controllers (two `podium up --role controller` on one throwaway PostgreSQL):
SIGTERM of the leader hands off. The standby leads within about a second (the lease is released at
once, not left to expire), adopts the very same replica process (same id, same pid, never restarted),
and requests through a gateway succeed throughout. The api role (no --controller-url: it finds the
leader in the lease) shows the replica's engine numbers from the controller before and after."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, PODIUM, assert_no_replicas_left, fake_worker_command, replica_pids
from tests.e2e.test_leader_roles import AUTH, internal_status, until
from tests.e2e.test_split_roles import wait_healthy
from tests.store.postgres import pg_bin, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here"),
]


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_server(free_port()) as url:
        yield url


class Load:
    """Chat completions through a gateway with the real openai client, back to back, in a thread:
    counts successes and failures and records which replica process (pid) answered each."""

    def __init__(self, gateway: str, model: str) -> None:
        self.client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=ADMIN, max_retries=0, timeout=10)
        self.model, self.ok, self.failures, self.pids = model, 0, [], set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self.client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
                )
                self.pids.add(resp.model_dump()["podium_fake"]["pid"])
                self.ok += 1
            except openai.OpenAIError as exc:
                self.failures.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)


def serving(api: httpx.Client, endpoint_id: str) -> list[dict[str, Any]] | None:
    status = api.get(f"/v0/endpoints/{endpoint_id}").json()["status"]
    return status["instances"] if status["state"] == "serving" else None


def engine_of(api: httpx.Client, endpoint_id: str) -> dict[str, Any] | None:
    status = api.get(f"/v0/endpoints/{endpoint_id}").json()["status"]
    inst = status["instances"][0]["engine"] if status["instances"] else None
    return status["engine"] if status["engine"] and inst and inst["waiting"] == 3 else None


def test_sigterm_of_the_leader_hands_off_without_stopping_replicas(tmp_path: Path, database: str) -> None:
    data, mark = tmp_path / "data", tmp_path.name
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN, "PODIUM_DATABASE_URL": database}
    ports = {name: free_port() for name in ("ctl-a", "ctl-b", "api", "gw")}
    roles = {"ctl-a": "controller", "ctl-b": "controller", "api": "api", "gw": "gateway"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, role in roles.items():
            url = f"http://127.0.0.1:{ports[name]}"
            args = [*PODIUM, "up", "--role", role, "--port", str(ports[name]), "--data-dir", str(data)]
            log = (tmp_path / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(
                [*args, "--advertise-url", url], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        for name in roles:
            wait_healthy(procs[name], ports[name], tmp_path / f"{name}.log")
        leading = until(
            lambda: [n for n in ("ctl-a", "ctl-b") if internal_status(ports[n]) == 200] or None, 20, "a leader"
        )
        leader = leading[0]
        other = "ctl-b" if leader == "ctl-a" else "ctl-a"
        gw = f"http://127.0.0.1:{ports['gw']}"

        with httpx.Client(base_url=f"http://127.0.0.1:{ports['api']}", headers=AUTH, timeout=30) as api:
            body = {"name": "roll", "container": {"command": fake_worker_command(), "env": {"PODIUM_TEST_MARK": mark}}}
            ep = api.post("/v0/endpoints", json=body).json()
            [inst] = until(lambda: serving(api, ep["id"]), 30, "a ready replica")
            httpx.post(
                f"http://{inst['address']}/admin/engine", json={"waiting": 3, "kv_cache": 0.25}
            ).raise_for_status()
            load_before = until(lambda: engine_of(api, ep["id"]), 20, "status.engine in the api role")
            assert (load_before["waiting"], load_before["kv_cache_max"]) == (3, 0.25)
            pid = int(httpx.get(f"http://{inst['address']}/admin/stats", timeout=2).json()["pid"])

            with Load(gw, ep["routing_key"]) as load:
                until(lambda: load.ok >= 20, 30, "traffic through the gateway")
                procs[leader].send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                until(lambda: internal_status(ports[other]) == 200, 10, "the standby leading")
                took_over = time.monotonic() - signalled
                procs[leader].wait(20)
                exited = time.monotonic() - signalled
                events = f"/v0/endpoints/{ep['id']}/events"
                until(
                    lambda: any(e["kind"] == "replica_adopted" for e in api.get(events).json()["events"]), 20, "adopted"
                )
                served = load.ok
                until(lambda: load.ok >= served + 50, 30, "traffic after the hand-off")
            assert procs[leader].returncode == 0
            assert load.failures == [], load.failures[:5]
            assert load.pids == {pid}  # every request answered by the one replica process
            assert pid in replica_pids(mark)
            after = api.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]
            assert [(i["id"], i["started_at"]) for i in after] == [(inst["id"], inst["started_at"])]
            kinds = [e["kind"] for e in api.get(events).json()["events"]]
            assert kinds.count("replica_started") == 1 and "replica_stopped" not in kinds, kinds
            load_after = until(lambda: engine_of(api, ep["id"]), 20, "status.engine from the new leader")
            assert load_after["replicas"] == 1

            api.delete(f"/v0/endpoints/{ep['id']}").raise_for_status()  # the new leader stops what it adopted
            assert_no_replicas_left(mark, timeout=30)
        print(
            f"\nhand-off after SIGTERM: standby leads in {took_over:.2f}s, old leader exited in {exited:.2f}s; "
            f"{load.ok} requests, 0 failed, 1 replica process throughout"
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for left in replica_pids(mark):  # controllers on a database leave replicas running by design
            os.kill(left, signal.SIGKILL)
