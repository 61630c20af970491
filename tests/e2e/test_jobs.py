"""Async jobs on a real `podium up`: `Prefer: respond-async` -> 202 + Location, the job runs through the
gateway on a fake-worker replica, GET /jobs/{id} shows it; listing, access (another token's job is
404), cancel (queued never starts, running is cut), webhooks (a failing receiver is retried), sync
requests served before queued jobs. One stack for the module: each test uses its own endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import (
    ADMIN,
    Podium,
    assert_no_replicas_left,
    create_fake,
    fake_worker_command,
    start_podium,
    stop_podium,
)

ASYNC = {"Prefer": "respond-async", "Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podium]:
    p = start_podium(tmp_path_factory.mktemp("jobs") / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


def chat(model: str, delay: float = 0.0) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "fake_delay": delay}


def wait_job(p: Podium, job_id: str, statuses: tuple[str, ...], timeout: float = 20, token: str = ADMIN) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{p.url}/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        if job.get("status") in statuses:
            return job
        assert time.monotonic() < deadline, f"job never reached {statuses}: {job}"
        time.sleep(0.05)


def submit(
    p: Podium, body: dict[str, Any], headers: dict[str, str] | None = None, path: str = "/v1/chat/completions"
) -> str:
    resp = httpx.post(f"{p.url}{path}", json=body, headers={**ASYNC, **(headers or {})}, timeout=10)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]
    assert resp.json() == {"id": job_id, "status": "queued"}
    assert resp.headers["location"] == f"/jobs/{job_id}"
    return job_id


def test_lifecycle_listing_and_access(stack: Podium) -> None:
    ep = create_fake(stack, "life", "--auth", "token")
    stack.wait_state(ep["id"], "serving")
    job_id = submit(stack, chat(ep["routing_key"]))
    job = wait_job(stack, job_id, ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]
    assert job["response"]["status_code"] == 200
    assert job["response"]["body"]["choices"][0]["message"]["content"]  # JSON, decoded

    app_job = submit(stack, {"x": 1}, path=f"/e/{ep['app_name']}/anything?q=1")
    echoed = wait_job(stack, app_job, ("succeeded",))["response"]["body"]
    assert echoed["path"] == "/anything" and echoed["query"] == {"q": "1"}  # the prefix stripped, as sync

    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5) as h:
        listed = h.get("/jobs", params={"endpoint": ep["name"], "status": "succeeded"}).json()["data"]
        assert {j["id"] for j in listed} == {job_id, app_job}
        assert h.get("/jobs", params={"status": "queued", "endpoint": ep["name"]}).json()["data"] == []
        bad = h.get("/jobs", params={"status": "done"})
        assert bad.status_code == 422 and "status" in bad.json()["error"]["message"]
        assert h.get("/jobs/job-000000000000000000000000").status_code == 404
        assert h.post("/jobs/job-000000000000000000000000/cancel").status_code == 404

    other = stack.cli_json("token", "create", "--name", "other-app", "--scope", "inference")["token"]
    mine = stack.cli_json("token", "create", "--name", "my-app", "--scope", "inference")["token"]
    own_job = submit(stack, chat(ep["routing_key"]), {"Authorization": f"Bearer {mine}"})
    assert wait_job(stack, own_job, ("succeeded",), token=mine)["id"] == own_job  # the submitter reads it
    assert wait_job(stack, own_job, ("succeeded",), token=ADMIN)["id"] == own_job  # an admin too
    theirs = httpx.get(f"{stack.url}/jobs/{own_job}", headers={"Authorization": f"Bearer {other}"})
    assert theirs.status_code == 404  # another token: as if it did not exist
    assert (
        httpx.post(f"{stack.url}/jobs/{own_job}/cancel", headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )
    other_list = httpx.get(f"{stack.url}/jobs", headers={"Authorization": f"Bearer {other}"}).json()["data"]
    assert own_job not in {j["id"] for j in other_list}
    # a job is admitted like a request: no token on a token endpoint is 401, nothing queued
    refused = httpx.post(
        f"{stack.url}/v1/chat/completions", json=chat(ep["routing_key"]), headers={"Prefer": "respond-async"}
    )
    assert refused.status_code == 401


class Receiver:
    """A local webhook receiver that answers 500 to its first `fail` deliveries."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.bodies: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(500 if len(owner.bodies) <= owner.fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhook_retried_until_delivered(stack: Podium) -> None:
    ep = create_fake(stack, "hooked")
    stack.wait_state(ep["id"], "serving")
    receiver = Receiver(fail=2)
    try:
        job_id = submit(stack, chat(ep["routing_key"]), {"X-Podium-Webhook": receiver.url})
        deadline = time.monotonic() + 20
        while True:
            job = wait_job(stack, job_id, ("succeeded",))
            if job["webhook"]["state"] != "pending":
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["webhook"]["state"] == "delivered"
        attempts = job["webhook"]["attempts"]
        assert [a["status"] for a in attempts] == [500, 500, 200]
        assert attempts[1]["at"] - attempts[0]["at"] >= 0.4  # backoff, not a hot loop

        delivered = json.loads(receiver.bodies[-1])
        assert delivered["id"] == job_id and delivered["status"] == "succeeded"
        assert delivered["response"]["status_code"] == 200
    finally:
        receiver.close()
    bad = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json=chat(ep["routing_key"]),
        headers={**ASYNC, "X-Podium-Webhook": "ftp://x"},
    )
    assert bad.status_code == 422 and "X-Podium-Webhook" in bad.json()["error"]["message"]


