"""Cluster-wide per-token rate limits: the controller splits each limited token's rate over the gateways.

A token with `rate_limit_rpm = N` may send N requests a minute to the whole installation, whichever
gateways they land on. Every gateway keeps its own token bucket (no network call on the hot path), but
its size and refill are a *share* of N, and the shares of all gateways add up to N. The controller
computes the shares from the per-token demand each gateway reports in the stats it already pulls
(requests per minute seen, allowed or not), so a client that talks to one gateway gets almost all of
its rate there; `floor` of the rate is spread evenly so an idle gateway can still admit a first request
and report demand. With no demand known yet the split is even.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SHARE_FLOOR = 0.1  # of a token's rate, spread evenly over the gateways whatever their demand
REPUBLISH_CHANGE = 0.2  # republish when a share moves by more than this fraction of its old value

Shares = dict[str, dict[str, float]]  # gateway -> token sha256 -> requests per minute


def split_rates(
    limits: Mapping[str, int],
    gateways: Sequence[str],
    demand: Mapping[str, Mapping[str, float]],
    floor: float = SHARE_FLOOR,
) -> Shares:
    """Each gateway's share of each limited token's rate, weighted by its recent demand for that token."""
    shares: Shares = {g: {} for g in gateways}
    n = len(gateways)
    if n == 0:
        return shares
    for sha, rpm in limits.items():
        seen = {g: max(0.0, demand.get(g, {}).get(sha, 0.0)) for g in gateways}
        total = sum(seen.values())
        for g in gateways:
            weight = 1 / n if total <= 0 else floor / n + (1 - floor) * seen[g] / total
            shares[g][sha] = rpm * weight
    return shares


def worth_republishing(old: Shares, new: Shares, change: float = REPUBLISH_CHANGE) -> bool:
    """True when the gateways or tokens differ, or a share moved by more than `change` of itself:
    small drifts in demand must not make every gateway refetch the routes every second."""
    if old.keys() != new.keys():
        return True
    for gateway, shares in new.items():
        before = old[gateway]
        if before.keys() != shares.keys():
            return True
        for sha, share in shares.items():
            if abs(share - before[sha]) > change * max(before[sha], 1e-9):
                return True
    return False
