"""The monitor's index on books as the product makes them: a signal's followers are added with
one shared set of levels, and a checkpoint asks the index which trailing stops may have moved
(it saves only those). Both against the Decimal reference rule (engine/levels.py) on random
price paths."""

from __future__ import annotations

import copy
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.levels import RiskLevels, RiskParams
from engine.monitor import PositionIndex

D = Decimal


def _params(rng: random.Random) -> RiskParams:
    trailing = rng.random() < 0.8
    return RiskParams(
        stop_loss_pct=D(rng.choice(["0.01", "0.02", "0.05"])),
        take_profit_pct=None if rng.random() < 0.4 else D(rng.choice(["0.03", "0.08"])),
        trailing_activation_pct=D(rng.choice(["0", "0.01", "0.02"])) if trailing else None,
        trailing_distance_pct=D(rng.choice(["0.005", "0.01", "0.02"])) if trailing else None,
    )


def _walk(seed: int, ticks: int = 200) -> tuple[int, int]:
    """Signals open along a path, each followed by several positions sharing its levels;
    at random moments a checkpoint takes the positions whose stop may have moved. Returns
    (positions closed, stops that moved)."""
    rng = random.Random(seed)
    index = PositionIndex()
    reference: dict[int, RiskLevels] = {}  # each follower's own copy, stepped by the rule
    saved: dict[int, Decimal] = {}  # each position's stop as the last checkpoint saved it
    price, next_id, closed, moved_total = D(100), 1, 0, 0
    for _ in range(ticks):
        if rng.random() < 0.15:
            levels = RiskLevels.initial(rng.choice(["long", "short"]), price, _params(rng))
            followers = list(range(next_id, next_id + rng.randint(1, 6)))
            next_id += len(followers)
            if rng.random() < 0.5:  # one by one, or all at once as a fan-out's fills are
                for pid in followers:  # followers: one RiskLevels for all of them
                    index.add(pid, "ETH", levels)
            else:
                index.add_many([(pid, "ETH", levels) for pid in followers])
            for pid in followers:
                reference[pid] = copy.copy(levels)
                saved[pid] = levels.stop
        step = D(rng.choice([-3, -2, -1, 0, 1, 2, 3])) / D(4)
        if rng.random() < 0.05:
            step *= 8
        price = max(D(1), price + step)
        expected = {pid: r for pid, lv in reference.items() if (r := lv.step(price))}
        got = {t.position_id: t.reason for t in index.on_price("ETH", price)}
        assert got == expected, f"seed {seed}, price {price}"
        for pid in expected:
            del reference[pid], saved[pid]
        closed += len(expected)
        if rng.random() < 0.3:  # a checkpoint
            candidates = set(index.take_moved())
            for pid, lv in reference.items():
                stop, _, active = index.state(pid)  # type: ignore[misc]
                assert stop == lv.stop and active == lv.trailing_active
                if lv.stop != saved[pid]:
                    assert pid in candidates, f"seed {seed}: moved stop of {pid} not offered"
                    moved_total += 1
                saved[pid] = lv.stop
    return closed, moved_total


def test_followers_sharing_levels_close_as_the_reference_rule_and_moved_stops_are_offered() -> None:
    closed = moved = 0
    for seed in range(30):
        c, m = _walk(seed)
        closed, moved = closed + c, moved + m
    # the paths exercise what they claim to: closes of every kind and trailing stops moving
    assert closed > 200 and moved > 200


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_followers_property(seed: int) -> None:
    _walk(seed, ticks=120)
