"""Rollout and rollback of a 2-replica endpoint under steady load (issue 13), against a real `podium up`.

  .venv/bin/python benchmarks/rollout.py --worker fake     # the fake OpenAI worker
  .venv/bin/python benchmarks/rollout.py --worker llama    # the CPU template (llama.cpp, SmolLM2-135M)

Load: a few threads of chat completions through the `openai` client, half of them streamed, for the
whole run; every non-2xx answer, exception or stream without its final chunk is a failure.
Measured: rollout = PATCH answered -> every replica ready on the new revision (old ones drained);
rollback = POST .../rollback answered -> every replica back on the old revision.
The fake endpoint changes an env var; the template endpoint changes its flavor (base <-> long).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai

ADMIN = "bench-admin"
TEMPLATE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, cond: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - t0


class Load:
    def __init__(self, url: str, model: str, threads: int, max_tokens: int) -> None:
        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.ok = self.streams = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i % 2 == 1,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _run(self, stream: bool) -> None:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=ADMIN, max_retries=0, timeout=60)
        messages: list[Any] = [{"role": "user", "content": "Say hello."}]
        while not self._stop.is_set():
            try:
                if stream:
                    finish = None
                    for c in client.chat.completions.create(
                        model=self.model, messages=messages, max_tokens=self.max_tokens, stream=True
                    ):
                        if c.choices and c.choices[0].finish_reason:
                            finish = c.choices[0].finish_reason
                    if finish is None:
                        raise RuntimeError("stream cut before its final chunk")
                else:
                    client.chat.completions.create(model=self.model, messages=messages, max_tokens=self.max_tokens)
                with self._lock:
                    self.ok += 1
                    self.streams += stream
            except Exception as exc:
                with self._lock:
                    self.failures.append(repr(exc)[:200])


def all_on(h: httpx.Client, eid: str, revision: int) -> bool:
    st = h.get(f"/v0/endpoints/{eid}").json()["status"]
    inst = st["instances"]
    return (
        st["rollout"] is None
        and len(inst) == 2
        and all(i["revision"] == revision and i["state"] == "ready" for i in inst)
    )


def endpoint_body(worker: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create body, the PATCH that makes a new revision)."""
    scaling = {"min_replicas": 2, "max_replicas": 2}
    if worker == "fake":
        command = f"{sys.executable} -m podium.worker.fake --port $PORT"
        return (
            {"name": "bench-roll", "container": {"command": command}, "scaling": scaling},
            {"container": {"env": {"ROLL": "2"}}},
        )
    body = {"name": "bench-roll", "template": {"model_name": TEMPLATE, "flavor_name": "base"}, "scaling": scaling}
    return body, {"template": {"flavor_name": "long"}}


def run(worker: str, threads: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="podium-bench-rollout-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
    log = open(data / "podium.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "podium.cli.main", "up", "--port", str(port), "--data-dir", str(data / "d")]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as h:
            wait("podium up", lambda: _ok(h, "/healthz"), 60)
            create, change = endpoint_body(worker)
            ep = h.post("/v0/endpoints", json=create).json()
            eid = ep["id"]
            wait("2 ready replicas", lambda: all_on(h, eid, 1), 180)
            with Load(url, ep["routing_key"], threads, 8 if worker == "llama" else 4) as load:
                time.sleep(2)  # steady load first
                assert h.patch(f"/v0/endpoints/{eid}", json=change).status_code == 200
                rollout_s = wait("rollout", lambda: all_on(h, eid, 2), 300)
                time.sleep(2)
                assert h.post(f"/v0/endpoints/{eid}/rollback", json={}).status_code == 200
                rollback_s = wait("rollback", lambda: all_on(h, eid, 1), 300)
                time.sleep(2)
            print(
                f"{worker}: rollout {rollout_s:.2f} s, rollback {rollback_s:.2f} s; "
                f"{load.ok} requests ok ({load.streams} streams), {len(load.failures)} failed"
            )
            for f in load.failures[:5]:
                print("  failure:", f)
    finally:
        proc.terminate()
        proc.wait(30)


def _ok(h: httpx.Client, path: str) -> bool:
    try:
        return h.get(path).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=["fake", "llama"], default="fake")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    for _ in range(args.rounds):
        run(args.worker, args.threads)
