"""Per-token request rates: the bucket's arithmetic on a fake clock, and the token book around it."""

from __future__ import annotations

import pytest

from podium.gateway.auth import TokenBook
from podium.gateway.limits import TokenBucket
from podium.gateway.routes import PlatformToken


def test_bucket_allows_a_burst_then_refills_per_minute() -> None:
    b = TokenBucket(per_minute=6, now=0.0)
    assert [b.take(0.0) for _ in range(6)] == [None] * 6
    wait = b.take(0.0)
    assert wait == pytest.approx(10.0)  # 6/min: one more every 10 s
    assert b.take(9.9) is not None
    assert b.take(10.0) is None
    assert b.take(1000.0) is None and b.level == pytest.approx(5.0)  # refills to the burst, never above


def test_token_book_limits_only_limited_inference_tokens() -> None:
    now = [0.0]
    book = TokenBook(clock=lambda: now[0])
    book.replace(
        [
            PlatformToken("t1", "a" * 64, frozenset({"inference"}), 2),
            PlatformToken("t2", "b" * 64, frozenset({"inference"})),
            PlatformToken("t3", "c" * 64, frozenset({"read"}), 5),
        ]
    )
    assert book.is_limited("a" * 64) and not book.is_limited("b" * 64) and not book.is_limited("c" * 64)
    assert book.over_limit("a" * 64, 0.0) is None and book.over_limit("a" * 64, 0.0) is None
    assert book.over_limit("a" * 64, 0.0) == pytest.approx(30.0)
    assert book.over_limit("b" * 64, 0.0) is None  # no limit
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 2)])  # republished, same limit
    assert book.over_limit("a" * 64, 1.0) is not None  # the spent bucket was kept, not refilled
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 100)])  # new limit: new bucket
    assert book.over_limit("a" * 64, 1.0) is None
