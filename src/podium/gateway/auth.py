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
from collections.abc import Callable, Iterable

from podium.gateway.limits import TokenBucket
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
    """The in-memory set of platform tokens that may call any endpoint, plus a digest cache."""

    def __init__(self, cache_size: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._now = clock
        self._inference: dict[str, str] = {}  # sha256 hex -> token id, scopes allow inference
        self._limits: dict[str, TokenBucket] = {}  # sha256 hex -> bucket, for rate-limited tokens
        self._digests: OrderedDict[bytes, str] = OrderedDict()
        self._cache_size = cache_size

    def replace(self, tokens: Iterable[PlatformToken]) -> None:
        tokens = list(tokens)
        self._inference = {t.sha256: t.token_id for t in tokens if t.scopes & INFERENCE_SCOPES}
        limits: dict[str, TokenBucket] = {}
        for t in tokens:
            if t.rate_limit_rpm and t.sha256 in self._inference:
                old = self._limits.get(t.sha256)  # keep a bucket's level across republishing
                same = old is not None and old.capacity == t.rate_limit_rpm
                limits[t.sha256] = old if same and old else TokenBucket(t.rate_limit_rpm, self._now())
        self._limits = limits

    def is_limited(self, digest: str | None) -> bool:
        return digest is not None and digest in self._limits

    def over_limit(self, digest: str | None, now: float) -> float | None:
        """None when the token may send this request now; else seconds until it may (429 Retry-After)."""
        bucket = self._limits.get(digest) if digest is not None else None
        return bucket.take(now) if bucket is not None else None

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
