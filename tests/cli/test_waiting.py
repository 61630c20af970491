"""`endpoint wait`'s logic above HTTP: which waits cannot end on their own, and the progress it
prints, driven by an injected clock (the CLI-level behaviour is in test_cli_first_hour.py)."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from podium.cli import waiting


def _ep(state: str, *, enabled: bool = True, min_replicas: int = 0, desired: int = 0) -> dict[str, Any]:
    return {
        "id": "ep-1",
        "enabled": enabled,
        "spec": {"scaling": {"min_replicas": min_replicas}},
        "status": {
            "state": state,
            "desired_replicas": desired,
            "ready_replicas": 0,
            "instances": [],
            "last_error": None,
            "url": "http://h/v1",
            "urls": {"app": "http://h/e/app/"},
        },
    }


@pytest.mark.parametrize(
    ("ep", "target", "says"),
    [
        (_ep("idle"), "serving", "--min-replicas 1"),
        (_ep("idle"), "provisioning", "until a request arrives"),
        (_ep("stopped", enabled=False), "serving", "podium endpoint start ep-1"),
        (_ep("stopped", enabled=False), "idle", "podium endpoint start ep-1"),
        (_ep("serving", min_replicas=1, desired=1), "idle", "--min-replicas 0"),
        (_ep("serving", min_replicas=1, desired=1), "stopped", "podium endpoint stop ep-1"),
    ],
)
def test_waits_nobody_will_end_are_named_with_the_way_out(ep: dict[str, Any], target: str, says: str) -> None:
    reason = waiting.never_reached(ep, target)
    assert reason is not None and says in reason


@pytest.mark.parametrize(
    ("ep", "target"),
    [
        (_ep("idle", desired=1), "serving"),  # a request is waking it
        (_ep("idle", min_replicas=0), "idle"),  # already there
        (_ep("provisioning", min_replicas=0, desired=1), "serving"),
        (_ep("serving", min_replicas=0, desired=1), "idle"),  # scales to zero when traffic stops
        (_ep("stopped", enabled=False), "stopped"),
        (_ep("serving", min_replicas=1, desired=1), "failed"),
    ],
)
def test_waits_that_may_end_are_left_alone(ep: dict[str, Any], target: str) -> None:
    assert waiting.never_reached(ep, target) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


class _Api:
    """Answers GET /v0/endpoints/ID from a script of states, one per poll (the last one repeats)."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states

    def get(self, path: str, **_: Any) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def test_progress_lines_on_change_and_heartbeat(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    script = [_ep("provisioning", desired=1)] * 60 + [_ep("serving", desired=1)]
    state = waiting.wait_for(_Api(script), "ep-1", "serving", 60, clock, clock.sleep)  # type: ignore[arg-type]
    assert state == "serving"
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "waiting up to 60s for ep-1 to be serving"
    shown = [(float(line.split()[0].rstrip("s")), line.split()[1]) for line in lines[1:]]
    assert [state for _, state in shown] == ["provisioning", "provisioning", "serving"]
    assert shown[0][0] == 0 and 10 <= shown[1][0] < 10.5  # a heartbeat: still waiting, and for how long
    assert 12 <= shown[2][0] < 12.5


def test_a_hopeless_wait_ends_after_the_grace_not_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    clock = _Clock()
    with pytest.raises(typer.Exit):
        waiting.wait_for(_Api([_ep("idle")]), "ep-1", "serving", 300, clock, clock.sleep)  # type: ignore[arg-type]
    assert waiting.HOPELESS_GRACE_S <= clock.now < waiting.HOPELESS_GRACE_S + 1
    assert "cannot end on its own" in capsys.readouterr().err


def test_a_wake_within_the_grace_keeps_waiting() -> None:
    clock = _Clock()
    script = [_ep("idle")] * 5 + [_ep("provisioning", desired=1)] * 20 + [_ep("serving", desired=1)]
    assert waiting.wait_for(_Api(script), "ep-1", "serving", 300, clock, clock.sleep) == "serving"  # type: ignore[arg-type]
