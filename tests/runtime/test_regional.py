"""RegionalBackend: each region's replicas through that region's own backend (issue 12 item 1)."""

from __future__ import annotations

import pytest

from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase, RuntimeUnavailable
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


class Unreachable(DockerLike):
    """A docker region whose engine is down: list() cannot answer."""

    async def list(self) -> list[ReplicaObservation]:
        raise RuntimeUnavailable("docker engine at unix:///nowhere.sock cannot be reached")


async def test_one_unreachable_region_does_not_fail_the_others_list() -> None:
    """list() answers for the regions that answer and names the others in `down` (issue 19 item 2)."""
    local = FakeBackend()
    local.add_running("r-here", "e1")
    regional = RegionalBackend({"local": local, "west": Unreachable(first_port=30000)}, "local")
    assert {o.replica_id for o in await regional.list()} == {"r-here"}
    assert regional.down == {"west": "docker engine at unix:///nowhere.sock cannot be reached"}
    assert regional.region_of("r-here") == "local"


async def test_every_region_unreachable_is_the_whole_runtime_down() -> None:
    regional = RegionalBackend({"local": Unreachable(), "west": Unreachable(first_port=30000)}, "local")
    with pytest.raises(RuntimeUnavailable, match=r"nowhere\.sock"):
        await regional.list()
    assert set(regional.down) == {"local", "west"}
