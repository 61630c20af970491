"""DockerBackend against a real engine: Debian podman's Docker-compatible API service.

Skipped where podman or the test image is missing (scripts/ci-podman.sh installs and builds both).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from podium.runtime.base import LaunchSpec, RunPhase, VolumeBind
from podium.runtime.docker import DockerBackend
from tests.podman import IMAGE, container_of, engine_ready, podman_service, tarpit

from .conftest import http_status, wait_port

pytestmark = pytest.mark.skipif(not engine_ready(), reason=f"needs podman and the image {IMAGE}")


@pytest.fixture(scope="module")
def engine_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with podman_service(tmp_path_factory.mktemp("podman") / "engine.sock") as url:
        yield url


@pytest.fixture
async def make_docker(engine_socket: str, tmp_path: Path) -> AsyncIterator[Callable[[], DockerBackend]]:
    namespace = f"podium-test-{secrets.token_hex(3)}"
    made: list[DockerBackend] = []

    def make() -> DockerBackend:
        b = DockerBackend(tmp_path / "data", docker_host=engine_socket, namespace=namespace, close_grace_s=1)
        made.append(b)
        return b

    yield make
    cleaner = make()
    for obs in await cleaner.list():  # whatever a failed test left: nothing of ours survives
        await cleaner.kill(obs.replica_id)
    for b in made:
        await b.close()


def _spec(rid: str, code: str, **kw: object) -> LaunchSpec:
    argv = ["python3", "-u", "-c", code]
    return LaunchSpec(replica_id=rid, endpoint_id="ep-d", command=argv, image=IMAGE, **kw)  # type: ignore[arg-type]


async def test_serves_on_a_host_port_and_is_adopted_by_a_second_backend(
    make_docker: Callable[[], DockerBackend],
) -> None:
    first = make_docker()
    spec = LaunchSpec(
        replica_id="rep-web",
        endpoint_id="ep-d",
        command=["python3", "-u", "-m", "http.server", "$PORT"],
        image=IMAGE,
        container_port=8080,
    )
    obs = await first.start(spec)
    assert obs.phase == RunPhase.RUNNING and obs.address
    await wait_port(obs.address, timeout=15)
    assert await http_status(f"http://{obs.address}/") == 200
    second = make_docker()  # a restarted Podium: finds it from the engine's labels alone
    [seen] = await second.list()
    assert seen.replica_id == "rep-web" and seen.phase == RunPhase.RUNNING and seen.address == obs.address
    await second.stop("rep-web", grace_s=5)
    ended = await second.poll("rep-web")
    assert ended.phase == RunPhase.EXITED and ended.exit_code == 143 and "SIGTERM" in ended.detail
    assert "Serving HTTP on" in await second.tail_text("rep-web")  # kept after the container is gone
    assert await second.list() == []


async def test_term_ignored_is_killed_after_grace(make_docker: Callable[[], DockerBackend]) -> None:
    backend = make_docker()
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready')\ntime.sleep(60)"
    await backend.start(_spec("rep-stubborn", code))
    await _wait_line(backend, "rep-stubborn", "ready")
    t0 = time.perf_counter()
    await backend.stop("rep-stubborn", grace_s=0.5)
    assert 0.5 <= time.perf_counter() - t0 < 5
    assert (await backend.poll("rep-stubborn")).exit_code == 137


async def test_crash_exit_code_env_and_last_lines(make_docker: Callable[[], DockerBackend]) -> None:
    backend = make_docker()
    code = "import os, sys\nprint('port', os.environ['PORT'], os.environ['A'])\nsys.exit(3)"
    await backend.start(_spec("rep-crash", code, env={"A": "b"}, container_port=7000))
    obs = await _wait_exit(backend, "rep-crash")
    assert obs.exit_code == 3 and obs.detail == "exited with code 3"
    assert await backend.tail_text("rep-crash") == "port 7000 b"
    assert [x async for x in backend.logs("rep-crash")] == ["port 7000 b"]


async def test_read_only_volume_is_enforced(make_docker: Callable[[], DockerBackend], tmp_path: Path) -> None:
    src = tmp_path / "vol"
    src.mkdir()
    (src / "f.txt").write_text("data")
    code = (
        "import sys\nprint('read', open('/vol/f.txt').read())\n"
        "try:\n    open('/vol/new', 'w')\nexcept OSError as e:\n    print('write refused', e.errno)\n"
    )
    backend = make_docker()
    await backend.start(_spec("rep-vol", code, volumes=(VolumeBind(str(src), "/vol", True),)))
    await _wait_exit(backend, "rep-vol")
    text = await backend.tail_text("rep-vol")
    assert "read data" in text and "write refused 30" in text  # EROFS: the engine enforces ro


async def test_follow_streams_until_the_container_ends(make_docker: Callable[[], DockerBackend]) -> None:
    backend = make_docker()
    code = "import time\nfor i in range(5):\n    print('n', i)\n    time.sleep(0.1)\n"
    await backend.start(_spec("rep-follow", code))
    got = [x async for x in backend.logs("rep-follow", tail=10, follow=True)]
    assert [x for x in got if x] == [f"n {i}" for i in range(5)]


async def test_follow_prints_what_the_engine_prints(make_docker: Callable[[], DockerBackend]) -> None:
    """Partial writes on stdout around whole stderr lines: each line as `podman logs` has it, none
    joined with another stream's, no blank ones added (the old demuxer printed "parterr 0" and "ial")."""
    backend = make_docker()
    code = (
        "import sys, time\nfor i in range(3):\n"
        "    sys.stdout.write('part'); sys.stdout.flush(); time.sleep(0.05)\n"
        "    sys.stderr.write('err %d\\n' % i); sys.stderr.flush()\n"
        "    sys.stdout.write('ial %d\\n' % i); sys.stdout.flush(); time.sleep(0.05)\n"
    )
    await backend.start(_spec("rep-demux", code))
    got = [x async for x in backend.logs("rep-demux", tail=100, follow=True)]
    out = [f"partial {i}" for i in range(3)]
    err = [f"err {i}" for i in range(3)]
    assert sorted(got) == sorted(out + err), got
    assert [x for x in got if x in out] == out and [x for x in got if x in err] == err
    assert [x async for x in backend.logs("rep-demux", tail=2)] in (["err 2", "partial 2"], ["partial 2", "err 2"])


