"""Books the tokens the gateways counted into the store, per endpoint and per caller (issue 14).

Gateways keep running totals since their start under a random instance id (`Gateway.token_usage`);
the in-process gateway is read directly, remote ones ride on the stats the controller already pulls
(roles/routebook.py). Every `interval_s` the meter turns the totals into what grew since it last
looked and adds that to the store (store/token_usage.py) in one transaction. Where it stands for a
gateway it has not seen in this process comes from the store (the sum of that gateway's rows), so a
restarted controller books only what is new. A total that went down (an endpoint deleted and
re-created while the gateway ran) starts again from zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from podium.store.token_usage import TokenDelta, TokenUsageStore

log = logging.getLogger("podium.usage")

Report = Mapping[str, Any]  # {"instance": str, "usage": [{endpoint_id, caller, prompt_tokens, completion_tokens}]}
UsageSource = Callable[[], Awaitable[Sequence[Report]]]


class TokenMeter:
    def __init__(
        self,
        store: TokenUsageStore,
        sources: Sequence[UsageSource],
        *,
        interval_s: float = 5.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.interval_s = interval_s
        self.wall = wall
        self._seen: dict[str, dict[tuple[str, str], tuple[int, int]]] = {}  # instance -> booked totals

    async def run(self, stop: asyncio.Event) -> None:
        """Collect every `interval_s` until `stop`, and once more at the end (what the last seconds saw)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
            try:
                await self.collect()
            except Exception:
                log.exception("token metering: collecting failed (retried next time)")

    async def collect(self) -> int:
        """One pass: returns how many (gateway, endpoint, caller) rows grew."""
        reports: list[Report] = []
        for source in self.sources:
            try:
                reports.extend(await source())
            except Exception as exc:  # one gateway's failure must not lose the others' counts
                log.warning("token metering: a source failed: %r", exc)
        deltas: list[TokenDelta] = []
        totals: dict[str, dict[tuple[str, str], tuple[int, int]]] = {}
        for report in reports:
            instance = str(report["instance"])
            seen = self._seen.get(instance)
            if seen is None:
                seen = self._seen[instance] = await self.store.booked(instance)
            now = totals.setdefault(instance, dict(seen))
            for item in report.get("usage", ()):
                key = (str(item["endpoint_id"]), str(item["caller"]))
                prompt, completion = int(item["prompt_tokens"]), int(item["completion_tokens"])
                before_p, before_c = seen.get(key, (0, 0))
                if prompt < before_p or completion < before_c:  # counted afresh: all of it is new
                    before_p = before_c = 0
                if prompt > before_p or completion > before_c:
                    deltas.append(TokenDelta(instance, key[0], key[1], prompt - before_p, completion - before_c))
                now[key] = (prompt, completion)
        await self.store.add(deltas, self.wall())
        self._seen.update(totals)  # only once written: a failed write is retried whole
        return len(deltas)


def local_usage(token_usage: Callable[[], Report]) -> UsageSource:
    """The in-process gateway's totals as a usage source."""

    async def source() -> Sequence[Report]:
        return [token_usage()]

    return source
