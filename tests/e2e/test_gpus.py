"""GPU assignment with a declared inventory on this CPU machine: each replica gets its own devices in
CUDA_VISIBLE_DEVICES, nobody shares one, and a replica's GPUs are free again when it ends."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import ADMIN, start_podium, stop_podium

ENV_ECHO = Path(__file__).with_name("replica_server.py")


def test_declared_gpus_are_assigned_without_sharing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    (data_dir / "catalog" / "region.yaml").write_text(
        "regions:\n  - name: local\n    runtime: local\n    inventory:\n      gpus: {h100: [0, 1, 2]}\n"
    )
    p = start_podium(data_dir, free_port())
    try:
        ep = p.cli_json(
            "endpoint",
            "create",
            "--name",
            "gpu",
            "--container-command",
            f"{PYTHON} {ENV_ECHO} $PORT",
            "--gpu-type",
            "h100",
            "--gpu-count",
            "1",
            "--min-replicas",
            "2",
            "--max-replicas",
            "2",
            "--env",
            f"PODIUM_TEST_MARK={p.mark}",
        )
        served = p.wait_state(ep["id"], "serving", timeout=20)
        gpus = sorted(tuple(i["gpus"]) for i in served["status"]["instances"])
        assert len(gpus) == 2 and len(set(gpus)) == 2 and all(len(g) == 1 for g in gpus)
        seen = set()
        with httpx.Client(headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            for _ in range(20):
                seen.add(c.get(f"{p.url}/e/{ep['app_name']}/env?name=CUDA_VISIBLE_DEVICES").json()["value"])
        assert seen == {str(g[0]) for g in gpus}  # each replica sees exactly its own device
        usage = p.cli_json("usage")
        assert usage["endpoints"][0]["running_replicas"] == 2
    finally:
        stop_podium(p)
