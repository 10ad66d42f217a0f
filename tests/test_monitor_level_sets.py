"""The index keeps a signal's followers as one level set (engine/monitor.py). A set must
behave exactly as its members would one by one: members closed by hand leave it, a position
added later with the same levels joins it only while the set is in the state the newcomer
would be in, and a restart (every open position added again from its stored levels, as
start-up does, equal levels shared) changes nothing. All against the Decimal reference rule
on random paths."""

from __future__ import annotations

import copy
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.levels import RiskLevels, RiskParams
from engine.monitor import PositionIndex
from tests.monitor_helpers import tick_both

D = Decimal


def _params(rng: random.Random) -> RiskParams:
    trailing = rng.random() < 0.8
    return RiskParams(
        stop_loss_pct=D(rng.choice(["0.01", "0.02"])),
        take_profit_pct=None if rng.random() < 0.5 else D("0.05"),
        trailing_activation_pct=D(rng.choice(["0", "0.01"])) if trailing else None,
        trailing_distance_pct=D(rng.choice(["0.005", "0.01"])) if trailing else None,
    )


def _restarted(reference: dict[int, RiskLevels]) -> PositionIndex:
    """A new index from the stored levels, equal ones shared as start-up shares them."""
    index = PositionIndex()
    shared: dict[tuple[object, ...], RiskLevels] = {}
    rows = []
    for pid, lv in sorted(reference.items()):
        key = (lv.side, lv.stop, lv.take_profit, lv.activation, lv.distance, lv.peak)
        rows.append((pid, "ETH", shared.setdefault((*key, lv.trailing_active), copy.copy(lv))))
    index.add_many(rows)
    return index


def _walk(seed: int, ticks: int = 200) -> int:
    rng = random.Random(seed)
    index = PositionIndex()
    reference: dict[int, RiskLevels] = {}
    gone: dict[int, RiskLevels] = {}  # closed by hand; some come back (a refused close)
    price, next_id, closed = D(100), 1, 0
    # few distinct levels, so that later signals often land on an existing set's levels
    for _ in range(ticks):
        if rng.random() < 0.2:
            levels = RiskLevels.initial(rng.choice(["long", "short"]), price, _params(rng))
            followers = list(range(next_id, next_id + rng.randint(1, 8)))
            next_id += len(followers)
            index.add_many([(pid, "ETH", levels) for pid in followers])
            reference.update((pid, copy.copy(levels)) for pid in followers)
        if reference and rng.random() < 0.2:
            pid = rng.choice(sorted(reference))
            index.remove(pid)
            gone[pid] = reference.pop(pid)
        if gone and rng.random() < 0.3:  # back under watch with its levels as they stood
            pid = rng.choice(sorted(gone))
            lv = gone.pop(pid)
            index.add(pid, "ETH", copy.copy(lv))
            reference[pid] = lv
        if rng.random() < 0.1:
            index = _restarted(reference)
        price = max(D(1), price + D(rng.choice([-3, -2, -1, 0, 1, 2, 3])) / D(4))
        closed += tick_both(index, reference, "ETH", price, f"seed {seed}")
        assert len(index) == len(reference)
        for pid, lv in reference.items():
            stop, _, active = index.state(pid)  # type: ignore[misc]
            assert (stop, active) == (lv.stop, lv.trailing_active), f"seed {seed}, {pid}"
        for pid in gone:
            assert pid not in index and index.state(pid) is None
    return closed


def test_level_sets_close_as_their_members_would_through_removals_returns_and_restarts() -> None:
    assert sum(_walk(seed) for seed in range(30)) > 300


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_level_sets_property(seed: int) -> None:
    _walk(seed, ticks=150)


def test_followers_of_one_signal_are_one_entry_of_the_index() -> None:
    index = PositionIndex()
    levels = RiskLevels.initial("long", D(100), RiskParams(D("0.02"), D("0.05"), D(0), D("0.01")))
    index.add_many([(pid, "BTC", levels) for pid in range(1, 10_001)])
    book = index._books["BTC"][0]
    assert len(book.stops) == 1 and len(book.ups) == 2  # one stop, one target, one activation
    index.remove(5)
    assert {t.position_id for t in index.on_price("BTC", D(98))} == set(range(1, 10_001)) - {5}
    assert len(index) == 0
