"""The status block users script against: instances with addresses and GPUs, the autoscaler's word."""

from __future__ import annotations

import time

from podium.store.tables import ReplicaRow


async def test_status_block_shows_replicas_gpus_and_the_autoscaler(api) -> None:
    client, store, _ = api
    body = {"name": "e", "container": {"command": "srv $PORT"}, "scaling": {"min_replicas": 1, "max_replicas": 4}}
    ep = (await client.post("/v0/endpoints", json=body)).json()
    now = time.time()
    await store.add_replica(
        ReplicaRow(
            id="rep-1", endpoint_id=ep["id"], generation=1, state="ready", backend="local",
            address="127.0.0.1:20001", gpus="0,1", detail="", created_at=now, started_at=now, ready_at=now,
        )
    )  # fmt: skip
    await store.add_replica(
        ReplicaRow(
            id="rep-2", endpoint_id=ep["id"], generation=1, state="failed", backend="local",
            address=None, gpus="", detail="exit 1", created_at=now, ended_at=now,
        )
    )  # fmt: skip
    await store.update_endpoint(
        ep["id"], desired_replicas=3, desired_reason="queue delay 2.5s > 2s", state="scaling", last_error="boom"
    )
    status = (await client.get(f"/v0/endpoints/{ep['id']}")).json()["status"]
    assert [i["id"] for i in status["instances"]] == ["rep-1"]  # ended replicas are history, not instances
    inst = status["instances"][0]
    assert (inst["state"], inst["address"], inst["public_ip"], inst["private_ip"], inst["port"], inst["gpus"]) == (
        "ready", "127.0.0.1:20001", "127.0.0.1:20001", "127.0.0.1", 20001, [0, 1],
    )  # fmt: skip
    assert status["state"] == "scaling" and status["last_error"] == "boom" and status["billable"] is True
    assert (status["desired_replicas"], status["autoscaler_reason"]) == (3, "queue delay 2.5s > 2s")
    assert status["ready_replicas"] == status["live_replicas"] == 1
    assert status["urls"]["app"].endswith(f"/e/{ep['app_name']}/") and status["url"].endswith("/v1")
    assert status["created_at"] <= status["updated_at"]
    stopped = (await client.post(f"/v0/endpoints/{ep['id']}/stop")).json()["status"]
    assert stopped["desired_replicas"] == 0 and stopped["state"] == "stopped"


async def test_urls_follow_the_region(capi) -> None:
    """A region with its own data plane answers its URL; the default is this listener."""
    client, _, _ = capi
    body = {"name": "e", "container": {"command": "srv $PORT"}, "scaling": {"min_replicas": 0}}
    eu = (await client.post("/v0/endpoints", json={**body, "compute": {"region": "eu"}})).json()
    assert eu["status"]["url"] == "https://eu.podium.example/v1"
    assert eu["status"]["urls"]["app"] == f"https://eu.podium.example/e/{eu['app_name']}/"
    local = (await client.post("/v0/endpoints", json=body)).json()
    assert local["status"]["url"] == "http://127.0.0.1:8800/v1"
