"""RayBackend on a real simulated cluster: a head (no GPUs) and two worker nodes with two fake H100
each, started once for this module (tests/ray_cluster.py). Replicas are real processes reached over
real HTTP at the node's IP. Node loss runs last: it kills a worker node."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase, VolumeBind
from podium.runtime.ray import RayBackend, RayUnavailable
from tests.conftest import REPO
from tests.ray_cluster import RayCluster, new_cluster, ray_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not ray_available(), reason="ray is not installed (scripts/ci-ray.sh installs it)"),
]

PY = sys.executable
SERVER = str(REPO / "tests" / "e2e" / "replica_server.py")


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
        assert c.leftovers() == []


@pytest.fixture
async def make_backend(cluster: RayCluster, tmp_path: Path) -> AsyncIterator[Callable[..., RayBackend]]:
    made: list[RayBackend] = []

    def make(**kw: Any) -> RayBackend:
        kw.setdefault("node_dir", cluster.node_dir)
        kw.setdefault("close_grace_s", 1.0)
        kw.setdefault("placement_timeout_s", 20.0)
        kw.setdefault("installation", "t" + tmp_path.name[-12:].replace("_", "").lower())
        b = RayBackend(cluster.address, tmp_path / "data", **kw)
        made.append(b)
        return b

    try:
        yield make
    finally:
        for b in made:
            await b.close()


def server(rid: str, gpus: int = 0, **env: str) -> LaunchSpec:
    return LaunchSpec(
        replica_id=rid,
        endpoint_id="ep-ray",
        command=[PY, SERVER],
        env={"REPLICA_HOST": "0.0.0.0", "PODIUM_REPLICA_ID": rid, **env},
        gpu_type="h100" if gpus else None,
        gpu_count=gpus,
    )


def get_json(address: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


async def wait_http(address: str, path: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(get_json, address, path)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def wait_phase(b: RayBackend, rid: str, phase: RunPhase, timeout: float = 15.0) -> ReplicaObservation:
    deadline = time.monotonic() + timeout
    while True:
        obs = await b.poll(rid)
        if obs.phase == phase:
            return obs
        if time.monotonic() > deadline:
            raise AssertionError(f"{rid} still {obs}")
        await asyncio.sleep(0.1)


async def test_replicas_spread_over_nodes_with_their_own_gpus(make_backend: Callable[..., RayBackend]) -> None:
    b = make_backend()
    first, second = await asyncio.gather(b.start(server("sp-1", gpus=2)), b.start(server("sp-2", gpus=2)))
    assert first.phase == second.phase == RunPhase.RUNNING, (first, second)
    assert first.node and second.node and first.node != second.node  # each node fits one
    assert first.gpus == second.gpus == (0, 1)
    for obs in (first, second):
        assert obs.address is not None and not obs.address.startswith("127.")  # the node's IP
        seen = await wait_http(obs.address, "/env?name=CUDA_VISIBLE_DEVICES")
        assert seen["value"] == "0,1"
        assert (await wait_http(obs.address, "/whoami"))["replica"] == obs.replica_id
    free = {n.node_id: n.gpus_free for n in await b.nodes()}
    assert free[first.node] == free[second.node] == 0
    # No GPU left: a third waits for placement_timeout_s, then says why; nothing is left behind.
    impatient = make_backend(placement_timeout_s=5.0)  # the same installation: sees the same cluster
    starting = asyncio.create_task(impatient.start(server("sp-3", gpus=2)))
    while not (impatient.root / "sp-3" / "state.json").exists():
        assert not starting.done()
        await asyncio.sleep(0.02)
    mid = await impatient.poll("sp-3")  # waiting for room is not an end
    assert mid.phase == RunPhase.UNKNOWN and "starting" in mid.detail, mid
    third = await starting
    assert third.phase == RunPhase.EXITED and "no node had 2 h100 GPUs free within 5 s" in third.detail
    assert (await impatient.poll("sp-3")).phase == RunPhase.EXITED
    # A type no node has is refused at once, naming the cluster.
    t0 = time.monotonic()
    l40s = await b.start(LaunchSpec("sp-4", "ep-ray", [PY, SERVER], gpu_type="l40s", gpu_count=1))
    assert l40s.phase == RunPhase.EXITED and "can hold 1 l40s GPU" in l40s.detail
    assert b.address in l40s.detail and time.monotonic() - t0 < 3
    await asyncio.gather(b.stop("sp-1", 1.0), b.stop("sp-2", 1.0))
    deadline = time.monotonic() + 10
    while True:  # stopping frees Ray's GPUs (its resource view lags by up to a second or so)
        free = {n.node_id: n.gpus_free for n in await b.nodes()}
        if free[first.node] == free[second.node] == 2:
            break
        assert time.monotonic() < deadline, free
        await asyncio.sleep(0.2)


async def test_gpus_are_never_shared(make_backend: Callable[..., RayBackend]) -> None:
    b = make_backend()
    specs = [server(f"one-{i}", gpus=1) for i in range(4)]
    specs[0] = replace(specs[0], volumes=(VolumeBind("/srv/models", "/models", read_only=True),))
    obs = await asyncio.gather(*(b.start(s) for s in specs))
    assert all(o.phase == RunPhase.RUNNING for o in obs), obs
    assert obs[0].address is not None  # a volume is passed as a path on the node, as locally
    assert (await wait_http(obs[0].address, "/env?name=PODIUM_VOLUME_MODELS"))["value"] == "/srv/models"
    seen = set()
    for o in obs:
        assert o.address is not None
        cvd = (await wait_http(o.address, "/env?name=CUDA_VISIBLE_DEVICES"))["value"]
        assert cvd == ",".join(str(g) for g in o.gpus) and len(o.gpus) == 1
        seen.add((o.node, cvd))
    assert len(seen) == 4  # two nodes x two GPUs, each held by one replica
    await asyncio.gather(*(b.kill(o.replica_id) for o in obs))


async def test_exit_codes_stop_and_kill(make_backend: Callable[..., RayBackend]) -> None:
    b = make_backend()
    crash = LaunchSpec("ex-1", "ep-ray", [PY, "-c", "print('bye', flush=True); raise SystemExit(3)"])
    assert (await b.start(crash)).phase in (RunPhase.RUNNING, RunPhase.EXITED)
    ended = await wait_phase(b, "ex-1", RunPhase.EXITED)
    assert ended.exit_code == 3 and ended.detail == "exited with code 3"
    assert "bye" in await b.tail_text("ex-1")  # kept after its actor was retired
    assert not _exists(f"{b.node_dir}/ex-1")  # and the node's copy is gone
    assert (await b.poll("ex-1")).exit_code == 3  # EXITED keeps answering

    stubborn = await b.start(server("ex-2", REPLICA_IGNORE_TERM="1"))
    assert stubborn.address is not None
    await wait_http(stubborn.address, "/health")
    t0 = time.monotonic()
    await b.stop("ex-2", grace_s=0.5)
    assert 0.5 <= time.monotonic() - t0 < 5
    obs = await b.poll("ex-2")
    assert obs.phase == RunPhase.EXITED and obs.exit_code == -9 and "SIGKILL" in obs.detail

    polite = await b.start(server("ex-3"))
    assert polite.address is not None
    await wait_http(polite.address, "/health")
    await b.stop("ex-3", grace_s=5)
    assert (await b.poll("ex-3")).exit_code == -15
    await b.stop("ex-3")  # idempotent
    await b.kill("ex-3")

    missing = await b.start(LaunchSpec("ex-4", "ep-ray", ["/no/such/binary"]))
    assert missing.phase == RunPhase.EXITED and missing.exit_code == 127 and "/no/such/binary" in missing.detail
    image = await b.start(LaunchSpec("ex-5", "ep-ray", None, image="nginx"))
    assert image.phase == RunPhase.EXITED and "image" in image.detail and "command" in image.detail
    assert (await b.poll("never-started")).phase == RunPhase.UNKNOWN


async def test_an_actor_killed_outside_podium_takes_its_replica(
    cluster: RayCluster, make_backend: Callable[..., RayBackend]
) -> None:
    """`ray.kill` by someone else: the replica does not run on untracked (holding GPUs nobody
    accounts for); poll says its actor died."""
    b = make_backend()
    obs = await b.start(server("ko-1", gpus=1))
    assert obs.address is not None
    pid = (await wait_http(obs.address, "/health"))["pid"]
    code = (
        "import sys, ray; ray.init(address=sys.argv[1], namespace=sys.argv[2], log_to_driver=False);"
        "ray.kill(ray.get_actor('ko-1'))"
    )
    proc = await asyncio.create_subprocess_exec(PY, "-c", code, cluster.address, b.namespace)
    assert await asyncio.wait_for(proc.wait(), 60) == 0
    ended = await wait_phase(b, "ko-1", RunPhase.EXITED)
    assert "actor" in ended.detail, ended
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the replica outlived its actor"
        await asyncio.sleep(0.05)


async def test_logs_tail_and_follow(make_backend: Callable[..., RayBackend], tmp_path: Path) -> None:
    b = make_backend()
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "for i in range(5): print(f'line {i}', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "for i in range(5, 8): print(f'line {i}', flush=True)\n"
    )
    obs = await b.start(LaunchSpec("lg-1", "ep-ray", [PY, "-c", code]))
    assert obs.phase == RunPhase.RUNNING

    async def tail3() -> list[str]:
        return [line async for line in b.logs("lg-1", tail=3)]

    deadline = time.monotonic() + 10
    while await tail3() != ["line 2", "line 3", "line 4"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    followed: list[str] = []

    async def follow() -> None:
        async for line in b.logs("lg-1", tail=2, follow=True):
            followed.append(line)

    task = asyncio.create_task(follow())
    while followed != ["line 3", "line 4"]:
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.05)
    go.touch()  # the replica writes three more lines and ends: follow ends with it
    await asyncio.wait_for(task, 10)
    assert followed == [f"line {i}" for i in range(3, 8)]


async def test_follow_reads_through_rotation(make_backend: Callable[..., RayBackend], tmp_path: Path) -> None:
    """Logs on the node rotate (2 KB files here); a follower reads each line once, in order."""
    b = make_backend(log_max_bytes=2000, log_backups=3)
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "for i in range(400): print(f'line {i:03d}', flush=True)\n"
    )
    assert (await b.start(LaunchSpec("rot-1", "ep-ray", [PY, "-c", code]))).phase == RunPhase.RUNNING
    followed: list[str] = []

    async def follow() -> None:
        async for line in b.logs("rot-1", tail=10, follow=True):
            followed.append(line)

    task = asyncio.create_task(follow())
    deadline = time.monotonic() + 10
    while followed != ["ready"]:  # the follower is past its tail; now the replica writes 3.6 KB
        assert time.monotonic() < deadline and not task.done(), followed
        await asyncio.sleep(0.05)
    go.touch()
    await asyncio.wait_for(task, 20)
    assert followed == ["ready"] + [f"line {i:03d}" for i in range(400)]
    assert [line async for line in b.logs("rot-1", tail=3)] == ["line 397", "line 398", "line 399"]


async def test_a_follower_gets_the_last_lines_when_the_replica_is_retired_first(
    make_backend: Callable[..., RayBackend], tmp_path: Path
) -> None:
    """The controller's poll retires an ended replica (its actor and node files go) while a
    follower is between two reads: the follower ends with the lines saved at retirement."""
    b = make_backend()
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        "for i in range(5): print(f'line {i}', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.05)\n"
        "print('last words', flush=True)\n"
        "raise SystemExit(5)\n"
    )
    assert (await b.start(LaunchSpec("fr-1", "ep-ray", [PY, "-c", code]))).phase == RunPhase.RUNNING
    follower = b.logs("fr-1", tail=10, follow=True)
    seen = [await asyncio.wait_for(anext(follower), 10) for _ in range(5)]
    assert seen == [f"line {i}" for i in range(5)]
    go.touch()  # the follower is paused: the replica ends and is retired before it reads again
    assert (await wait_phase(b, "fr-1", RunPhase.EXITED)).exit_code == 5
    assert [line async for line in follower] == ["last words"]


ADOPT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from podium.runtime.base import LaunchSpec
from podium.runtime.ray import RayBackend, RayUnavailable

async def main():
    address, data, node_dir, installation, server = sys.argv[1:6]
    b = RayBackend(address, Path(data), node_dir=node_dir, installation=installation)
    spec = LaunchSpec("ad-1", "ep-ray", [sys.executable, server], env={"REPLICA_HOST": "0.0.0.0"})
    obs = await b.start(spec)
    print(json.dumps({"address": obs.address, "phase": obs.phase, "driver": b.client.pid}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_new_podium_adopts_without_restart(
    cluster: RayCluster, make_backend: Callable[..., RayBackend], tmp_path: Path
) -> None:
    """A Podium process (with its own driver) starts a replica and is SIGKILLed; a new backend on a
    fresh driver finds the replica by list(), same process, and can read and stop it."""
    b = make_backend()  # the fixture's naming: same installation and data dir as the script's
    proc = await asyncio.create_subprocess_exec(
        *[PY, "-c", ADOPT_SCRIPT, cluster.address, str(b.root.parent), cluster.node_dir, b.installation, SERVER],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert first["phase"] == "running"
        pid = (await wait_http(first["address"], "/health"))["pid"]
    finally:
        proc.send_signal(signal.SIGKILL)  # Podium dies; its driver sees its stdin close and leaves
        await proc.wait()
    deadline = time.monotonic() + 15
    while _alive(first["driver"]):  # an orphaned driver does not linger
        assert time.monotonic() < deadline, "the dead Podium's Ray driver is still running"
        await asyncio.sleep(0.1)
    found = {o.replica_id: o for o in await b.list()}
    assert found["ad-1"].phase == RunPhase.RUNNING and found["ad-1"].address == first["address"]
    assert (await wait_http(first["address"], "/health"))["pid"] == pid  # not restarted
    await asyncio.to_thread(get_json, first["address"], "/hello")
    assert any("/hello" in line for line in [line async for line in b.logs("ad-1", tail=10)])
    await b.stop("ad-1", 2.0)
    assert (await b.poll("ad-1")).phase == RunPhase.EXITED
    assert "ad-1" not in {o.replica_id for o in await b.list() if o.phase == RunPhase.RUNNING}


async def test_an_abandoned_start_is_ended_by_the_next_podium(
    cluster: RayCluster, make_backend: Callable[..., RayBackend]
) -> None:
    """A Podium dies while its replica waits for room (all GPUs taken): the next one does not wait
    on it forever; list() answers it EXITED and its actor is gone (it would grab GPUs later)."""
    b = make_backend()
    hogs = await asyncio.gather(b.start(server("hog-1", gpus=2)), b.start(server("hog-2", gpus=2)))
    assert all(o.phase == RunPhase.RUNNING for o in hogs)
    script = ADOPT_SCRIPT.replace('"ad-1"', '"ab-1"').replace("env={", 'gpu_type="h100", gpu_count=2, env={')
    proc = await asyncio.create_subprocess_exec(
        *[PY, "-c", script, cluster.address, str(b.root.parent), cluster.node_dir, b.installation, SERVER],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    try:
        deadline = time.monotonic() + 60
        while "ab-1" not in await b._call("list"):  # its actor exists, waiting for a node
            assert time.monotonic() < deadline and proc.returncode is None
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    found = {o.replica_id: o for o in await b.list()}
    assert found["ab-1"].phase == RunPhase.EXITED and "never got a node" in found["ab-1"].detail
    assert "ab-1" not in await b._call("list")
    assert (await b.poll("ab-1")).phase == RunPhase.EXITED
    await asyncio.gather(*(b.kill(o.replica_id) for o in hogs))


async def test_memory_stays_bounded(cluster: RayCluster, make_backend: Callable[..., RayBackend]) -> None:
    """The issue's budget: the whole simulated cluster under 4 GB, here with four replicas running."""
    b = make_backend()
    obs = await asyncio.gather(*(b.start(server(f"mem-{i}", gpus=1)) for i in range(4)))
    assert all(o.phase == RunPhase.RUNNING for o in obs)
    used = cluster.rss_mb()
    print(f"cluster + 4 replicas: {used:.0f} MB RSS")
    assert used < 4096
    await asyncio.gather(*(b.kill(o.replica_id) for o in obs))


