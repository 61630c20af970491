"""Rollouts end to end (issue 13): `podium up` as a real process, fake-worker replicas as real
processes, steady load through the real `openai` client (streams included) while replicas roll,
a rollout that fails and rolls back by itself, CLI rollback, and a canary's split and promote."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import ADMIN, Podium, assert_no_replicas_left, create_fake, start_podium, stop_podium


@pytest.fixture(scope="module")
def podium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podium]:
    """One `podium up` for the module (each test uses its own endpoint): a stack boots in 2-6 s here."""
    p = start_podium(tmp_path_factory.mktemp("rollouts") / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


STREAM_CHUNK_DELAY = 0.05  # a stream lasts ~0.2 s: many are in flight when a replica starts draining


def endpoint(p: Podium, eid: str) -> dict[str, Any]:
    with p.http() as h:
        return h.get(f"/v0/endpoints/{eid}").json()  # type: ignore[no-any-return]


def patch(p: Podium, eid: str, body: dict[str, Any]) -> dict[str, Any]:
    with p.http() as h:
        r = h.patch(f"/v0/endpoints/{eid}", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 60) -> float:
    """Seconds until `cond()` held (polled every 50 ms), or an AssertionError naming `what`."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - t0


def all_on(p: Podium, eid: str, revision: int, count: int) -> bool:
    st = endpoint(p, eid)["status"]
    inst = st["instances"]
    return (
        st["revision"] == revision
        and st["rollout"] is None
        and len(inst) == count
        and all(i["revision"] == revision and i["state"] == "ready" for i in inst)
    )


@dataclass
class Load:
    """Steady load from a few threads: plain and streamed chat completions, every failure kept."""

    p: Podium
    model: str
    threads: int = 4
    ok: int = 0
    streams: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(30)

    def _run(self, stream: bool) -> None:
        client = openai.OpenAI(base_url=f"{self.p.url}/v1", api_key=ADMIN, max_retries=0, timeout=30)
        while not self._stop.is_set():
            try:
                self._one(client, stream)
            except Exception as exc:  # every kind of failure is counted
                with self._lock:
                    self.failures.append(repr(exc)[:300])

    def _one(self, client: openai.OpenAI, stream: bool) -> None:
        messages: list[Any] = [{"role": "user", "content": "hi"}]
        if not stream:
            r = client.chat.completions.create(model=self.model, messages=messages, max_tokens=4)
            assert r.choices[0].message.content, "empty answer"
            with self._lock:
                self.ok += 1
            return
        extra = {"fake_delay": 0.0, "chunk_delay": STREAM_CHUNK_DELAY}
        chunks = client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=4, stream=True, extra_body=extra
        )
        finish = None
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        assert finish == "stop", f"stream cut before its end (finish_reason {finish!r})"
        with self._lock:
            self.ok += 1
            self.streams += 1


@pytest.mark.slow  # ~18 s: load held through a whole rollout and a whole rollback
def test_rollout_and_rollback_under_load_fail_no_request(podium: Podium) -> None:
    ep = create_fake(podium, "rolling", "--min-replicas", "2", "--max-replicas", "2")
    eid = ep["id"]
    podium.wait_state(eid, "serving")
    wait_for("2 ready replicas", lambda: all_on(podium, eid, 1, 2))
    with Load(podium, ep["routing_key"]) as load:
        wait_for("some traffic", lambda: load.ok >= 20)
        patched = patch(podium, eid, {"container": {"env": {"ROLL": "2"}}})
        assert patched["status"]["revision"] == 2
        rolled_s = wait_for("all replicas on revision 2", lambda: all_on(podium, eid, 2, 2))
        before = load.ok
        wait_for("traffic on revision 2", lambda: load.ok >= before + 20)
        podium.cli("endpoint", "rollback", eid)  # default: the previous revision
        back_s = wait_for("all replicas back on revision 1", lambda: all_on(podium, eid, 1, 2))
        after = load.ok
        wait_for("traffic on revision 1", lambda: load.ok >= after + 20)
    print(f"rollout {rolled_s:.2f}s, rollback {back_s:.2f}s, {load.ok} ok ({load.streams} streams)")
    assert load.failures == [], f"{len(load.failures)} failed of {load.ok}: {load.failures[:5]}"
    assert load.streams >= 10
    revs = podium.cli_json("endpoint", "revisions", eid)["revisions"]
    assert [(r["number"], r["state"]) for r in revs] == [(2, "retired"), (1, "active")]
    assert revs[0]["changes"] == ["container.env"]
    kinds = [e["kind"] for e in podium.cli_json("endpoint", "events", eid)["events"]]
    assert kinds.count("rollout_done") >= 2 and "rollback" in kinds


