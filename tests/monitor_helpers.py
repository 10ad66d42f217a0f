"""Shared by the monitor index tests: one price through the index and through the Decimal
reference rule (engine/levels.py) of every open position."""

from __future__ import annotations

from decimal import Decimal

from engine.levels import RiskLevels
from engine.monitor import PositionIndex


def tick_both(
    index: PositionIndex, reference: dict[int, RiskLevels], market: str, price: Decimal, where: str
) -> int:
    """The same positions close for the same reasons in both; they leave `reference`.
    Returns how many closed."""
    expected = {pid: r for pid, lv in reference.items() if (r := lv.step(price))}
    got = {t.position_id: t.reason for t in index.on_price(market, price)}
    assert got == expected, f"{where}, price {price}"
    for pid in expected:
        del reference[pid]
    return len(expected)
