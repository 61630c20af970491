"""The simulator (benchmarks/autoscaler/simulate.py) on its traces: the real policy code under load.

These are sanity bounds, not the benchmark numbers (those are in docs/autoscaler.md): every
request is served, counts stay within bounds, nothing flaps, idle endpoints reach zero.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import pytest

SIM_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "autoscaler" / "simulate.py"


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("podium_autoscaler_simulate", SIM_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def bounces(history: list[int], within: int) -> int:
    """A scale-down followed by a scale-up (or the reverse) within `within` ticks."""
    moves = [(i, b - a) for i, (a, b) in enumerate(itertools.pairwise(history)) if a != b]
    return sum(1 for (i, d1), (j, d2) in itertools.pairwise(moves) if d1 * d2 < 0 and j - i < within)


@pytest.mark.parametrize("policy", ["concurrency=0.7", "request-count=6", "queue-delay=2"])
def test_ramp_trace(sim: ModuleType, policy: str) -> None:
    result = sim.simulate("ramp", policy)
    arrived = len(sim.arrivals(sim.ramp, 600.0, __import__("random").Random(sim.ModelConfig().seed)))
    assert result.requests == arrived  # every request was served, none lost
    desired = [d.desired for d in result.decisions]
    assert min(desired) >= 0 and max(desired) <= 20
    assert bounces(desired, within=20) == 0  # no down-then-up (or up-then-down) within 5 s
    assert desired[-1] == 0  # the trace ends in silence: idle timeout took it to zero
    assert result.replica_seconds < 20 * 900 / 2  # far below holding max replicas all along


def test_concurrency_keeps_a_diurnal_load_almost_undelayed(sim: ModuleType) -> None:
    result = sim.simulate("diurnal", "concurrency=0.7")
    assert result.delayed / result.requests < 0.02
    assert result.p95_wait_s < 0.5
