#!/usr/bin/env python3
"""Issue 18's GPU check: Podium on a GPU machine places a GPU endpoint and serves a real completion.

Run by scripts/gpu-check.sh (which installs Podium from carried wheels first). Steps, each
recorded in OUT/gpu-check.json and OUT/gpu-check.md:
 1. nvidia-smi's GPUs, and the `local` region's inventory as Podium detected it;
 2. `podium up` with a catalog file adding `podium/tiny-gpt2` (the transformers engine, a 2-layer
    GPT-2 built in place) on the detected GPU type, 1 GPU;
 3. an endpoint of it; its replica's CUDA_VISIBLE_DEVICES, device and GPU name (the worker says);
 4. one completion through the gateway, timed;
 5. usage: GPU-seconds billed after the endpoint is deleted.
`--rehearse` runs the same flow here without a GPU: the fake worker on a declared `h200`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ADMIN = "gpu-check-admin-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def catalog_file(gpu_type: str, rehearse: bool) -> str:
    engine = "fake" if rehearse else "transformers"
    engines = (
        'engines:\n  - name: fake\n    command: ["{{python}}", "-m", "podium.worker.fake"]\n'
        '    process_args: ["--port", "$PORT", "--model", "{{served_model_name}}"]\n    health_check_path: /health\n'
        if rehearse
        else ""
    )
    region = "regions:\n  - name: local\n    inventory: {gpus: {h200: 1}}\n" if rehearse else ""
    args = "[]" if rehearse else '["--tiny", "--max-new-tokens", "16"]'
    return f"""{engines}{region}templates:
  - model_name: podium/tiny-gpt2
    engine: {engine}
    start_timeout_s: 300
    flavors:
      - name: base
        description: A 2-layer GPT-2 built in place (random weights) to prove a replica computes on its GPU.
        memory_gb: 1
        args: {args}
        gpus: [{{gpu_type: {gpu_type}, gpu_counts: [1]}}]
"""


def wait_for(what: str, check: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise SystemExit(f"gpu-check: timed out waiting for {what}")


def run(out: Path, rehearse: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"rehearse": rehearse, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    smi = (
        subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv"], capture_output=True, text=True
        )
        if not rehearse
        else None
    )
    res["nvidia_smi"] = smi.stdout if smi else "(rehearsal: no nvidia-smi)"
    from podium.catalog import Catalog

    detected = Catalog.load().region("local").gpus if not rehearse else {"h200": [0]}
    res["detected"] = detected
    gpu_type = next((t for t in detected if t != "cpu"), None)
    if gpu_type is None:
        raise SystemExit(f"gpu-check: Podium detected no GPU: {res['nvidia_smi']}")
    data = out / "podium-data"
    (data / "catalog").mkdir(parents=True, exist_ok=True)
    (data / "catalog" / "gpu-check.yaml").write_text(catalog_file(gpu_type, rehearse))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN, "PODIUM_API_TOKEN": ADMIN, "PODIUM_URL": url}
    log = open(out / "podium-up.log", "wb")  # noqa: SIM115 - closed after the process
    up = subprocess.Popen(
        [sys.executable, "-m", "podium.cli.main", "up", "--port", str(port), "--data-dir", str(data)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        h = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
        wait_for("podium up", lambda: _ok(h, "/healthz"), 60)
        res["region"] = h.get("/v0/regions/local").json()
        body = {
            "name": "gpu-check",
            "template": {"model_name": "podium/tiny-gpt2"},
            "compute": {"gpu_type": gpu_type, "gpu_count": 1},
            "scaling": {"min_replicas": 1, "max_replicas": 1},
        }
        created = h.post("/v0/endpoints", json=body)
        created.raise_for_status()
        ep = created.json()
        t0 = time.monotonic()
        wait_for("a ready replica", lambda: _state(h, ep["id"]) == "serving", 300)
        res["ready_s"] = round(time.monotonic() - t0, 2)
        t1 = time.monotonic()
        auth = {"Authorization": f"Bearer {ep.get('token') or ADMIN}"}
        comp = h.post(
            "/v1/completions",
            headers=auth,
            json={"model": ep["routing_key"], "prompt": "Podium on a GPU:", "max_tokens": 16},
        )
        res["completion_s"] = round(time.monotonic() - t1, 3)
        res["completion_status"] = comp.status_code
        res["completion"] = comp.json()
        res["events"] = [e.get("message") for e in h.get(f"/v0/endpoints/{ep['id']}/events").json().get("events", [])]
        h.delete(f"/v0/endpoints/{ep['id']}")
        wait_for("the endpoint to go", lambda: h.get(f"/v0/endpoints/{ep['id']}").status_code == 404, 120)
        res["usage"] = h.get("/v0/usage").json()
    finally:
        up.terminate()
        up.wait(timeout=60)
        log.close()
    return res


def _state(h: httpx.Client, endpoint_id: str) -> str:
    """The endpoint's state, printed when it changes (a stuck start shows where it is)."""
    st = h.get(f"/v0/endpoints/{endpoint_id}").json().get("status", {})
    state = f"{st.get('state')} {st.get('last_error') or ''}".strip()
    if state != getattr(_state, "last", None):
        print(f"gpu-check: endpoint {state}", file=sys.stderr, flush=True)
        _state.last = state  # type: ignore[attr-defined]
    return str(st.get("ready_replicas", 0) and st.get("state"))


def _ok(h: httpx.Client, path: str) -> bool:
    try:
        return h.get(path).status_code == 200
    except httpx.HTTPError:
        return False


def verdict(res: dict[str, Any]) -> list[str]:
    """What the issue asks to show; [] when everything holds."""
    bad = []
    worker = res.get("completion", {}).get("podium_worker", {})
    if res.get("completion_status") != 200:
        bad.append(f"completion answered {res.get('completion_status')}")
    if not res["rehearse"]:
        if not str(worker.get("device", "")).startswith("cuda"):
            bad.append(f"the model ran on {worker.get('device')}, not a GPU")
        if worker.get("cuda_visible_devices") in (None, ""):
            bad.append("CUDA_VISIBLE_DEVICES was not set for the replica")
    if not res.get("usage", {}).get("gpu_seconds", 0) > 0:
        bad.append("usage recorded no GPU-seconds")
    return bad


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.environ.get("OUT", "gpu-check-out"))
    p.add_argument("--rehearse", action="store_true", help="no GPU: the fake worker on a declared h200")
    ns = p.parse_args()
    out = Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run(out, ns.rehearse)
    res["problems"] = verdict(res)
    (out / "gpu-check.json").write_text(json.dumps(res, indent=1, default=str))
    worker = res.get("completion", {}).get("podium_worker", {})
    choices = json.dumps(res.get("completion", {}).get("choices"))[:200]
    usage = res.get("usage", {})
    lines = [
        f"gpu-check {'(rehearsal, no GPU)' if ns.rehearse else ''} {res['started']}",
        f"detected: {res['detected']}",
        f"replica: ready in {res.get('ready_s')} s; worker {worker}",
        f"completion: HTTP {res.get('completion_status')} in {res.get('completion_s')} s: {choices}",
        f"usage: gpu_seconds={usage.get('gpu_seconds')} replica_seconds={usage.get('replica_seconds')}",
        f"problems: {res['problems'] or 'none'}",
    ]
    (out / "gpu-check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
