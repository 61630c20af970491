"""The fake worker over real HTTP: OpenAI shapes (via the real `openai` client), streaming, the
echo route, and every knob tests elsewhere rely on (delays, health flips, crashes, slow start)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from openai import AsyncOpenAI

from podium.worker.fake import FakeConfig, FakeWorker, parse_args
from tests.conftest import PYTHON, free_port


@pytest.fixture
async def worker() -> AsyncIterator[FakeWorker]:
    async with FakeWorker(FakeConfig(model="served-name")) as w:
        yield w


@pytest.fixture
async def http(worker: FakeWorker) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as client:
        yield client


def openai_client(worker: FakeWorker) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"{worker.url}/v1", api_key="unused", max_retries=0)


async def test_health_and_models(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).status_code == 200
    models = (await http.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["served-name"]


async def test_chat_echoes_model_and_is_deterministic(worker: FakeWorker) -> None:
    client = openai_client(worker)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    first = await client.chat.completions.create(model="rewritten-model", messages=msgs)  # type: ignore[arg-type]
    second = await client.chat.completions.create(model="rewritten-model", messages=msgs)  # type: ignore[arg-type]
    assert first.model == "rewritten-model"
    assert first.choices[0].message.content == "tok0 tok1 tok2 tok3 "
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage is not None and first.usage.prompt_tokens == 6 and first.usage.completion_tokens == 4


async def test_chat_streaming_ends_with_done(worker: FakeWorker, http: httpx.AsyncClient) -> None:
    client = openai_client(worker)
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        max_tokens=5,
        stream_options={"include_usage": True},
    )
    pieces, models, usage = [], set(), None
    async for chunk in stream:
        models.add(chunk.model)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces) == "tok0 tok1 tok2 tok3 tok4 "
    assert models == {"m"} and usage is not None and usage.completion_tokens == 5
    raw = await http.post("/v1/chat/completions", json={"model": "m", "messages": [], "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


async def test_stream_chunks_arrive_spread_out(http: httpx.AsyncClient) -> None:
    """Chunks are flushed one by one (a gateway test can see a buffering proxy)."""
    body = {"model": "m", "messages": [], "stream": True, "fake_chunks": 3, "fake_chunk_delay": 0.15}
    arrivals = []
    start = time.monotonic()
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5  # role chunk, 3 content chunks, finish chunk
    assert arrivals[-1] - arrivals[1] >= 0.25


async def test_completions_and_embeddings(worker: FakeWorker) -> None:
    client = openai_client(worker)
    done = await client.completions.create(model="c", prompt="Once upon", max_tokens=2)
    assert done.model == "c" and done.choices[0].text == "tok0 tok1 "
    texts = []
    async for chunk in await client.completions.create(model="c", prompt="x", max_tokens=3, stream=True):
        texts.append(chunk.choices[0].text)
    assert "".join(texts) == "tok0 tok1 tok2 "
    emb = await client.embeddings.create(model="e", input=["alpha", "beta", "alpha"])
    vecs = [d.embedding for d in emb.data]
    assert emb.model == "e" and len(vecs) == 3 and len(vecs[0]) == 8
    assert vecs[0] == vecs[2] and vecs[0] != vecs[1]
    assert abs(sum(x * x for x in vecs[0]) - 1) < 1e-3


async def test_other_paths_describe_the_request(http: httpx.AsyncClient) -> None:
    resp = await http.put("/rest/items?x=1&y=two", content=b"raw body", headers={"X-Custom": "yes"})
    data = resp.json()
    assert (data["method"], data["path"], data["query_string"]) == ("PUT", "/rest/items", "x=1&y=two")
    assert data["query"] == {"x": "1", "y": "two"}
    assert data["headers"]["X-Custom"] == "yes" and data["body"] == "raw body"


async def test_errors_and_status_knob(http: httpx.AsyncClient) -> None:
    bad = await http.post("/v1/chat/completions", content=b"not json")
    assert bad.status_code == 400 and "error" in bad.json()
    forced = await http.post("/v1/chat/completions?status=503", json={"model": "m", "messages": []})
    assert forced.status_code == 503 and forced.json()["error"]["code"] == "503"


async def test_delay_and_concurrency_counters(worker: FakeWorker, http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": [], "fake_delay": 0.2}
    start = time.monotonic()
    await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(4)))
    assert 0.2 <= time.monotonic() - start < 1.5  # concurrent, not serial
    stats = (await http.get("/admin/stats")).json()
    assert stats["requests"] == 4 and stats["max_in_flight"] == 4 and stats["in_flight"] == 0


async def test_a_client_that_leaves_ends_its_request(worker: FakeWorker, http: httpx.AsyncClient) -> None:
    """As a real engine aborts a generation whose client is gone; else a cancelled job or a cut
    request keeps the replica busy, and its drain and stop wait for a request nobody reads."""
    body = {"model": "m", "messages": [], "fake_delay": 30}
    async with httpx.AsyncClient(base_url=worker.url) as leaving:
        task = asyncio.create_task(leaving.post("/v1/chat/completions", json=body))
        deadline = time.monotonic() + 5
        while worker.counters.in_flight == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    deadline = time.monotonic() + 5
    while (await http.get("/admin/stats")).json()["in_flight"] != 0:
        assert time.monotonic() < deadline, "the request went on after its client left"
        await asyncio.sleep(0.02)


async def test_health_toggle(http: httpx.AsyncClient) -> None:
    await http.post("/admin/health", json={"ok": False})
    assert (await http.get("/health")).status_code == 503
    await http.post("/admin/health", json={"ok": None})
    assert (await http.get("/health")).status_code == 200


async def test_health_fail_after_and_ready_after() -> None:
    async with FakeWorker(FakeConfig(health_fail_after=2)) as w, httpx.AsyncClient(base_url=w.url) as h:
        codes = [(await h.get("/health")).status_code for _ in range(4)]
        assert codes == [200, 200, 503, 503]
    async with FakeWorker(FakeConfig(ready_after_s=0.3)) as w, httpx.AsyncClient(base_url=w.url) as h:
        assert (await h.get("/health")).status_code == 503
        await asyncio.sleep(0.35)
        assert (await h.get("/health")).status_code == 200


def test_config_from_env_and_flags() -> None:
    env = {"PORT": "9123", "FAKE_MODEL": "from-env", "FAKE_CHUNK_DELAY": "0.5", "FAKE_EXIT_AFTER": "3"}
    config, host, port = parse_args([], env)
    assert (host, port, config.model, config.chunk_delay_s, config.exit_after) == (
        "127.0.0.1",
        9123,
        "from-env",
        0.5,
        3,
    )
    config, _, port = parse_args(["--port", "1", "--model", "flag", "--chunks", "9"], env)
    assert (port, config.model, config.chunks) == (1, "flag", 9)
    assert FakeConfig.from_env({"PODIUM_SERVED_MODEL_NAME": "served"}).model == "served"


# --- as a process: what the local runtime starts ------------------------------------------------


@pytest.fixture
def spawn() -> Iterator:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen(
            [PYTHON, "-m", "podium.worker.fake", *args],
            env={**os.environ, "PORT": str(port), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        return proc, f"http://127.0.0.1:{port}"

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 15) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise AssertionError("fake worker never became healthy")


def test_process_exits_after_n_requests(spawn) -> None:  # type: ignore[no-untyped-def]
    proc, url = spawn(FAKE_EXIT_AFTER="2", FAKE_EXIT_CODE="7")
    wait_healthy(proc, url)
    body = {"model": "m", "messages": []}
    assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200
    assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200  # answered, then exits
    assert proc.wait(timeout=5) == 7


def test_process_crashes_mid_stream(spawn) -> None:  # type: ignore[no-untyped-def]
    proc, url = spawn()
    wait_healthy(proc, url)
    body = {"model": "m", "messages": [], "stream": True, "fake_crash_after": 2, "fake_chunks": 5}
    with pytest.raises(httpx.HTTPError), httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        for _ in resp.iter_lines():  # the connection drops while reading
            pass
    assert proc.wait(timeout=5) == 3


def test_process_slow_start_and_sigterm(spawn) -> None:  # type: ignore[no-untyped-def]
    proc, url = spawn("--start-delay", "0.6", "--model", "slow")
    assert wait_healthy(proc, url) >= 0.5
    assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == "slow"
    proc.terminate()
    assert proc.wait(timeout=5) == 0
