"""Ray vs local runtime, through a real `podium up` (issue 12 numbers for docs/benchmarks.md).

Starts a simulated Ray cluster (head + two worker nodes with two fake H100 each, tests/ray_cluster.py)
and one `podium up` with the regions `local` (host processes) and `gpu` (that cluster). For each
region: create (min 1) -> first answer, create -> routable (the replica ready in the gateway), and wake
from zero (min 0: the first request wakes it and is held until it answers). The replica is the fake
OpenAI worker, so the numbers are Podium's and the runtime's, not a model's load time.

    .venv/bin/python scripts/bench-ray.py        (needs the ray extra: bash scripts/ci-ray.sh)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import openai  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.e2e.conftest import ADMIN, Podium, create_fake, start_podium, stop_podium  # noqa: E402
from tests.ray_cluster import new_cluster  # noqa: E402

RUNS = 3


def first_answer(p: Podium, model: str) -> None:
    client = openai.OpenAI(base_url=f"{p.url}/v1", api_key=ADMIN, max_retries=0, timeout=120)
    while True:
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            return
        except openai.NotFoundError:  # not routed yet (min 1: the route appears once a replica is ready)
            time.sleep(0.02)


def routable(p: Podium, endpoint_id: str) -> None:
    with p.http() as h:
        while not any(
            i["state"] == "ready" for i in h.get(f"/v0/endpoints/{endpoint_id}").json()["status"]["instances"]
        ):
            time.sleep(0.02)


def measure(p: Podium, region: str, n: int) -> dict[str, float]:
    flags = ["--region", region] + (["--gpu-type", "h100", "--gpu-count", "1"] if region == "gpu" else [])
    t0 = time.monotonic()
    ep = create_fake(p, f"b{region}{n}", *flags, "--min-replicas", "1", "--max-replicas", "1")
    routable(p, ep["id"])
    t_routable = time.monotonic() - t0
    first_answer(p, ep["routing_key"])
    t_first = time.monotonic() - t0
    p.cli("endpoint", "delete", "--id", ep["id"])
    cold = create_fake(p, f"z{region}{n}", *flags, "--min-replicas", "0", "--max-replicas", "1")
    time.sleep(1)  # created at zero: nothing runs
    t1 = time.monotonic()
    client = openai.OpenAI(base_url=f"{p.url}/v1", api_key=ADMIN, max_retries=0, timeout=120)
    client.chat.completions.create(model=cold["routing_key"], messages=[{"role": "user", "content": "hi"}])
    t_wake = time.monotonic() - t1
    p.cli("endpoint", "delete", "--id", cold["id"])
    return {"create->routable": t_routable, "create->first answer": t_first, "wake from zero": t_wake}


def main() -> None:
    cluster = new_cluster()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    p = None
    try:
        cluster.start_head()
        cluster.add_worker(gpus=2, accelerator="H100")
        cluster.add_worker(gpus=2, accelerator="H100")
        data = tmp / "data"
        (data / "catalog").mkdir(parents=True)
        (data / "catalog" / "regions.yaml").write_text(
            "regions:\n  - name: local\n    runtime: local\n"
            f"  - name: gpu\n    runtime: ray\n    ray_address: {cluster.address}\n"
            f"    ray_node_dir: {cluster.node_dir}\n"
        )
        p = start_podium(data, free_port())
        with p.http() as h:
            while h.get("/v0/regions/gpu").json()["inventory"].get("h100") != 4:
                time.sleep(0.2)
        results: dict[str, dict[str, list[float]]] = {}
        for n in range(RUNS):
            for region in ("local", "gpu"):
                for k, v in measure(p, region, n).items():
                    results.setdefault(region, {}).setdefault(k, []).append(v)
        print(f"cluster RSS (head + 2 workers + replicas): {cluster.rss_mb():.0f} MB")
        for region, numbers in results.items():
            for k, vs in numbers.items():
                runs = ", ".join(f"{v:.2f}" for v in vs)
                print(f"{region:6} {k:22} median {statistics.median(vs):.2f}s  (runs: {runs})")
    finally:
        if p is not None:
            stop_podium(p)
        cluster.shutdown()


if __name__ == "__main__":
    main()
