"""Async jobs on a real `podium up`: `Prefer: respond-async` -> 202 + Location, the job runs through the
gateway on a fake-worker replica, GET /jobs/{id} shows it; listing, access (another token's job is
404), cancel (queued never starts, running is cut), webhooks (a failing receiver is retried), sync
requests served before queued jobs, a job waking an endpoint at zero, the per-endpoint bound. And the
OpenAI Batch API driven by the official `openai` client unchanged: a batch of 100 requests (plus a
malformed line and an unknown model, which go to the error file while the rest runs), cancel, 413,
404s. One stack for the module (its start and stop are most of the time): each test has its own
endpoint."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import openai
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
    ep = create_fake(stack, "cancels", "--max-concurrency", "1", "--max-replicas", "1")
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
    ep = create_fake(stack, "busy", "--max-concurrency", "1", "--max-replicas", "1")
    stack.wait_state(ep["id"], "serving")
    jobs = [submit(stack, chat(ep["routing_key"], delay=0.4)) for _ in range(5)]
    wait_job(stack, jobs[0], ("running", "succeeded"))  # the queue has started (a busy machine may poll late)
    sent = time.time()
    sync = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json=chat(ep["routing_key"]),
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )
    done = time.time()
    assert sync.status_code == 200
    rows = [wait_job(stack, j, ("succeeded", "failed")) for j in jobs]
    assert [r["status"] for r in rows] == ["succeeded"] * 5
    # no job that started once the sync request was waiting got the slot before it: it waited at most
    # for the job holding the slot, never for the queue behind it (0.1 s: its way to the gateway)
    overtook = [r["id"] for r in rows if r["started_at"] > sent + 0.1 and r["finished_at"] < done]
    assert overtook == [], (sent, done, rows)
    assert sum(r["finished_at"] > done for r in rows) >= 2  # and jobs were still queued behind it
    assert done - sent < 0.4 * 2 + 1.0  # one job's time, and slack for a busy machine


def test_a_job_wakes_an_endpoint_at_zero(stack: Podium) -> None:
    ep = create_fake(stack, "sleepy", "--min-replicas", "0")
    stack.wait_state(ep["id"], "idle")
    job_id = submit(stack, chat(ep["routing_key"]))
    job = wait_job(stack, job_id, ("succeeded", "failed"), timeout=30)
    assert job["status"] == "succeeded", job
    assert stack.wait_state(ep["id"], "serving")["status"]["state"] == "serving"


def test_a_backlog_of_jobs_scales_the_endpoint_out(stack: Podium) -> None:
    """Jobs use the replicas' slots and count as demand (tests/jobs/test_runner_stats.py): a busy endpoint
    with jobs waiting grows to its max_replicas."""
    ep = create_fake(stack, "crowded", "--max-concurrency", "1", "--max-replicas", "2")
    stack.wait_state(ep["id"], "serving")
    jobs = [submit(stack, chat(ep["routing_key"], delay=0.5)) for _ in range(8)]
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5) as h:
        while len(h.get(f"/v0/endpoints/{ep['id']}").json()["status"]["instances"]) < 2:
            assert time.monotonic() < deadline, "queued jobs never scaled the endpoint out"
            time.sleep(0.05)
        for job_id in jobs:
            h.post(f"/jobs/{job_id}/cancel")


def test_queued_jobs_are_bounded_per_endpoint(stack: Podium) -> None:
    body = {
        "name": "bounded",
        "container": {"command": fake_worker_command(), "port": 8000, "env": {"PODIUM_TEST_MARK": stack.mark}},
        "scaling": {"max_concurrency": 1, "max_replicas": 1},  # one slot: queued jobs would scale it out
        "jobs": {"max_queued": 2},
    }
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as h:
        ep = h.post("/v0/endpoints", json=body).json()
        stack.wait_state(ep["id"], "serving")
        running = submit(stack, chat(ep["routing_key"], delay=3))
        wait_job(stack, running, ("running",))
        queued = [submit(stack, chat(ep["routing_key"])) for _ in range(2)]
        full = h.post("/v1/chat/completions", json=chat(ep["routing_key"]), headers={"Prefer": "respond-async"})
        states = [
            (j["status"], j["attempts"], j["error"]) for j in (h.get(f"/jobs/{i}").json() for i in [running, *queued])
        ]
        assert full.status_code == 429, states
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


def client(p: Podium) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{p.url}/v1", api_key=ADMIN, max_retries=0)


def line(custom_id: str, model: str, delay: float = 0.0) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": custom_id}], "fake_delay": delay}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}).encode()


def wait_batch(c: openai.OpenAI, batch_id: str, statuses: tuple[str, ...], timeout: float = 60) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch never reached {statuses}: {batch}"
        time.sleep(0.1)


def test_batch_of_100_with_a_malformed_line(stack: Podium) -> None:
    ep = create_fake(stack, "batched")
    stack.wait_state(ep["id"], "serving")
    c = client(stack)
    lines = [line(f"req-{i}", ep["routing_key"]) for i in range(100)]
    lines.insert(50, b'{"custom_id": "broken", "method": "POST", "url": ')  # malformed JSON
    lines.append(line("nowhere", "no-such-model"))
    upload = c.files.create(file=("requests.jsonl", io.BytesIO(b"\n".join(lines) + b"\n")), purpose="batch")
    assert upload.purpose == "batch" and upload.bytes > 0
    assert c.files.retrieve(upload.id).filename == "requests.jsonl"

    started = time.monotonic()
    batch = c.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "in_progress" and batch.request_counts is not None
    done = wait_batch(c, batch.id, ("completed", "failed"))
    elapsed = time.monotonic() - started
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (102, 100, 2)
    assert batch.id in {b.id for b in c.batches.list(limit=10).data}

    assert done.output_file_id and done.error_file_id
    output = [json.loads(x) for x in c.files.content(done.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in output) == sorted(f"req-{i}" for i in range(100))
    assert all(o["response"]["status_code"] == 200 and o["error"] is None for o in output)
    assert output[0]["response"]["body"]["choices"][0]["message"]["content"]
    errors = [json.loads(x) for x in c.files.content(done.error_file_id).text.splitlines()]
    codes = {e["error"]["code"] for e in errors}
    assert codes == {"invalid_json", "model_not_found"}, errors
    assert "line 51" in next(e for e in errors if e["error"]["code"] == "invalid_json")["error"]["message"]
    assert c.files.delete(upload.id).deleted
    with pytest.raises(openai.NotFoundError):
        c.files.retrieve(upload.id)
    print(f"batch of 100 through the fake worker: {elapsed:.2f} s ({100 / elapsed:.0f} jobs/s)")


def test_cancel_a_batch(stack: Podium) -> None:
    ep = create_fake(stack, "slow-batch", "--max-concurrency", "1", "--max-replicas", "1")
    stack.wait_state(ep["id"], "serving")
    c = client(stack)
    content = b"\n".join(line(f"r{i}", ep["routing_key"], delay=0.3) for i in range(20))
    upload = c.files.create(file=("slow.jsonl", io.BytesIO(content)), purpose="batch")
    batch = c.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    cancelling = c.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_batch(c, batch.id, ("cancelled",), timeout=20)
    assert done.request_counts is not None and done.request_counts.completed < 20
    assert done.error_file_id
    errors = [json.loads(x) for x in c.files.content(done.error_file_id).text.splitlines()]
    assert errors and all(e["error"]["code"] == "batch_cancelled" for e in errors)


def test_batch_bad_input(stack: Podium) -> None:
    c = client(stack)
    with pytest.raises(openai.APIStatusError) as too_big:
        c.files.create(file=("big.jsonl", io.BytesIO(b"x" * (49 * 1024 * 1024))), purpose="batch")
    assert too_big.value.status_code == 413
    with pytest.raises(openai.NotFoundError):
        c.batches.retrieve("batch-000000000000000000000000")
    with pytest.raises(openai.NotFoundError):
        c.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    anonymous = openai.OpenAI(base_url=f"{stack.url}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.batches.list()