async def test_node_loss_is_reported_within_seconds(
    cluster: RayCluster, make_backend: Callable[..., RayBackend]
) -> None:
    """Last in this module: it kills a worker node. The replica there answers EXITED "node <id>
    lost" within seconds (Ray's health checks, sped up by the fixture), its process is gone with its
    actor, and a replacement is placed on the surviving node."""
    b = make_backend()
    obs = await b.start(server("nl-1", gpus=2))
    assert obs.phase == RunPhase.RUNNING and obs.address is not None
    pid = (await wait_http(obs.address, "/health"))["pid"]
    port_of = {str(n["NodeID"]): int(str(n["NodeManagerPort"])) for n in cluster.alive_nodes()}
    victim = next(n for n in cluster.nodes if n.node_manager_port == port_of[obs.node])
    t0 = time.monotonic()
    cluster.kill_node(victim)
    deadline = t0 + 30
    while True:
        try:
            ended = await b.poll("nl-1")
        except Exception as e:  # RayUnavailable while Ray still thinks the node may come back
            assert "did not answer" in str(e), e
            ended = None
        if ended is not None and ended.phase == RunPhase.EXITED:
            break
        assert time.monotonic() < deadline, "node loss not detected in 30 s"
        await asyncio.sleep(0.2)
    detected_s = time.monotonic() - t0
    print(f"node loss detected in {detected_s:.1f} s")
    assert ended.detail == f"node {obs.node} lost" and detected_s < 20
    assert not _alive(pid)  # the replica died with its node (its supervisor's parent-death signal)
    replacement = await b.start(server("nl-2", gpus=2))
    assert replacement.phase == RunPhase.RUNNING and replacement.node not in ("", obs.node)
    await b.stop("nl-2", 1.0)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def test_a_cluster_gone_is_a_clear_error(cluster: RayCluster, make_backend: Callable[..., RayBackend]) -> None:
    """After the node-loss test: the head dies. Calls that need it fail within their timeout with
    an error naming the address; a replica already running on a node keeps serving; a new backend
    is refused at once."""
    b = make_backend(call_timeout_s=3.0)
    obs = await b.start(server("gone-1", gpus=2))  # GPUs: on the surviving worker, not on the head
    assert obs.phase == RunPhase.RUNNING and obs.address is not None
    await wait_http(obs.address, "/health")
    cluster.kill_node(cluster.nodes[0])  # the head: GCS and all
    t0 = time.monotonic()
    with pytest.raises(RayUnavailable, match=cluster.address):
        await b.nodes()
    assert time.monotonic() - t0 < 6
    assert (await wait_http(obs.address, "/health"))["pid"]  # still serving
    fresh = make_backend()
    t0 = time.monotonic()
    with pytest.raises(RayUnavailable, match="cannot connect"):
        await fresh.start(server("gone-2"))
    assert time.monotonic() - t0 < 2


def _exists(path: str) -> bool:
    return os.path.exists(path)