def test_failed_rollout_rolls_back_by_itself(podium: Podium) -> None:
    ep = create_fake(podium, "badroll", "--min-replicas", "1")
    eid = ep["id"]
    podium.wait_state(eid, "serving")
    old = [i["id"] for i in endpoint(podium, eid)["status"]["instances"]]
    bad = f"{PYTHON} -c 'import sys; print(\"boom: bad flag\"); sys.exit(2)'"
    patch(podium, eid, {"container": {"command": bad}, "rollout": {"max_failed_starts": 2}})
    wait_for("the rollback", lambda: endpoint(podium, eid)["status"]["revision"] == 1, timeout=60)
    ep_now = endpoint(podium, eid)
    st = ep_now["status"]
    assert "rolled back to revision 1" in st["last_error"] and "boom: bad flag" in st["last_error"]
    assert "podium.worker.fake" in ep_now["spec"]["container"]["command"]  # nothing left half-updated
    wait_for("only the old replica", lambda: [i["id"] for i in endpoint(podium, eid)["status"]["instances"]] == old)
    assert endpoint(podium, eid)["status"]["state"] == "serving"
    r = httpx.get(f"{podium.url}/e/{ep['app_name']}/ping", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert r.status_code == 200  # the old replica kept serving throughout
    revs = {r["number"]: r for r in podium.cli_json("endpoint", "revisions", eid)["revisions"]}
    assert revs[2]["state"] == "failed" and "2 failed starts" in revs[2]["reason"]
    assert "rollout_failed" in [e["kind"] for e in podium.cli_json("endpoint", "events", eid)["events"]]
    # the failed revision is no rollback target, and there is no canary to promote: 409s
    res = podium.cli("endpoint", "rollback", eid, check=False)
    assert res.returncode == 1 and "no earlier revision" in res.stderr
    with podium.http() as h:
        assert h.post(f"/v0/endpoints/{eid}/promote").status_code == 409


def test_canary_splits_requests_and_promote_rolls_on(podium: Podium) -> None:
    ep = create_fake(podium, "canary", "--min-replicas", "2", "--max-replicas", "2")
    eid = ep["id"]
    wait_for("2 ready replicas", lambda: all_on(podium, eid, 1, 2))
    podium.cli("endpoint", "update", eid, "--env", "ROLL=2", "--rollout", "canary", "--canary-percent", "30")

    def canary_ready() -> bool:
        ro = endpoint(podium, eid)["status"]["rollout"]
        return ro is not None and ro["new_ready"] == 1

    wait_for("the canary replica", canary_ready)
    revision_of = {i["id"]: i["revision"] for i in endpoint(podium, eid)["status"]["instances"]}
    hits = {1: 0, 2: 0}
    with httpx.Client(base_url=f"{podium.url}/e/{ep['app_name']}", headers={"Authorization": f"Bearer {ADMIN}"}) as h:
        for _ in range(300):
            r = h.get("/who")
            assert r.status_code == 200
            hits[revision_of[r.json()["podium_fake"]["replica_id"]]] += 1
    share = hits[2] / 300
    assert 0.2 <= share <= 0.4, hits  # 30% +- 10 points (3.5 standard deviations at n=300)
    assert all_on(podium, eid, 2, 2) is False  # it holds: no promote yet

    def counted() -> bool:
        revs = {r["number"]: r for r in podium.cli_json("endpoint", "revisions", eid)["revisions"]}
        return revs[2]["requests"] > 0 and revs[1]["requests"] > 0

    wait_for("per-revision traffic side by side", counted, timeout=15)
    podium.cli("endpoint", "promote", eid)
    wait_for("all replicas on revision 2", lambda: all_on(podium, eid, 2, 2))
    bad = podium.cli("endpoint", "rollback", eid, "--revision", "9", check=False)
    assert bad.returncode == 1 and "revision 9" in bad.stderr
    shown = podium.cli("endpoint", "get", eid).stdout.splitlines()
    fields = dict(line.split(None, 1) for line in shown if line.startswith(("revision ", "rollout ")))
    assert fields == {"revision": "2", "rollout": "-"}  # `endpoint get`: on revision 2, no rollout under way
