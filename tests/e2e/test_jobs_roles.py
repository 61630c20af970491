"""Jobs in split roles: a `--role gateway` process (no store) accepts `Prefer: respond-async` by handing
the submission to the controller, serves `/jobs` and the Batch API by relaying them there, and the
controller's runner sends each job back through the attached gateway."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import ADMIN
from tests.e2e.test_split_roles import running_cluster


@pytest.mark.slow  # three processes: ~18 s on the shared 2-core machine
def test_jobs_and_a_batch_through_a_gateway_role(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as c:
        c.start("controller")
        c.start("api", "gw1")
        ep = c.create_fake("split-jobs")
        gw = c.url("gw1")
        headers = {"Authorization": f"Bearer {ADMIN}"}
        body = {"model": ep["routing_key"], "messages": [{"role": "user", "content": "hi"}]}
        resp = httpx.post(f"{gw}/v1/chat/completions", json=body, headers={**headers, "Prefer": "respond-async"})
        assert resp.status_code == 202, resp.text
        assert resp.headers["location"] == f"/jobs/{resp.json()['id']}"
        deadline = time.monotonic() + 30
        while (job := httpx.get(f"{gw}{resp.headers['location']}", headers=headers).json())["status"] != "succeeded":
            assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["response"]["status_code"] == 200 and job["response"]["body"]["choices"]
        assert httpx.get(f"{gw}/jobs/job-000000000000000000000000", headers=headers).status_code == 404

        client = openai.OpenAI(base_url=f"{gw}/v1", api_key=ADMIN, max_retries=0)
        lines = [
            {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body} for i in range(5)
        ]
        upload = client.files.create(file=io.BytesIO("\n".join(map(json.dumps, lines)).encode()), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 30
        while (batch := client.batches.retrieve(batch.id)).status != "completed":
            assert time.monotonic() < deadline, batch
            time.sleep(0.1)
        assert batch.output_file_id
        output = client.files.content(batch.output_file_id).text.splitlines()
        assert sorted(json.loads(x)["custom_id"] for x in output) == [f"r{i}" for i in range(5)]
