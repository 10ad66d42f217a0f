"""Building scenarios in tests, and the paper-trading rules written out independently."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from typing import Any

from engine.replay.scenario import Scenario, parse_scenario

D = Decimal
PG_URL = os.environ.get("MAXXIT_TEST_DATABASE_URL") or None


def scenario(**parts: Any) -> Scenario:
    return parse_scenario(json.dumps(parts, default=str), "test scenario")


def agent(
    name: str = "Hawk", sources: list[str] | None = None, venue: str = "HYPERLIQUID", **risk: Any
) -> dict[str, Any]:
    base = {
        "stop_loss_pct": "0.05",
        "take_profit_pct": "0.10",
        "trailing_activation_pct": "0.03",
        "trailing_distance_pct": "0.02",
        "leverage": "5",
        "min_confidence": "0.3",
    }
    base.update({k: v for k, v in risk.items() if k in base or k == "take_profit_pct"})
    extra = {k: v for k, v in risk.items() if k not in base}
    return {"name": name, "sources": sources or ["@hawk"], "venue": venue, "risk": base, **extra}


def fill(price: str, side: str, opening: bool, bps: str) -> Decimal:
    """Paper rule: the fill moves against the trader by the slippage."""
    buying = (side == "long") == opening
    move = D(price) * D(bps) / 10_000
    return D(price) + move if buying else D(price) - move


def expected_trade(
    ref_in: str, ref_out: str, side: str, size: Decimal, taker: str, slip: str
) -> dict[str, Decimal]:
    entry = fill(ref_in, side, True, slip)
    exit_ = fill(ref_out, side, False, slip)
    fees = D(taker) * entry * size / 10_000 + D(taker) * exit_ * size / 10_000
    gross = (exit_ - entry) * size if side == "long" else (entry - exit_) * size
    return {"entry": entry, "exit": exit_, "fees": fees, "pnl": gross - fees}
