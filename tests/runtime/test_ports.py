"""Port choice: outside the kernel's ephemeral range, never handed out twice while held."""

from __future__ import annotations

import socket

import pytest

from podium.runtime.ports import PortAllocator, can_bind, default_range, ephemeral_range


def test_default_range_avoids_ephemeral_ports() -> None:
    lo, hi = default_range()
    elo, ehi = ephemeral_range()
    assert hi < elo or lo > ehi


def free_window(size: int) -> int:
    """The first port of `size` consecutive ports that can all be bound now, taken from Podium's own
    range (below the kernel's ephemeral range, so outgoing connections don't land in it meanwhile)."""
    lo, hi = default_range()
    start = lo
    while start + size - 1 <= hi:
        busy = [p for p in range(start, start + size) if not can_bind(p)]
        if not busy:
            return start
        start = busy[-1] + 1
    raise AssertionError(f"no {size} free consecutive ports in {lo}-{hi}")


def test_no_port_twice_while_held_and_busy_ports_skipped() -> None:
    now = [0.0]
    base = free_window(10)
    held, busy_port = base + 1, base + 5
    alloc = PortAllocator((base, base + 9), hold_s=10, clock=lambda: now[0])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", busy_port))
        busy.listen()
        got = [alloc.allocate(in_use=[held]) for _ in range(8)]
        with pytest.raises(OSError, match="no free port"):
            alloc.allocate(in_use=[held])  # all held, in use or busy
    assert len(set(got)) == 8 and busy_port not in got and held not in got
    now[0] = 11.0  # hold expired
    assert alloc.allocate() in range(base, base + 10)
