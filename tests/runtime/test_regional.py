"""RegionalBackend: each region's replicas through that region's own backend (issue 12 item 1)."""

from __future__ import annotations

import pytest

from podium.runtime.base import LaunchSpec, RunPhase, RuntimeUnavailable
from podium.runtime.fake import FakeBackend
from podium.runtime.regional import RegionalBackend


def spec(rid: str, region: str) -> LaunchSpec:
    return LaunchSpec(replica_id=rid, endpoint_id="e1", command=["x"], region=region)


class DockerLike(FakeBackend):
    name = "docker"


def backends() -> tuple[FakeBackend, DockerLike, RegionalBackend]:
    local, docker = FakeBackend(), DockerLike(first_port=30000)
    return local, docker, RegionalBackend({"local": local, "west": docker}, "local")


async def test_a_replica_starts_and_is_handled_in_its_own_region() -> None:
    local, docker, regional = backends()
    assert regional.kind("west") == "docker" and regional.kind("local") == "fake"
    await regional.start(spec("r-west", "west"))
    await regional.start(spec("r-local", "local"))
    assert "r-west" in docker.replicas and "r-west" not in local.replicas
    assert "r-local" in local.replicas and "r-local" not in docker.replicas
    assert (await regional.poll("r-west")).phase == RunPhase.RUNNING
    await regional.kill("r-west")
    assert ("kill", "r-west") in docker.calls and ("kill", "r-west") not in local.calls


async def test_a_replica_of_an_earlier_process_is_found_in_the_backend_that_knows_it() -> None:
    local, docker, _ = backends()
    docker.add_running("r-old", "e1")
    regional = RegionalBackend({"local": local, "west": docker}, "local")  # a restarted Podium
    assert {o.replica_id for o in await regional.list()} == {"r-old"}
    await regional.stop("r-old", 1.0)
    assert ("stop", "r-old") in docker.calls
    fresh = RegionalBackend({"local": local, "west": docker}, "local")  # the API's log reader: no list()
    assert (await fresh.poll("r-old")).phase == RunPhase.EXITED


async def test_an_unknown_region_is_a_clear_error_not_a_host_process() -> None:
    local, _, regional = backends()
    with pytest.raises(RuntimeUnavailable, match="region 'east' has no runtime"):
        await regional.start(spec("r1", "east"))
    assert not local.replicas
