"""`podium endpoint wait` and `logs --follow`'s wait for a replica.

Waits report progress on stderr (state changes, elapsed time) so that stdout stays what scripts
read: the final state. A wait that nothing but a person can end (an idle endpoint with
min_replicas 0 waiting for `serving`) fails fast with the command that would end it, instead of
sitting out its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podium.cli.client import Api, fail, stderr
from podium.core.states import EndpointState, ReplicaState

STATES = tuple(s.value for s in EndpointState)
UP = {EndpointState.PROVISIONING.value, EndpointState.SERVING.value, EndpointState.SCALING.value}
# A hopeless condition must hold this long before the wait gives up: a request sent just before
# `wait` may not have woken the endpoint yet.
HOPELESS_GRACE_S = 2.0
HEARTBEAT_S = 10.0
POLL_S = 0.2


def check_target(target: str) -> None:
    """Unknown `--for` values are a usage error (exit 2): they would otherwise wait out the timeout."""
    if target not in STATES:
        fail(f"--for {target!r} is not an endpoint state; use one of: {', '.join(STATES)}", code=2)


def never_reached(ep: dict[str, Any], target: str) -> str | None:
    """Why `target` cannot come without someone acting, with what to do; None when it may come."""
    state, eid = ep["status"]["state"], ep["id"]
    min_replicas = ep["spec"]["scaling"]["min_replicas"]
    if state == target:
        return None
    if not ep["enabled"] and target != EndpointState.STOPPED:
        return f"{eid} is stopped; nothing starts it on its own: run `podium endpoint start {eid}`"
    if target in UP and state == EndpointState.IDLE and min_replicas == 0 and ep["status"]["desired_replicas"] == 0:
        return (
            f"{eid} is idle with min_replicas 0: no replica starts until a request arrives. "
            f"Send one (e.g. to {ep['status']['urls'].get('app') or ep['status']['url']}), or keep one "
            f"running: `podium endpoint update {eid} --min-replicas 1`"
        )
    if target == EndpointState.IDLE and ep["enabled"] and min_replicas > 0:
        return (
            f"{eid} keeps min_replicas {min_replicas} running, so it never becomes idle; "
            f"allow scale to zero with `podium endpoint update {eid} --min-replicas 0`"
        )
    if target == EndpointState.STOPPED and ep["enabled"]:
        return f"{eid} is enabled; only `podium endpoint stop {eid}` stops it"
    return None


def describe(ep: dict[str, Any]) -> str:
    """One progress line's content: state, replicas, and the last error if there is one."""
    st = ep["status"]
    line = f"{st['state']:<12} {st['ready_replicas']}/{st['desired_replicas']} ready"
    starting = [i["id"] + " " + i["state"] for i in st["instances"] if i["state"] != ReplicaState.READY]
    if starting:
        line += "  (" + ", ".join(starting[:3]) + ")"
    if st.get("last_error"):
        line += f"  last error: {st['last_error'].splitlines()[0][:120]}"
    return line


@dataclass
class Progress:
    """Prints a line when what `describe` says changes, and a heartbeat every HEARTBEAT_S."""

    clock: Callable[[], float]
    started: float = 0.0
    last_line: str = ""
    last_print: float = field(default=float("-inf"))

    def __post_init__(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def show(self, ep: dict[str, Any]) -> None:
        line, now = describe(ep), self.clock()
        if line != self.last_line or now - self.last_print >= HEARTBEAT_S:
            stderr(f"{self.elapsed():6.1f}s  {line}")
            self.last_line, self.last_print = line, now


def wait_for(
    api: Api,
    eid: str,
    target: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll until the endpoint is in `target`; fail on timeout, failure, or a hopeless wait."""
    progress = Progress(clock)
    stderr(f"waiting up to {timeout:g}s for {eid} to be {target}")
    hopeless_since: float | None = None
    while True:
        ep = api.get(f"/v0/endpoints/{eid}")
        state = ep["status"]["state"]
        progress.show(ep)
        if state == target:
            return str(state)
        if state == EndpointState.FAILED:
            fail(f"endpoint failed: {ep['status'].get('last_error')}")
        reason = never_reached(ep, target)
        if reason is None:
            hopeless_since = None
        elif hopeless_since is None:
            hopeless_since = clock()
        elif clock() - hopeless_since >= HOPELESS_GRACE_S:
            fail(f"this wait cannot end on its own: {reason}")
        if progress.elapsed() >= timeout:
            fail(f"timed out after {timeout:g}s waiting for {target!r} (state: {state})")
        sleep(POLL_S)


# Replicas whose output can be followed: the runtime has started them (pending ones have no log yet).
FOLLOWABLE = {ReplicaState.STARTING, ReplicaState.READY, ReplicaState.UNHEALTHY, ReplicaState.DRAINING}


def running_replicas(ep: dict[str, Any]) -> list[str]:
    """Replica ids the runtime has started and not yet ended, oldest first (the API lists them so)."""
    return [i["id"] for i in ep["status"]["instances"] if i["state"] in FOLLOWABLE]


def next_replica(api: Api, eid: str, skip: set[str], sleep: Callable[[float], None] = time.sleep) -> tuple[str, bool]:
    """Block until a running replica not in `skip` exists (Ctrl-C ends it), saying once that it waits.

    Returns the newest such replica and whether it started while we waited (then its whole log is
    new to the reader; otherwise only its tail is wanted)."""
    waited = False
    while True:
        ep = api.get(f"/v0/endpoints/{eid}")
        fresh = [r for r in running_replicas(ep) if r not in skip]
        if fresh:
            return fresh[-1], waited
        if not waited:
            why = never_reached(ep, EndpointState.SERVING)
            stderr(
                f"no replica of {eid} is running; waiting for the next one to start (Ctrl-C to stop)"
                + (f". Note: {why}" if why else "")
            )
            waited = True
        sleep(POLL_S * 2.5)
