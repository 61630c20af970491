"""`podium up` with several regions, each on its own runtime (issue 12 item 1): an endpoint placed in
a region declared `runtime: docker` goes to that region's engine, never to host processes; an
engine that cannot be reached shows on the endpoint within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import PODIUM, Podium, create_fake, replica_pids, start_podium, stop_podium
from tests.e2e.test_split_roles import chat, wait_healthy
from tests.ray_cluster import ray_available


@pytest.fixture
def two_regions(tmp_path: Path) -> Iterator[Podium]:
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    nowhere = tmp_path / "no-engine.sock"  # nothing listens there
    (data_dir / "catalog" / "regions.yaml").write_text(
        "regions:\n"
        "  - name: local\n    runtime: local\n"
        f"  - name: west\n    runtime: docker\n    docker_host: unix://{nowhere}\n"
    )
    p = start_podium(data_dir, free_port())
    try:
        yield p
    finally:
        stop_podium(p)


def test_an_endpoint_in_a_docker_region_never_runs_as_a_host_process(two_regions: Podium) -> None:
    p = two_regions
    ep = create_fake(p, "westy", "--region", "west")
    deadline = time.monotonic() + 10
    with p.http() as h:
        while True:
            got = h.get(f"/v0/endpoints/{ep['id']}").json()
            error = got["status"].get("last_error") or ""
            if "no-engine.sock" in error:
                break
            assert time.monotonic() < deadline, f"the unreachable engine never showed: {got['status']}"
            time.sleep(0.1)
        kinds = {e["kind"] for e in h.get(f"/v0/endpoints/{ep['id']}/events").json()["events"]}
    assert "runtime_unavailable" in kinds, kinds
    assert got["status"]["state"] != "ready"
    assert not replica_pids(p.mark), "a docker region's replica ran as a host process"


def test_a_local_endpoint_serves_and_is_replaced_beside_an_unreachable_docker_region(two_regions: Podium) -> None:
    """Issue 19 item 2: the docker region's engine is down since start-up; the local region's endpoint
    still starts, serves, and is replaced after its replica is killed, while west shows its error."""
    p = two_regions
    west = create_fake(p, "westy", "--region", "west")
    here = create_fake(p, "here")
    p.wait_state(here["id"], "serving", timeout=20)
    assert chat(p.url, here["routing_key"], timeout=10).status_code == 200
    first = replica_pids(p.mark)  # only local's: west never runs as a host process
    assert first
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not set(replica_pids(p.mark)) - set(first) or chat(p.url, here["routing_key"], 5).status_code != 200:
        assert time.monotonic() < deadline, "the killed local replica was never replaced"
        time.sleep(0.1)
    with p.http() as h:
        error = h.get(f"/v0/endpoints/{west['id']}").json()["status"].get("last_error") or ""
        assert "no-engine.sock" in error
        assert "no-engine.sock" not in (h.get(f"/v0/endpoints/{here['id']}").json()["status"].get("last_error") or "")


def test_a_gateway_started_with_region_serves_only_that_regions_endpoints(tmp_path: Path) -> None:
    """Two regions on host processes, `west` with its own data plane: a `--role gateway --region west`
    attached to `podium up` serves west's endpoint, not local's; west's status.url is that gateway's."""
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    gw_port = free_port()
    gw_url = f"http://127.0.0.1:{gw_port}"
    (data_dir / "catalog" / "regions.yaml").write_text(
        "regions:\n  - name: local\n    runtime: local\n"
        f"  - name: west\n    runtime: local\n    data_plane_url: {gw_url}\n"
    )
    p = start_podium(data_dir, free_port())
    gw: subprocess.Popen[bytes] | None = None
    try:
        args = ["up", "--role", "gateway", "--region", "west", "--port", str(gw_port), "--controller-url", p.url]
        gw = subprocess.Popen([*PODIUM, *args], env=p.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(gw, gw_port, tmp_path / "none.log")
        here = create_fake(p, "here")
        west = create_fake(p, "westy", "--region", "west")
        assert west["status"]["url"] == f"{gw_url}/v1" and here["status"]["url"] == f"{p.url}/v1"
        p.wait_state(west["id"], "serving")
        p.wait_state(here["id"], "serving")
        deadline = time.monotonic() + 10
        while chat(gw_url, west["routing_key"], timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "west's gateway never served west's endpoint"
            time.sleep(0.1)
        assert chat(gw_url, here["routing_key"], timeout=5).status_code == 404  # not this region's
        assert chat(p.url, here["routing_key"], timeout=5).status_code == 200
    finally:
        if gw is not None:
            gw.terminate()
            gw.wait(20)
        stop_podium(p)


@pytest.mark.skipif(not ray_available(), reason="ray is not installed (scripts/ci-ray.sh installs it)")
def test_an_unreachable_ray_cluster_shows_on_its_endpoint_within_seconds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    closed = free_port()  # nothing listens there
    (data_dir / "catalog" / "regions.yaml").write_text(
        "regions:\n  - name: local\n    runtime: local\n"
        f"  - name: gpu\n    runtime: ray\n    ray_address: 127.0.0.1:{closed}\n"
    )
    p = start_podium(data_dir, free_port())
    try:
        ep = create_fake(p, "far", "--region", "gpu")
        deadline = time.monotonic() + 10
        with p.http() as h:
            while f"127.0.0.1:{closed}" not in (
                h.get(f"/v0/endpoints/{ep['id']}").json()["status"]["last_error"] or ""
            ):
                assert time.monotonic() < deadline, "the unreachable Ray cluster never showed on the endpoint"
                time.sleep(0.1)
            kinds = {e["kind"] for e in h.get(f"/v0/endpoints/{ep['id']}/events").json()["events"]}
        assert "runtime_unavailable" in kinds, kinds
    finally:
        stop_podium(p)
