"""The OpenAI Batch API on a real `podium up`, driven by the official `openai` client unchanged: upload a
JSONL file, create a batch of 100 requests (plus a malformed line and an unknown model, which go to the
error file while the rest runs), retrieve and list it, read the output and error files; cancel a batch;
an oversized upload is 413."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, assert_no_replicas_left, create_fake, start_podium, stop_podium


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podium]:
    p = start_podium(tmp_path_factory.mktemp("batch") / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


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
    ep = create_fake(stack, "slow-batch", "--max-concurrency", "1")
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


def test_bad_input(stack: Podium) -> None:
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
