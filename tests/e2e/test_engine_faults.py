"""`podium up` on the docker runtime against a container engine that misbehaves (issue 19 items 1-3):
a registry that never answers, an engine that stops and comes back, an engine that comes up after
Podium, and two installations sharing one engine. Real podman (`podman system service`), real
processes, real HTTP; skipped where podman or the test image is missing (scripts/ci-podman.sh)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, start_podium, stop_podium
from tests.podman import IMAGE, EngineService, container_of, engine_ready, podman, tarpit

pytestmark = [
    pytest.mark.skipif(not engine_ready(), reason=f"needs podman and the image {IMAGE}"),
    pytest.mark.slow,  # 14-27 s each: podman starts containers slowly on 2 cores
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineService]:
    service = EngineService(tmp_path / "engine.sock")
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def podiums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], Podium]]:
    """Start `podium up` on the docker runtime with data dir `name` (again: a restart), against `url`."""
    started: list[Podium] = []

    def start(name: str, url: str) -> Podium:
        data_dir = tmp_path / name / "data"
        (data_dir / "catalog").mkdir(parents=True, exist_ok=True)
        (data_dir / "catalog" / "region.yaml").write_text("regions:\n  - name: local\n    runtime: docker\n")
        monkeypatch.setenv("DOCKER_HOST", url)
        p = start_podium(data_dir, free_port())
        started.append(p)
        return p

    yield start
    for p in started:
        stop_podium(p)


def web(p: Podium, name: str, image: str = IMAGE) -> dict[str, Any]:
    return p.cli_json(
        "endpoint",
        "create",
        "--name",
        name,
        "--image",
        image,
        "--container-command",
        "python3 -m http.server 8000",
        "--container-port",
        "8000",
        "--health-check-path",
        "/",
    )


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.1)
    return got


def status(p: Podium, endpoint_id: str) -> dict[str, Any]:
    with p.http() as h:
        out: dict[str, Any] = h.get(f"/v0/endpoints/{endpoint_id}").json()["status"]
        return out


def events(p: Podium, endpoint_id: str) -> list[dict[str, Any]]:
    with p.http() as h:
        out: list[dict[str, Any]] = h.get(f"/v0/endpoints/{endpoint_id}/events").json()["events"]
        return out


def serving_replica(p: Podium, endpoint_id: str) -> str | None:
    s = status(p, endpoint_id)
    ready = [i["id"] for i in s["instances"] if i["state"] == "ready"]
    return ready[0] if s["state"] == "serving" and ready else None


def test_a_pull_that_hangs_freezes_nothing_and_delete_cancels_it(
    engine: EngineService, podiums: Callable[[str, str], Podium]
) -> None:
    p = podiums("one", engine.url)
    a = web(p, "steady")
    first = until(lambda: serving_replica(p, a["id"]), 60, "steady serving")
    with tarpit() as port:
        b = web(p, "stuck", image=f"127.0.0.1:{port}/x:y")
        until(lambda: status(p, b["id"])["instances"], 10, "stuck endpoint's replica starting (pulling)")
        podman("kill", container_of(first))  # another endpoint's replica dies while the pull hangs
        t0 = time.monotonic()
        until(lambda: serving_replica(p, a["id"]) not in (None, first), 20, "steady replaced")
        replaced_s = time.monotonic() - t0
        [pulling] = status(p, b["id"])["instances"]
        assert pulling["state"] == "pending" and pulling["detail"].startswith(f"pulling 127.0.0.1:{port}/x:y")
        assert any(e["kind"] == "replica_progress" for e in events(p, b["id"]))
        with p.http() as h:
            assert h.delete(f"/v0/endpoints/{b['id']}").status_code in (200, 202, 204)
            until(lambda: h.get(f"/v0/endpoints/{b['id']}").status_code == 404, 10, "stuck endpoint deleted")
    assert replaced_s < 15  # before: unnoticed for ~80 s, the tick waited on the pull


def test_engine_stopped_under_podium_is_reported_and_survived(
    engine: EngineService, podiums: Callable[[str, str], Podium]
) -> None:
    p = podiums("one", engine.url)
    a = web(p, "steady")
    rid = until(lambda: serving_replica(p, a["id"]), 60, "serving")
    log = p.data_dir.parent / f"podium-{p.url.rsplit(':', 1)[1]}.log"
    engine.stop()  # containers outlive the API service: the replica keeps serving
    until(lambda: "unreachable" in (status(p, a["id"])["last_error"] or ""), 15, "engine down on last_error")
    assert any(e["kind"] == "runtime_unavailable" for e in events(p, a["id"]))
    app = httpx.get(f"{p.url}/e/{a['app_name']}/", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert app.status_code == 200
    cli = p.cli("endpoint", "logs", a["id"], check=False)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr, cli.stderr
    assert "503" in cli.stderr and "unreachable" in cli.stderr, cli.stderr
    text = log.read_text()
    assert text.count("runtime unreachable") == 1 and "Traceback" not in text, text[-3000:]
    engine.start()
    until(lambda: status(p, a["id"])["last_error"] is None, 30, "last_error cleared")
    assert serving_replica(p, a["id"]) == rid  # the same container, adopted through the outage
    b = web(p, "after")
    until(lambda: serving_replica(p, b["id"]), 60, "a new endpoint serves")


def test_podium_started_before_the_engine_waits_for_it(tmp_path: Path, podiums: Callable[[str, str], Podium]) -> None:
    engine = EngineService(tmp_path / "late.sock")
    p = podiums("one", engine.url)
    try:
        a = web(p, "early")
        until(lambda: "unreachable" in (status(p, a["id"])["last_error"] or ""), 15, "engine down on last_error")
        engine.start()
        until(lambda: serving_replica(p, a["id"]), 60, "serving once the engine is up")
    finally:
        stop_podium(p)
        engine.stop()


def test_a_podium_stopped_while_the_engine_was_down_leaves_its_replicas_to_the_next(
    engine: EngineService, podiums: Callable[[str, str], Podium]
) -> None:
    """kill -9 under a serving replica, restart while the engine is down, SIGTERM, engine back,
    start again: the replica (still running all along) is adopted, not marked stopped and then
    ended as an orphan."""
    p = podiums("one", engine.url)
    a = web(p, "kept")
    rid = until(lambda: serving_replica(p, a["id"]), 60, "serving")
    stop_podium(p, signal.SIGKILL)
    engine.stop()
    stop_podium(podiums("one", engine.url))  # never reached the engine: must not touch the replica rows
    engine.start()
    again = podiums("one", engine.url)
    until(lambda: serving_replica(again, a["id"]) == rid, 30, f"{rid} adopted")
    assert container_of(rid)


def test_two_installations_on_one_engine_leave_each_other_alone(
    engine: EngineService, podiums: Callable[[str, str], Podium]
) -> None:
    first = podiums("first", engine.url)
    a = web(first, "mine")
    rid = until(lambda: serving_replica(first, a["id"]), 60, "first serving")
    second = podiums("second", engine.url)  # its adoption used to end `rid` as an orphan
    b = web(second, "theirs")
    until(lambda: serving_replica(second, b["id"]), 60, "second serving")
    assert container_of(rid) and serving_replica(first, a["id"]) == rid
    stop_podium(second)  # stops its own containers only
    assert container_of(rid) and serving_replica(first, a["id"]) == rid
    assert not [e for e in events(first, a["id"]) if e["kind"] == "replica_failed"]
