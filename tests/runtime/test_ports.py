"""Port choice: outside the kernel's ephemeral range, never handed out twice while held."""

from __future__ import annotations

import socket

import pytest

from podium.runtime.ports import PortAllocator, default_range, ephemeral_range


def test_default_range_avoids_ephemeral_ports() -> None:
    lo, hi = default_range()
    elo, ehi = ephemeral_range()
    assert hi < elo or lo > ehi


def test_no_port_twice_while_held_and_busy_ports_skipped() -> None:
    now = [0.0]
    alloc = PortAllocator((40100, 40109), hold_s=10, clock=lambda: now[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 40105))
        busy.listen()
        got = [alloc.allocate(in_use=[40101]) for _ in range(8)]
        with pytest.raises(OSError, match="no free port"):
            alloc.allocate(in_use=[40101])  # all held, in use or busy
    assert len(set(got)) == 8 and 40105 not in got and 40101 not in got
    now[0] = 11.0  # hold expired
    assert alloc.allocate() in range(40100, 40110)
