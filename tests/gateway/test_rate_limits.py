"""Per-token request rates: the bucket's arithmetic on a fake clock, the token book around it, and the
split of a token's rate over several gateways."""

from __future__ import annotations

import pytest

from podium.gateway.auth import TokenBook
from podium.gateway.ratelimit import TokenBucket
from podium.gateway.routes import PlatformToken
from podium.roles.shares import split_rates, worth_republishing


def test_bucket_allows_a_burst_then_refills_per_minute() -> None:
    b = TokenBucket(per_minute=6, now=0.0)
    assert [b.take(0.0) for _ in range(6)] == [None] * 6
    wait = b.take(0.0)
    assert wait == pytest.approx(10.0)  # 6/min: one more every 10 s
    assert b.take(9.9) is not None
    assert b.take(10.0) is None
    assert b.take(1000.0) is None and b.level == pytest.approx(5.0)  # refills to the burst, never above


def test_token_book_limits_every_limited_token() -> None:
    now = [0.0]
    book = TokenBook(clock=lambda: now[0])
    book.replace(
        [
            PlatformToken("t1", "a" * 64, frozenset({"inference"}), 2),
            PlatformToken("t2", "b" * 64, frozenset({"inference"})),
            PlatformToken("t3", "c" * 64, frozenset({"read"}), 5),
        ]
    )
    # a read-only token cannot call a token-auth endpoint, but its limit holds on an open one
    assert book.is_limited("a" * 64) and not book.is_limited("b" * 64) and book.is_limited("c" * 64)
    assert book.over_limit("a" * 64, 0.0) is None and book.over_limit("a" * 64, 0.0) is None
    assert book.over_limit("a" * 64, 0.0) == pytest.approx(30.0)
    assert book.over_limit("b" * 64, 0.0) is None  # no limit
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 2)])  # republished, same limit
    assert book.over_limit("a" * 64, 1.0) is not None  # the spent bucket was kept, not refilled
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 120)])  # a new limit: resized, not refilled
    assert book.over_limit("a" * 64, 1.0) is None  # 120/min gave back ~2 in that second


def test_a_resized_bucket_grants_no_burst() -> None:
    b = TokenBucket(per_minute=10, now=0.0)
    assert all(b.take(0.0) is None for _ in range(10))
    b.resize(20, 0.0)
    assert b.take(0.0) is not None  # growing refills nothing
    b.resize(4, 60.0)  # shrinking clips the level to the new size
    assert [b.take(60.0) for _ in range(5)].count(None) == 4


def test_a_bucket_smaller_than_one_request_still_passes_its_rate() -> None:
    b = TokenBucket(per_minute=0.5, now=0.0)  # a gateway's small share: one request every two minutes
    assert b.take(0.0) is None and b.take(0.0) is not None
    allowed = sum(1 for t in range(1, 1201) if b.take(float(t)) is None)
    assert allowed == 10  # 20 minutes at 0.5/min


def test_token_book_buckets_hold_this_gateways_share() -> None:
    book = TokenBook(clock=lambda: 0.0)
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 10)])
    book.set_shares({"a" * 64: 4.0})
    assert [book.over_limit("a" * 64, 0.0) for _ in range(5)].count(None) == 4
    book.replace([PlatformToken("t1", "a" * 64, frozenset({"inference"}), 10)])  # tokens republished: share kept
    assert book.over_limit("a" * 64, 0.0) is not None
    assert book.demand(2.0) == {"a" * 64: pytest.approx(6 * 60 / 10)}  # 6 tries in the 10 s window, per minute


def test_split_rates_sum_to_the_limit_weighted_by_demand() -> None:
    even = split_rates({"t": 60}, ["g1", "g2", "g3"], {})
    assert [even[g]["t"] for g in ("g1", "g2", "g3")] == [pytest.approx(20.0)] * 3
    busy = split_rates({"t": 100}, ["g1", "g2"], {"g1": {"t": 300.0}, "g2": {"t": 0.0}})
    assert busy["g1"]["t"] == pytest.approx(95.0) and busy["g2"]["t"] == pytest.approx(5.0)  # floor: 10 %, spread
    mixed = split_rates({"t": 100, "u": 7}, ["g1", "g2"], {"g1": {"t": 30.0}, "g2": {"t": 10.0, "u": 1.0}})
    for token, rpm in (("t", 100), ("u", 7)):
        assert sum(mixed[g][token] for g in ("g1", "g2")) == pytest.approx(rpm)
    assert split_rates({"t": 10}, [], {}) == {}


def test_shares_are_republished_only_when_they_move_enough() -> None:
    old = {"g1": {"t": 50.0}, "g2": {"t": 50.0}}
    assert not worth_republishing(old, {"g1": {"t": 55.0}, "g2": {"t": 45.0}})
    assert worth_republishing(old, {"g1": {"t": 80.0}, "g2": {"t": 20.0}})
    assert worth_republishing(old, {"g1": {"t": 100.0}})  # a gateway left
    assert worth_republishing(old, {"g1": {"t": 50.0, "u": 1.0}, "g2": {"t": 50.0, "u": 1.0}})  # a new token