def worker_requests(p: Podium, app_name: str) -> int:
    stats = httpx.get(f"{p.url}/e/{app_name}/admin/stats", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5)
    return int(stats.json()["by_path"].get("/v1/chat/completions", 0))


def test_cancel_queued_never_starts_and_running_is_cut(stack: Podium) -> None:
    ep = create_fake(stack, "cancels", "--max-concurrency", "1")
    stack.wait_state(ep["id"], "serving")
    running = submit(stack, chat(ep["routing_key"], delay=5))
    wait_job(stack, running, ("running",))
    queued = submit(stack, chat(ep["routing_key"]))
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5) as h:
        assert h.post(f"/jobs/{queued}/cancel").json()["status"] == "cancelled"
        assert h.post(f"/jobs/{running}/cancel").json()["status"] == "cancelled"
        # the running request is cut: the replica's only slot is free again for a sync request at once
        started = time.monotonic()
        assert h.post("/v1/chat/completions", json=chat(ep["routing_key"])).status_code == 200
        assert time.monotonic() - started < 5
        assert h.get(f"/jobs/{queued}").json()["started_at"] is None
        assert h.get(f"/jobs/{running}").json()["status"] == "cancelled"  # not overwritten by a late result
    assert worker_requests(stack, ep["app_name"]) == 2  # the running job and the sync request: never the queued


def test_sync_requests_go_before_queued_jobs(stack: Podium) -> None:
    ep = create_fake(stack, "busy", "--max-concurrency", "1")
    stack.wait_state(ep["id"], "serving")
    jobs = [submit(stack, chat(ep["routing_key"], delay=0.4)) for _ in range(5)]
    wait_job(stack, jobs[0], ("running", "succeeded"))  # the queue has started (a busy machine may poll late)
    started = time.monotonic()
    sync = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json=chat(ep["routing_key"]),
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    took = time.monotonic() - started
    assert sync.status_code == 200
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5) as h:
        unfinished = [j for j in jobs if h.get(f"/jobs/{j}").json()["status"] in ("queued", "running")]
    # the sync request waited for at most the one job holding the slot, not for the queue behind it
    assert took < 1.5, took
    assert len(unfinished) >= 3, unfinished
    for j in jobs:
        assert wait_job(stack, j, ("succeeded", "failed"))["status"] == "succeeded"


def test_a_job_wakes_an_endpoint_at_zero(stack: Podium) -> None:
    ep = create_fake(stack, "sleepy", "--min-replicas", "0")
    stack.wait_state(ep["id"], "idle")
    job_id = submit(stack, chat(ep["routing_key"]))
    job = wait_job(stack, job_id, ("succeeded", "failed"), timeout=30)
    assert job["status"] == "succeeded", job
    assert stack.wait_state(ep["id"], "serving")["status"]["state"] == "serving"


def test_queued_jobs_are_bounded_per_endpoint(stack: Podium) -> None:
    body = {
        "name": "bounded",
        "container": {"command": fake_worker_command(), "port": 8000, "env": {"PODIUM_TEST_MARK": stack.mark}},
        "scaling": {"max_concurrency": 1},
        "jobs": {"max_queued": 2},
    }
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as h:
        ep = h.post("/v0/endpoints", json=body).json()
        stack.wait_state(ep["id"], "serving")
        running = submit(stack, chat(ep["routing_key"], delay=3))
        wait_job(stack, running, ("running",))
        queued = [submit(stack, chat(ep["routing_key"])) for _ in range(2)]
        full = h.post("/v1/chat/completions", json=chat(ep["routing_key"]), headers={"Prefer": "respond-async"})
        assert full.status_code == 429, [h.get(f"/jobs/{j}").json() for j in [running, *queued]]
        assert full.json()["error"]["code"] == "jobs_queue_full" and "max_queued" in full.json()["error"]["message"]
        assert int(full.headers["retry-after"]) >= 1
        for job_id in [running, *queued]:
            h.post(f"/jobs/{job_id}/cancel")
        # the job policy is the queue's business: changing it makes no revision and restarts no replica
        replicas = [i["id"] for i in h.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]]
        assert h.patch(f"/v0/endpoints/{ep['id']}", json={"jobs": {"max_queued": 5}}).status_code == 200
        assert len(h.get(f"/v0/endpoints/{ep['id']}/revisions").json()["revisions"]) == 1
        ep_after = h.get(f"/v0/endpoints/{ep['id']}").json()
        assert ep_after["spec"]["jobs"]["max_queued"] == 5
        assert [i["id"] for i in ep_after["status"]["instances"]] == replicas
