"""Who may call what, answered from memory (the controller and token service push changes in).

A presented token is hashed (sha256 hex) and compared with the endpoint's token hash with
`hmac.compare_digest`. Platform tokens are looked up by their sha256 in a dict: the lookup's
timing depends only on the digest of what the caller sent, which tells an attacker nothing
about a stored token (they would need a preimage), so it is as safe as a constant-time scan
and O(1). Tokens are never logged or kept in clear, except in a small per-process cache of
recently seen digests (an LRU) so a keep-alive client does not pay the hash on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from podium.gateway.metrics import RateWindow
from podium.gateway.ratelimit import TokenBucket
from podium.gateway.routes import EndpointRoute, PlatformToken

INFERENCE_SCOPES = frozenset({"inference", "admin"})


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header (case-insensitive scheme), or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    return token or None


class TokenBook:
    """The in-memory set of platform tokens that may call any endpoint, their rate buckets, a digest cache.

    A token with `rate_limit_rpm` is limited on every endpoint it is presented to, open ones included.
    Its bucket holds this gateway's share of the rate when the controller splits it over several
    gateways (`set_shares`, roles/shares.py), else the whole rate; `demand` reports what this gateway
    saw per limited token, which is what the controller splits by.
    """

    def __init__(self, cache_size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._now = clock
        self._inference: dict[str, str] = {}  # sha256 hex -> token id, scopes allow inference
        self._rpm: dict[str, int] = {}  # sha256 hex -> the token's whole rate, for limited tokens
        self._shares: dict[str, float] = {}  # sha256 hex -> this gateway's share of that rate (rpm)
        self._limits: dict[str, TokenBucket] = {}  # sha256 hex -> bucket, for rate-limited tokens
        self._demand: dict[str, RateWindow] = {}  # sha256 hex -> requests seen (allowed or not)
        self._digests: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = cache_size

    @property
    def has_limits(self) -> bool:
        return bool(self._limits)

    def replace(self, tokens: Iterable[PlatformToken]) -> None:
        tokens = list(tokens)
        self._inference = {t.sha256: t.token_id for t in tokens if t.scopes & INFERENCE_SCOPES}
        self._rpm = {t.sha256: t.rate_limit_rpm for t in tokens if t.rate_limit_rpm}
        self._rebuild()

    def set_shares(self, shares: Mapping[str, float]) -> None:
        """This gateway's share of each limited token's rate (absent: the whole rate)."""
        self._shares = {sha: rpm for sha, rpm in shares.items() if rpm > 0}
        self._rebuild()

    def _rebuild(self) -> None:
        now = self._now()
        limits: dict[str, TokenBucket] = {}
        for sha, rpm in self._rpm.items():
            rate = self._shares.get(sha, float(rpm))
            bucket = self._limits.get(sha)  # keep a bucket's level across republishing and resizing
            if bucket is None:
                bucket = TokenBucket(rate, now)
            elif bucket.capacity != rate:
                bucket.resize(rate, now)
            limits[sha] = bucket
        self._limits = limits
        self._demand = {sha: self._demand.get(sha) or RateWindow() for sha in limits}

    def is_limited(self, digest: str | None) -> bool:
        return digest is not None and digest in self._limits

    def over_limit(self, digest: str | None, now: float) -> float | None:
        """None when the token may send this request now; else seconds until it may (429 Retry-After)."""
        if digest is None or (bucket := self._limits.get(digest)) is None:
            return None
        self._demand[digest].add(now)
        return bucket.take(now)

    def demand(self, now: float) -> dict[str, float]:
        """Requests per minute this gateway saw per limited token, recently (allowed or refused)."""
        return {sha: window.rate(now) * 60 for sha, window in self._demand.items()}

    def digest(self, token: bytes) -> str:
        cached = self._digests.get(token)
        if cached is not None:
            self._digests.move_to_end(token)
            return cached
        digest = hashlib.sha256(token).hexdigest()
        self._digests[token] = digest
        if len(self._digests) > self._cache_size:
            self._digests.popitem(last=False)
        return digest

    def token_id(self, digest: str) -> str | None:
        """The id of the platform token with this digest (token metering), if it may call endpoints."""
        return self._inference.get(digest)

    def is_platform(self, digest: str | None) -> bool:
        return digest is not None and digest in self._inference

    def allows(self, route: EndpointRoute, digest: str | None) -> bool:
        """May the holder of the token with this digest call `route`?"""
        expected = route.auth_token_sha256
        if expected is None:
            return True
        if digest is None:
            return False
        if hmac.compare_digest(digest.encode(), expected.encode()):
            return True
        return digest in self._inference
