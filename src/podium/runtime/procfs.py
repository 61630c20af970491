"""What Linux's /proc says about a process: identity (pid + start time), liveness, group.

A pid alone does not name a process: after it ends the kernel may give the same number to an
unrelated one. (pid, start time in clock ticks since boot, /proc/<pid>/stat field 22) does, so
every liveness check and every signal Podium sends to a recorded replica goes through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # R, S, D, Z (zombie), T, ...
    pgrp: int
    session: int
    start_time: int  # clock ticks since boot (field 22): with the pid, a unique name


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and ')': the fields after it start past the last ')'.
    rest = raw.rsplit(b")", 1)[1].split()
    # rest[0] is field 3 (state); field N is rest[N - 3]
    return ProcStat(pid, rest[0].decode(), int(rest[2]), int(rest[3]), int(rest[19]))


def start_time(pid: int) -> int | None:
    st = read_stat(pid)
    return st.start_time if st else None


def is_same_alive(pid: int, expected_start: int) -> bool:
    """The recorded process still runs: same pid AND same start time, and not a zombie."""
    st = read_stat(pid)
    return st is not None and st.start_time == expected_start and st.state not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is pgid (zombies excluded)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = read_stat(int(name))
            if st is not None and st.pgrp == pgid and st.state not in ("Z", "X"):
                members.append(st.pid)
    return members


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """killpg, tolerating a group that is already gone. Returns whether the signal was sent."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def find_by_cmdline(needle: bytes) -> list[int]:
    """Pids whose command line contains `needle` (used to find supervisors not yet recorded)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{name}/cmdline", "rb") as f:
            if needle in f.read():
                found.append(int(name))
    return found


def group_is_ours(pgid: int, leader_start: int) -> bool:
    """Whether signalling group `pgid` can only reach the recorded replica's processes.

    True while the leader (same start time) lives. Once the leader is gone, leftover members may
    still hold the group: Linux never hands out a pid that is still in use as a group id, so if no
    process has pid == pgid, any member with that pgrp is ours. If the pid was reused (a process with
    pid == pgid but another start time), the old group was empty by then: nothing of ours to reach.
    """
    leader = read_stat(pgid)
    if leader is not None:
        if leader.start_time != leader_start:
            return False
        if leader.state not in ("Z", "X"):
            return True
    return bool(group_members(pgid))
