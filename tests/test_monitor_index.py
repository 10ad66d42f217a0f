"""The monitor's index must close exactly what the plain reference rule closes."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.levels import RiskLevels, RiskParams
from engine.monitor import PositionIndex
from tests.monitor_helpers import tick_both

D = Decimal


def _random_params(rng: random.Random) -> RiskParams:
    trailing = rng.random() < 0.7
    return RiskParams(
        stop_loss_pct=D(rng.choice(["0.01", "0.02", "0.05", "0.1"])),
        take_profit_pct=None if rng.random() < 0.3 else D(rng.choice(["0.02", "0.05", "0.1"])),
        trailing_activation_pct=D(rng.choice(["0", "0.01", "0.03"])) if trailing else None,
        trailing_distance_pct=D(rng.choice(["0.005", "0.01", "0.02"])) if trailing else None,
    )


def _compare(seed: int, n_positions: int = 60, n_ticks: int = 300, removals: bool = False) -> int:
    rng = random.Random(seed)
    index = PositionIndex()
    reference: dict[int, RiskLevels] = {}
    price = D(100)
    closed = 0
    next_id = 1
    for _ in range(n_ticks):
        # open a few positions at the current price, then move the price (sometimes a gap)
        for _ in range(rng.randint(0, 2)):
            if len(reference) >= n_positions:
                break
            side = rng.choice(["long", "short"])
            levels = RiskLevels.initial(side, price, _random_params(rng))
            reference[next_id] = levels
            index.add(next_id, "BTC", levels_copy(levels))
            next_id += 1
        assert len(index) == len(reference)
        if removals and reference and rng.random() < 0.3:
            gone = rng.choice(sorted(reference))  # closed by hand: leaves the index too
            del reference[gone]
            index.remove(gone)
        step = D(rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3])) / D(4)
        if rng.random() < 0.03:
            step *= 12  # a gap through several levels at once
        price = max(D(1), price + step)
        closed += tick_both(index, reference, "BTC", price, f"seed {seed}")
        for pid, lv in reference.items():
            stop, _, active = index.state(pid)
            assert active == lv.trailing_active
            assert stop == lv.stop, f"stop of {pid} differs"
    return closed


def levels_copy(lv: RiskLevels) -> RiskLevels:
    return RiskLevels(
        lv.side,
        lv.entry,
        lv.stop,
        lv.take_profit,
        lv.activation,
        lv.distance,
        lv.peak,
        lv.trailing_active,
    )


def test_index_matches_reference_on_many_random_paths() -> None:
    total = sum(_compare(seed) for seed in range(40))
    assert total > 500  # the paths really do close positions, through every kind of level


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_index_matches_reference_property(seed: int) -> None:
    _compare(seed, n_positions=20, n_ticks=120)


def test_index_matches_reference_with_manual_closes_and_compaction() -> None:
    # hundreds of positions and removals push the index through its compaction
    total = sum(_compare(seed, n_positions=400, n_ticks=1500, removals=True) for seed in range(3))
    assert total > 300


def test_a_long_rally_does_not_grow_the_index() -> None:
    index = PositionIndex()
    index.add(
        1, "BTC", RiskLevels.initial("long", D(100), RiskParams(D("0.5"), None, D("0"), D("0.4")))
    )
    for i in range(20_000):
        assert index.on_price("BTC", D(100) + D(i) / 100) == []
    book = index._books["BTC"][0]
    assert len(book.levels) <= 2 * len(book.stack) + 65
    index.add(1, "BTC", RiskLevels.initial("long", D(1), RiskParams(D("0.5"))))  # no duplicate
    assert len(index) == 1
    assert index.on_price("BTC", D(1)) == [(1, "trailing_stop")]
