"""`podium up` with two regions at once: `local` (host processes) and `gpu` on a simulated Ray cluster
(a head and two worker nodes with two fake H100 each, tests/ray_cluster.py). Issue 12: an endpoint in
each region answers through the OpenAI client; Ray replicas spread over both nodes and say where they
run (node, private_ip); a controller killed with -9 adopts them on restart without restarting them; a
worker node killed mid-load has its replica replaced on the surviving node while the other answers."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, create_fake, start_podium, stop_podium
from tests.ray_cluster import RayCluster, new_cluster, ray_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not ray_available(), reason="ray is not installed (scripts/ci-ray.sh installs it)"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    c = new_cluster()
    try:
        c.start_head()
        c.add_worker(gpus=2, accelerator="H100")
        c.add_worker(gpus=2, accelerator="H100")
        yield c
    finally:
        c.shutdown()


@pytest.fixture
def podiums(cluster: RayCluster, tmp_path: Path) -> Iterator[Callable[[], Podium]]:
    """`podium up` on one data dir (called again: a restart) with the regions local and gpu (Ray)."""
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    (data_dir / "catalog" / "regions.yaml").write_text(
        "regions:\n"
        "  - name: local\n    runtime: local\n"
        f"  - name: gpu\n    runtime: ray\n    ray_address: {cluster.address}\n"
        f"    ray_node_dir: {cluster.node_dir}\n"  # no inventory: it comes from the cluster's nodes
    )
    started: list[Podium] = []

    def start() -> Podium:
        p = start_podium(data_dir, free_port())
        started.append(p)
        until(lambda: gpu_region(p)["inventory"].get("h100") == 4, 30, "the Ray nodes' GPUs in the inventory")
        return p

    try:
        yield start
    finally:
        for p in started:
            stop_podium(p)


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.1)
    return got


def gpu_region(p: Podium) -> dict[str, Any]:
    with p.http() as h:
        got: dict[str, Any] = h.get("/v0/regions/gpu").json()
    return got


def ready_instances(p: Podium, endpoint_id: str) -> list[dict[str, Any]]:
    with p.http() as h:
        st = h.get(f"/v0/endpoints/{endpoint_id}").json()["status"]
    return [i for i in st["instances"] if i["state"] == "ready"]


def ray_endpoint(p: Podium, name: str, replicas: int) -> dict[str, Any]:
    n = str(replicas)
    return create_fake(
        p, name, "--region", "gpu", "--gpu-type", "h100", "--gpu-count", "1", "--min-replicas", n, "--max-replicas", n
    )


def ask(p: Podium, model: str) -> str:
    client = openai.OpenAI(base_url=f"{p.url}/v1", api_key=ADMIN, max_retries=0, timeout=30)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return reply.choices[0].message.content or ""


def answers(p: Podium, model: str) -> bool:
    """An answer through the gateway (False while the route is not published yet)."""
    try:
        return bool(ask(p, model))
    except openai.NotFoundError:
        return False


def test_two_regions_answer_and_ray_replicas_spread_over_nodes(podiums: Callable[[], Podium]) -> None:
    p = podiums()
    here = create_fake(p, "here")
    there = ray_endpoint(p, "there", 2)
    t0 = time.monotonic()
    spread = until(lambda: len(r := ready_instances(p, there["id"])) == 2 and r, 90, "two ready Ray replicas")
    create_to_ready = time.monotonic() - t0
    assert len({i["node"] for i in spread}) == 2 and all(i["node"] for i in spread), spread  # one per node
    assert all(i["private_ip"] and i["address"] == f"{i['private_ip']}:{i['port']}" for i in spread), spread
    until(lambda: ready_instances(p, here["id"]), 30, "the local replica ready")
    assert ready_instances(p, here["id"])[0]["node"] == ""
    assert ask(p, there["routing_key"]) and ask(p, here["routing_key"])
    region = gpu_region(p)
    assert region["runtime"] == "ray" and region["data_plane_url"] is None
    workers = [n for n in region["nodes"] if n["gpu_type"] == "h100" and n["alive"]]
    assert len(workers) == 2 and all(n["gpus_total"] == 2 for n in workers), region["nodes"]
    until(lambda: [n["gpus_free"] for n in gpu_region(p)["nodes"] if n["gpu_type"]] == [1, 1], 10, "GPUs in use")
    shown = p.cli("region", "get", "gpu").stdout
    assert "gpus used" in shown.lower() and len(re.findall(r"h100\s+1/2", shown)) == 2, shown
    with p.http() as h:  # a GPU type no node has: refused at create, as on the local runtime
        body = {
            "name": "nope",
            "container": {"command": "x"},
            "compute": {"region": "gpu", "gpu_type": "a100", "gpu_count": 1},
        }
        refused = h.post("/v0/endpoints", json=body)
    assert refused.status_code == 409 and "a100" in refused.text, refused.text
    print(f"\nray: create -> 2 replicas ready {create_to_ready:.2f}s")


def test_controller_kill_9_adopts_ray_replicas_without_restarting_them(podiums: Callable[[], Podium]) -> None:
    p = podiums()
    ep = ray_endpoint(p, "kept", 1)
    before = until(lambda: ready_instances(p, ep["id"]), 90, "a ready Ray replica")
    stop_podium(p, signal.SIGKILL)
    again = podiums()
    after = until(lambda: ready_instances(again, ep["id"]), 60, "the Ray replica adopted")
    assert [(i["id"], i["started_at"], i["address"]) for i in after] == [
        (i["id"], i["started_at"], i["address"]) for i in before
    ]
    until(lambda: answers(again, ep["routing_key"]), 30, "the adopted replica routed again")
    with again.http() as h:  # its log, read on the node through its actor, by a process that never started it
        logs = h.get(f"/v0/endpoints/{ep['id']}/logs", params={"replica": after[0]["id"], "tail": 20})
    assert logs.status_code == 200 and "fake worker serving" in logs.text, logs.text


def test_a_lost_worker_node_is_replaced_on_the_other_while_requests_are_served(
    cluster: RayCluster, podiums: Callable[[], Podium]
) -> None:
    """Runs last in this module: it kills a worker node."""
    p = podiums()
    ep = ray_endpoint(p, "survivor", 2)
    first = until(lambda: len(r := ready_instances(p, ep["id"])) == 2 and r, 90, "two ready Ray replicas")
    failures: list[str] = []
    answered = [0]
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                ask(p, ep["routing_key"])
                answered[0] += 1
            except openai.OpenAIError as exc:  # counted: requests the lost replica held may fail
                failures.append(repr(exc))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        victim_node = first[0]["node"]
        victim = next(n for n in cluster.nodes[1:] if _holds(cluster, n, victim_node))
        t_kill = time.monotonic()
        cluster.kill_node(victim)
        gone = {first[0]["id"]}
        t_lost = until(
            lambda: gone.isdisjoint(i["id"] for i in ready_instances(p, ep["id"])) and time.monotonic(), 60, "lost"
        )
        fresh = until(
            lambda: len(r := ready_instances(p, ep["id"])) == 2 and gone.isdisjoint(i["id"] for i in r) and r,
            120,
            "a replacement ready on the surviving node",
        )
        t_ready = time.monotonic()
    finally:
        stop.set()
        worker.join(timeout=60)
    assert {i["node"] for i in fresh} == {first[1]["node"]}, fresh
    assert answered[0] > 0
    assert len(failures) <= 2, failures  # at most what the lost replica held at the kill
    print(
        f"\nray node loss: kill -> marked lost {t_lost - t_kill:.2f}s, lost -> replacement ready "
        f"{t_ready - t_lost:.2f}s; {answered[0]} answered, {len(failures)} failed"
    )


def _holds(cluster: RayCluster, node: Any, node_id: str) -> bool:
    return any(
        n.get("NodeID") == node_id and n.get("NodeManagerPort") == node.node_manager_port for n in cluster.alive_nodes()
    )
