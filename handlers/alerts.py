"""What an alert says, in the user's language. Transports call `render` and add their own
buttons and formatting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handlers.i18n import catalogue, pick_language, t


def _money(value: Any) -> str:
    return f"{Decimal(value):,.2f}"


def _price(value: Any) -> str:
    return f"{Decimal(value):.6g}"


def reason_text(lang: str, code: str) -> str:
    key = f"reason.{code}"
    if key in catalogue(pick_language(lang)) or key in catalogue("en"):
        return t(lang, key)
    return code.replace("_", " ")  # a venue's own code we have no words for yet


def render(kind: str, p: dict[str, Any], lang: str = "en") -> str:
    side = t(lang, f"side.{p['side']}") if p.get("side") in ("long", "short") else ""
    if kind == "position_opened":
        return t(
            lang,
            "alert.position_opened",
            agent=p["agent"],
            side=side,
            market=p["market"],
            venue=p["venue"],
            size=p["size"],
            entry=_price(p["entry_price"]),
            leverage=f"{Decimal(p['leverage']):g}",
            stop=_price(p["stop_price"]),
        )
    if kind == "position_closed":
        pnl = Decimal(p["realized_pnl"])
        return t(
            lang,
            "alert.position_closed",
            agent=p["agent"],
            side=side,
            market=p["market"],
            exit=_price(p["exit_price"]),
            reason=reason_text(lang, p["close_reason"]),
            pnl=f"{'+' if pnl >= 0 else '-'}${_money(abs(pnl))}",
            fees=_money(p["fees"]),
        )
    if kind == "stop_moved":
        return t(
            lang, "alert.stop_moved", side=side, market=p["market"], stop=_price(p["stop_price"])
        )
    if kind == "order_failed":
        return t(
            lang,
            "alert.order_failed",
            agent=p["agent"],
            side=side,
            market=p["market"],
            action=t(lang, f"action.{p['purpose']}"),
            reason=reason_text(lang, p["reason"]),
        )
    if kind == "signal_rejected":
        return t(
            lang,
            "alert.signal_rejected",
            agent=p["agent"],
            side=side,
            market=p["market"],
            reason=reason_text(lang, p["reason"]),
        )
    if kind == "approval_requested":
        return t(
            lang,
            "alert.approval_requested",
            agent=p["agent"],
            side=side,
            market=p["market"],
            leverage=f"{Decimal(p['leverage']):g}",
            collateral=_money(p["collateral_usd"]),
        )
    return f"{kind}: {p}"