async def test_installations_sharing_an_engine_never_touch_each_other(engine_socket: str, tmp_path: Path) -> None:
    """Same namespace, same replica id, two data dirs: neither lists, kills nor removes the other's."""
    namespace = f"podium-test-{secrets.token_hex(3)}"

    def backend(name: str) -> DockerBackend:
        return DockerBackend(tmp_path / name, docker_host=engine_socket, namespace=namespace, close_grace_s=1)

    first, second = backend("a"), backend("b")
    assert first.installation != second.installation
    assert backend("a").installation == first.installation  # generated once per data dir, kept in it
    assert (tmp_path / "a" / "installation_id").read_text().strip() == first.installation
    try:
        assert (await first.start(_spec("rep-same", "import time; time.sleep(60)"))).phase == RunPhase.RUNNING
        assert await second.list() == []
        await second.kill("rep-same")  # its own rep-same, which does not exist: a no-op
        assert (await first.poll("rep-same")).phase == RunPhase.RUNNING
        await second.close()
        assert [o.replica_id for o in await first.list()] == ["rep-same"]
        assert first.installation in container_of("rep-same")
    finally:
        await first.close()
    assert container_of("rep-same") == ""


def test_installation_id_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_INSTALLATION_ID", "prod-eu1")
    assert DockerBackend(tmp_path, docker_host="unix:///nowhere.sock").installation == "prod-eu1"
    monkeypatch.setenv("PODIUM_INSTALLATION_ID", "Bad Id!")
    with pytest.raises(ValueError, match="PODIUM_INSTALLATION_ID"):
        DockerBackend(tmp_path, docker_host="unix:///nowhere.sock")


async def test_a_pull_that_never_answers_times_out_reports_progress_and_cancels(
    engine_socket: str, tmp_path: Path
) -> None:
    backend = DockerBackend(tmp_path / "data", docker_host=engine_socket, pull_stall_timeout_s=1.5)
    steps: list[str] = []

    async def on_progress(spec: LaunchSpec, line: str) -> None:
        steps.append(f"{spec.replica_id} {line}")

    backend.on_progress = on_progress
    try:
        with tarpit() as port:
            image = f"127.0.0.1:{port}/x:y"
            spec = LaunchSpec(replica_id="rep-pull", endpoint_id="ep-d", command=["x"], image=image)
            t0 = time.monotonic()
            obs = await backend.start(spec)
            assert time.monotonic() - t0 < 10
            assert obs.phase == RunPhase.EXITED and "pull timed out" in obs.detail, obs
            assert steps[0] == f"rep-pull pulling {image}: started"
            pulling = asyncio.create_task(backend.start(replace(spec, replica_id="rep-pull2")))
            deadline = time.monotonic() + 5
            while not any(s.startswith("rep-pull2") for s in steps):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            pulling.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(pulling, 2)
            assert container_of("rep-pull2") == ""
    finally:
        await backend.close()


async def test_unstartable_replicas_say_why(make_docker: Callable[[], DockerBackend]) -> None:
    backend = make_docker()
    no_image = await backend.start(LaunchSpec(replica_id="rep-n1", endpoint_id="ep-d", command=["x"]))
    assert no_image.phase == RunPhase.EXITED and "no image" in no_image.detail
    missing = await backend.start(
        LaunchSpec(replica_id="rep-n2", endpoint_id="ep-d", command=None, image="localhost/absent:1")
    )
    assert missing.phase == RunPhase.EXITED and "cannot start container" in missing.detail
    assert (await backend.poll("rep-n2")).phase == RunPhase.EXITED
    no_cmd = await backend.start(replace(_spec("rep-n3", "x"), command=["no-such-cmd"]))
    if no_cmd.phase == RunPhase.RUNNING:  # the engine started --init; the exec fails just after
        no_cmd = await _wait_exit(backend, "rep-n3")
    assert no_cmd.phase == RunPhase.EXITED and no_cmd.exit_code not in (None, 0)


async def test_close_stops_everything(make_docker: Callable[[], DockerBackend]) -> None:
    backend = make_docker()
    for i in range(2):
        await backend.start(_spec(f"rep-c{i}", "import time; time.sleep(60)"))
    await backend.close()
    assert await make_docker().list() == []


async def _wait_line(backend: DockerBackend, rid: str, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in await backend.tail_text(rid):
        assert time.monotonic() < deadline, f"{text!r} not in the log of {rid}: {await backend.poll(rid)}"
        await asyncio.sleep(0.05)


async def _wait_exit(backend: DockerBackend, rid: str, timeout: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (obs := await backend.poll(rid)).phase == RunPhase.RUNNING:
        assert time.monotonic() < deadline, f"{rid} did not exit"
        await asyncio.sleep(0.05)
    return obs
