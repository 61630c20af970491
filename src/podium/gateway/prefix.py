"""Prefix-cache-aware replica choice: consistent hashing with bounded loads (CHWBL).

An LLM engine keeps the KV cache of the prompts it has just served; a request whose prompt
starts like an earlier one is cheaper (shorter time to first token) on the replica that served
it. So under `routing.policy: prefix-cache` the gateway hashes a bounded prefix of the prompt and
picks the replica that owns that hash on a ring of virtual nodes (consistent hashing: a replica
joining or leaving moves only the prefixes it takes or gave, about 1/n of them, and the other
replicas keep their caches warm). Pure affinity would pile a hot prefix onto one replica, so each
replica's load is bounded (Mirrokni et al., "Consistent Hashing with Bounded Loads", as in
KubeAI's CHWBL): a replica at `ceil(load_factor * (total + 1) / n)` in-flight requests is skipped
and the request spills to the next replica on the ring, which then shares that prefix.

Everything here is pure and synchronous: the balancer owns the counts and the slots.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX_CHARS = 512  # how much of the prompt decides the replica: the shared head (system prompt)
VIRTUAL_NODES = 64  # ring points per replica: spreads prefixes evenly (spread ~ 1/sqrt(points))
LOAD_FACTOR = 1.25  # a replica may carry up to 25% more than the mean before spilling


def _hash(data: bytes) -> int:
    """32 bits, the same in every gateway process (str's hash() is salted per process); CRC32 is one
    C call, a fraction of a microsecond for the bounded prefix: a ring needs spread, not secrecy."""
    return zlib.crc32(data)


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of OpenAI's list-of-parts content."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_prefix(payload: Mapping[str, Any], limit: int = PREFIX_CHARS) -> str | None:
    """The first `limit` characters of the prompt as the engine sees it (chat messages in order, or a
    completion's prompt); None when the body has no prompt (embeddings of tokens, odd shapes)."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        out: list[str] = []
        size = 0
        for message in messages:
            if size >= limit:
                break
            if not isinstance(message, dict):
                continue
            piece = f"{message.get('role', '')}\x00{_text(message.get('content'))}\x01"
            out.append(piece)
            size += len(piece)
        return "".join(out)[:limit] if out else None
    prompt = payload.get("prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        prompt = prompt[0]  # a batch: route by its first prompt
    if isinstance(prompt, str):
        return prompt[:limit]
    inp = payload.get("input")
    if isinstance(inp, str):
        return inp[:limit]
    return None


def prefix_key(payload: Mapping[str, Any], limit: int = PREFIX_CHARS) -> int | None:
    """A 32-bit hash of the prompt's bounded prefix; requests sharing that prefix share the key."""
    prefix = prompt_prefix(payload, limit)
    return None if prefix is None else _hash(prefix.encode("utf-8", "surrogatepass"))


def load_bound(total_load: int, replicas: int, load_factor: float = LOAD_FACTOR) -> int:
    """The most in-flight requests one replica may hold when the next one is placed."""
    return math.ceil(load_factor * (total_load + 1) / replicas)


class PrefixRing:
    """The hash ring over a set of replica ids (immutable; rebuilt when the set changes)."""

    __slots__ = ("_ids", "_owners", "_points")

    def __init__(self, replica_ids: Iterable[str], virtual_nodes: int = VIRTUAL_NODES) -> None:
        nodes = sorted(
            (_hash(f"{rid}#{i}".encode()), rid) for rid in dict.fromkeys(replica_ids) for i in range(virtual_nodes)
        )
        self._points = [h for h, _ in nodes]
        self._owners = [rid for _, rid in nodes]
        self._ids = frozenset(self._owners)

    @property
    def replica_ids(self) -> frozenset[str]:
        return self._ids

    def owner(self, key: int) -> str | None:
        """The replica owning `key` with no load bound (what affinity alone would pick)."""
        if not self._points:
            return None
        return self._owners[bisect.bisect(self._points, key) % len(self._points)]

    def choose(
        self,
        key: int,
        loads: Mapping[str, int],
        *,
        cap: int,
        exclude: frozenset[str] | set[str] = frozenset(),
        load_factor: float = LOAD_FACTOR,
    ) -> str | None:
        """The first replica clockwise from `key` under both its bound and `cap`, skipping `exclude`;
        None when every eligible replica is full (the caller queues). `loads`: in-flight per replica
        id (absent = 0)."""
        points = self._points
        if not points:
            return None
        start = bisect.bisect(points, key)
        home = self._owners[start % len(points)]
        bound = min(cap, load_bound(sum(loads.values()), len(self._ids), load_factor))
        if home not in exclude and loads.get(home, 0) < bound:
            return home  # the common case: one lookup
        order = self._walk(start)
        for rid in order:
            if rid not in exclude and loads.get(rid, 0) < bound:
                return rid
        # every other replica is at its bound too (only with `exclude`): the slot limit decides
        for rid in order:
            if rid not in exclude and loads.get(rid, 0) < cap:
                return rid
        return None

    def _walk(self, start: int) -> list[str]:
        order: list[str] = []
        n = len(self._points)
        for step in range(n):
            rid = self._owners[(start + step) % n]
            if rid not in order:
                order.append(rid)
                if len(order) == len(self._ids):
                    break
        return order
