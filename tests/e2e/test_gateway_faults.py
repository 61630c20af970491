"""Faults between the gateway and what feeds it (issue 19): a replica that cannot start is reported to
callers at once; gateways resync at once after the controller is killed and restarted; a gateway that
dies does not hold a drain."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN, Podium, create_endpoint
from tests.e2e.test_split_roles import Cluster, chat, running_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as c:
        yield c


def test_a_replica_that_cannot_start_is_answered_at_once(podium: Podium) -> None:
    """A bad command: the request is not held for the 600 s cold-start timeout but answered 503 as soon
    as the start fails, naming why; later requests at once; and once the controller gives up, the same."""
    ep = create_endpoint(podium, "broken", "/nonexistent/model-server --port $PORT")
    t0 = time.monotonic()
    first = chat(podium.url, ep["routing_key"], timeout=20)
    assert time.monotonic() - t0 < 10
    assert first.status_code == 503, first.text
    err = first.json()["error"]
    assert err["code"] == "endpoint_failed" and "start failed" in err["message"], err
    assert int(first.headers["retry-after"]) >= 1
    t1 = time.monotonic()
    again = chat(podium.url, ep["routing_key"], timeout=20)
    assert again.status_code == 503 and again.json()["error"]["code"] == "endpoint_failed"
    assert time.monotonic() - t1 < 2
    podium.wait_state(ep["id"], "failed", timeout=60)
    failed = chat(podium.url, ep["routing_key"], timeout=20)
    assert failed.status_code == 503 and "failed after" in failed.json()["error"]["message"]
    assert int(failed.headers["retry-after"]) == 30


@pytest.mark.slow  # three processes, one killed (and restarted): ~15-25 s on 2 busy cores
def test_a_gateway_resyncs_at_once_after_a_controller_kill_9(cluster: Cluster) -> None:
    cluster.start("controller")  # first: it migrates the database the others share
    cluster.start("api", "gw1")
    ep = cluster.create_fake("resync")
    gw = cluster.url("gw1")
    assert chat(gw, ep["routing_key"]).status_code == 200
    with cluster.api() as api:
        for i in range(8):  # the route book's version climbs past what a restarted controller reaches soon
            assert api.post("/v0/tokens", json={"name": f"t{i}", "scopes": ["read"]}).status_code == 201
    cluster.kill9("controller")
    cluster.start("controller")  # a new route book: its version starts again at 0
    with cluster.api() as api:
        assert api.post(f"/v0/endpoints/{ep['id']}/stop").status_code == 200
    t0 = time.monotonic()
    while (answer := _answer(gw, ep["routing_key"])) is None or answer.status_code != 404:
        seen = "held" if answer is None else f"{answer.status_code} {answer.text}"
        assert time.monotonic() - t0 < 5, f"the gateway still routes the stopped endpoint: {seen}"
        time.sleep(0.05)
    assert "stopped" in answer.text


def _answer(gateway: str, model: str) -> httpx.Response | None:
    """The gateway's answer, or None when it holds the request (stale routes: the stopped replica refuses)."""
    try:
        return chat(gateway, model, timeout=2)
    except httpx.TimeoutException:
        return None


@pytest.mark.slow  # three processes, one killed (and restarted): ~15-25 s on 2 busy cores
def test_a_dead_gateway_does_not_hold_a_drain(cluster: Cluster) -> None:
    """A gateway is killed while a request it forwarded is in flight: the controller stops waiting on
    it within seconds, not at the 30 s drain timeout. (The replica then finishes its stop grace.)"""
    cluster.start("controller")  # first: it migrates the database the others share
    cluster.start("api", "gw1")
    ep = cluster.create_fake("drain")
    gw = cluster.url("gw1")
    assert chat(gw, ep["routing_key"]).status_code == 200
    body = {"model": ep["routing_key"], "messages": [], "fake_delay": 12}
    slow = threading.Thread(target=_post_ignoring_errors, args=(gw, body), daemon=True)
    slow.start()
    deadline = time.monotonic() + 10
    while not any(g["replica_in_flight"] for g in _gateways(cluster)):  # the controller saw it in flight
        assert time.monotonic() < deadline, "the controller never saw the slow request in flight"
        time.sleep(0.05)
    with cluster.api() as api:
        assert api.post(f"/v0/endpoints/{ep['id']}/stop").status_code == 200
        instances = api.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]
    assert [i["state"] for i in instances] == ["draining"], instances
    assert _listening(instances[0]["address"])  # the drain waits on the request: the replica still serves
    cluster.kill9("gw1")
    t0 = time.monotonic()
    while _gateways(cluster) or _listening(instances[0]["address"]):  # forgotten; the replica told to stop
        assert time.monotonic() - t0 < 8, f"the drain still waits on a dead gateway: {_gateways(cluster)}"
        time.sleep(0.1)
    slow.join(10)


def _gateways(cluster: Cluster) -> list[dict]:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    return httpx.get(f"{cluster.url('controller')}/internal/v0/gateways", headers=headers, timeout=5).json()


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def _post_ignoring_errors(url: str, body: dict) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=90)
