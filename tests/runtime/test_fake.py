"""FakeBackend behaves like the protocol says, with states a test controls."""

from __future__ import annotations

import pytest

from podium.runtime.base import LaunchSpec, RunPhase
from podium.runtime.fake import FakeBackend


def _spec(rid: str) -> LaunchSpec:
    return LaunchSpec(replica_id=rid, endpoint_id="ep-1", command=["srv"], gpus=(0,))


async def test_start_poll_stop_and_recorded_calls() -> None:
    fake = FakeBackend()
    obs = await fake.start(_spec("rep-1"))
    assert obs.phase == RunPhase.RUNNING and obs.address and obs.gpus == (0,)
    fake.set_exited("rep-1", 2)
    assert (await fake.poll("rep-1")).exit_code == 2
    fake.set_running("rep-1")
    await fake.stop("rep-1", grace_s=3)
    assert fake.replicas["rep-1"].stop_grace_s == 3
    assert (await fake.poll("rep-1")).phase == RunPhase.EXITED
    assert (await fake.poll("rep-x")).phase == RunPhase.UNKNOWN
    assert fake.called("start") == ["rep-1"] and fake.called("stop") == ["rep-1"]


async def test_failing_starts_adoption_logs_and_close() -> None:
    fake = FakeBackend()
    fake.fail_next_start("cannot execute 'srv': command not found on PATH")
    fake.fail_next_start(raise_error=RuntimeError("engine down"))
    assert (await fake.start(_spec("rep-1"))).phase == RunPhase.EXITED
    with pytest.raises(RuntimeError):
        await fake.start(_spec("rep-2"))
    assert (await fake.start(_spec("rep-3"))).phase == RunPhase.RUNNING
    fake.add_running("rep-old", "ep-0")
    assert {o.replica_id for o in await fake.list()} == {"rep-1", "rep-3", "rep-old"}
    fake.set_logs("rep-3", ["a", "b", "c"])
    assert [x async for x in fake.logs("rep-3", tail=2)] == ["b", "c"]
    assert await fake.tail_text("rep-3", 1) == "c"
    await fake.close()
    assert fake.closed and fake.running_ids() == set()
