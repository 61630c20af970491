"""Split roles (`--role controller` + `--role api --controller-url`, one SQLite data dir): the api role
scrapes no engine, yet `endpoint get` shows the replica's engine numbers, read from the controller's
`GET /internal/v0/engine`; with the controller gone they are null and the api still answers at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_leader_roles import until
from tests.e2e.test_split_roles import Cluster, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # ~15 s: two podium processes, a controller restart


def test_api_role_shows_the_controllers_engine_samples(tmp_path: Path) -> None:
    with running_cluster(tmp_path) as cluster:
        check(cluster)


def check(cluster: Cluster) -> None:
    cluster.start("controller", "api")
    ep = cluster.create_fake("eng")
    with cluster.api() as api:

        def status() -> dict[str, Any]:
            return api.get(f"/v0/endpoints/{ep['id']}").json()["status"]  # type: ignore[no-any-return]

        [inst] = until(lambda: status()["instances"] if status()["state"] == "serving" else None, 30, "serving")
        httpx.post(f"http://{inst['address']}/admin/engine", json={"waiting": 7, "kv_cache": 0.5}).raise_for_status()

        def sampled() -> dict[str, Any] | None:
            got = status()
            return got if got["engine"] and got["engine"]["waiting"] == 7 else None

        got = until(sampled, 15, "status.engine in the api role")
        assert (got["engine"]["replicas"], got["engine"]["kv_cache_max"]) == (1, 0.5)
        [engine] = [i["engine"] for i in got["instances"]]
        assert (engine["engine"], engine["waiting"], engine["kv_cache_usage"]) == ("vllm", 7, 0.5)
        listed = api.get("/v0/endpoints").json()["endpoints"]
        assert [e["status"]["engine"]["waiting"] for e in listed] == [7]

        cluster.kill9("controller")  # unreachable now: null, not the last numbers, and no 500
        started = time.monotonic()
        gone = until(lambda: (s := status())["engine"] is None and s, 5, "status.engine null without a controller")
        assert gone["instances"][0]["engine"] is None
        assert time.monotonic() - started < 5
    cluster.start("controller")  # back, so the cluster's cleanup stops the replica it adopts
