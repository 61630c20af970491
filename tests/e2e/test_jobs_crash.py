"""`kill -9` of `podium up` with jobs queued and running, then a restart on the same data dir: no queued
job is lost; a running job is retried once where the endpoint's spec says `jobs.retry_running`, and
failed with the reason otherwise; none runs twice without saying so (attempts)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import (
    ADMIN,
    Podium,
    assert_no_replicas_left,
    fake_worker_command,
    start_podium,
    stop_podium,
)
from tests.e2e.test_jobs import chat, submit, wait_job


def endpoint(p: Podium, name: str, retry: bool) -> dict:
    body = {
        "name": name,
        "container": {"command": fake_worker_command(), "port": 8000, "env": {"PODIUM_TEST_MARK": p.mark}},
        "scaling": {"max_concurrency": 1, "max_replicas": 1},
        "jobs": {"retry_running": retry},
    }
    with httpx.Client(base_url=p.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10) as h:
        resp = h.post("/v0/endpoints", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()


@pytest.mark.slow
def test_kill_9_loses_no_job_and_runs_none_twice_silently(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    p = start_podium(data_dir, free_port())
    try:
        retry = endpoint(p, "retried", retry=True)
        once = endpoint(p, "once", retry=False)
        p.wait_state(retry["id"], "serving")
        p.wait_state(once["id"], "serving")
        again = submit(p, chat(retry["routing_key"], delay=4))
        failed = submit(p, chat(once["routing_key"], delay=4))
        wait_job(p, again, ("running",))
        wait_job(p, failed, ("running",))
        behind = submit(p, chat(once["routing_key"]))  # queued behind the running one (one slot)
        assert wait_job(p, behind, ("queued",))["status"] == "queued"
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait(timeout=10)
        p = start_podium(data_dir, free_port())

        retried = wait_job(p, again, ("succeeded", "failed"), timeout=40)
        assert retried["status"] == "succeeded" and retried["attempts"] == 2, json.dumps(retried)
        assert "retried once" in retried["error"]
        lost = wait_job(p, failed, ("succeeded", "failed"), timeout=20)
        assert lost["status"] == "failed" and lost["attempts"] == 1, lost
        assert "jobs.retry_running is false" in lost["error"]
        assert lost["response"] is None
        kept = wait_job(p, behind, ("succeeded", "failed"), timeout=40)
        assert kept["status"] == "succeeded" and kept["attempts"] == 1, kept
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)
