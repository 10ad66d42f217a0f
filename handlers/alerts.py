"""What an alert says. Transports call `render` and add their own buttons and formatting.

English only for now; the catalogues in `locales/` take these over with the Telegram work.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_REASONS = {
    "stop_loss": "stop loss",
    "take_profit": "take profit",
    "trailing_stop": "trailing stop",
    "end_of_replay": "end of replay",
    "manual": "closed by you",
    "external": "closed outside Maxxit",
    "below_min_notional": "the order is below the venue's minimum size",
    "size_rounds_to_zero": "the collateral is too small for this market",
    "not_listed": "the agent's venue does not list this market",
    "not_listed_anywhere": "no venue of the agent lists this market",
    "no_price": "no price for this market yet",
    "market_not_listed": "the venue does not list this market",
    "venue_unavailable": "the venue is unavailable",
}


def _money(value: Any) -> str:
    return f"{Decimal(value):,.2f}"


def _price(value: Any) -> str:
    return f"{Decimal(value):.6g}"


def reason_text(code: str) -> str:
    return _REASONS.get(code, code.replace("_", " "))


def render(kind: str, p: dict[str, Any]) -> str:
    side = str(p.get("side", "")).upper()
    if kind == "position_opened":
        return (
            f"{p['agent']} opened {side} {p['market']} on {p['venue']}: size {p['size']}"
            f" at {_price(p['entry_price'])}, {Decimal(p['leverage']):g}x,"
            f" stop {_price(p['stop_price'])}"
        )
    if kind == "position_closed":
        pnl = Decimal(p["realized_pnl"])
        return (
            f"{p['agent']} closed {side} {p['market']} at {_price(p['exit_price'])}"
            f" ({reason_text(p['close_reason'])}): PnL {'+' if pnl >= 0 else '-'}$"
            f"{_money(abs(pnl))} after ${_money(p['fees'])} fees"
        )
    if kind == "stop_moved":
        return f"Stop on {side} {p['market']} moved to {_price(p['stop_price'])}"
    if kind == "order_failed":
        return (
            f"{p['agent']} could not {p['purpose']} {side} {p['market']}:"
            f" {reason_text(p['reason'])}"
        )
    if kind == "signal_rejected":
        return f"{p['agent']} skipped {side} {p['market']}: {reason_text(p['reason'])}"
    if kind == "approval_requested":
        return (
            f"{p['agent']} wants to {side} {p['market']} {Decimal(p['leverage']):g}x"
            f" with ${_money(p['collateral_usd'])}. Confirm or skip?"
        )
    return f"{kind}: {p}"
