"""Free ports for local replicas, chosen to make "address already in use" rare.

Three things make a port we pick busy by the time the replica binds it: another replica we just
gave it to (not bound yet), an outgoing connection that the kernel gave it as an ephemeral source
port, or an unrelated server. So: hand out from a range below the kernel's ephemeral range, never
hand out a port again for `hold_s` seconds, skip ports other live replicas recorded, and check
with a real bind (on all interfaces, without SO_REUSEADDR, the strictest test) before giving it.
A race is still possible (someone binds between our check and the replica's bind); the replica
then exits at once and the controller restarts it on a new port.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable, Iterable


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def default_range() -> tuple[int, int]:
    """20000..(ephemeral start - 1), or a high band if the ephemeral range starts low."""
    lo, _ = ephemeral_range()
    return (20000, lo - 1) if lo > 21000 else (61000, 65000)


def can_bind(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno in (97, 99):  # no IPv6 on this host: fine
                continue
            return False
    return True


class PortAllocator:
    def __init__(
        self,
        port_range: tuple[int, int] | None = None,
        hold_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lo, self.hi = port_range or default_range()
        self.hold_s, self.clock = hold_s, clock
        self._given: dict[int, float] = {}  # port -> when handed out
        self._next = random.randint(self.lo, self.hi)  # spread restarts of Podium over the range

    def allocate(self, in_use: Iterable[int] = ()) -> int:
        now = self.clock()
        self._given = {p: t for p, t in self._given.items() if now - t < self.hold_s}
        skip = set(in_use) | set(self._given)
        span = self.hi - self.lo + 1
        for _ in range(span):
            port = self._next
            self._next = self.lo + (self._next - self.lo + 1) % span
            if port not in skip and can_bind(port):
                self._given[port] = now
                return port
        raise OSError(f"no free port in {self.lo}-{self.hi}")
