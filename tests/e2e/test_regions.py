"""`podium up` with several regions, each on its own runtime (issue 12 item 1): an endpoint placed in
a region declared `runtime: docker` goes to that region's engine, never to host processes; an
engine that cannot be reached shows on the endpoint within seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import Podium, create_fake, replica_pids, start_podium, stop_podium


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
