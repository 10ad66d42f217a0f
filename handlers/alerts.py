"""What an alert says, in the user's language, and the buttons it carries (`alert_reply`):
Close on an opened position, Confirm / Skip on an approval request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handlers import callbacks
from handlers.base import Button, Reply
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
    # every alert names the agent (if any), side and market; str.format ignores the rest
    common = {"agent": p.get("agent", ""), "side": side, "market": p.get("market", "")}
    if kind == "position_opened":
        key = "alert.position_opened"
        extra = {
            "venue": p["venue"],
            "size": p["size"],
            "entry": _price(p["entry_price"]),
            "leverage": f"{Decimal(p['leverage']):g}",
            "stop": _price(p["stop_price"]),
        }
    elif kind == "position_closed":
        key = "alert.position_closed"
        pnl = Decimal(p["realized_pnl"])
        extra = {
            "exit": _price(p["exit_price"]),
            "reason": reason_text(lang, p["close_reason"]),
            "pnl": f"{'+' if pnl >= 0 else '-'}${_money(abs(pnl))}",
            "fees": _money(p["fees"]),
        }
    elif kind == "stop_moved":
        key = "alert.stop_moved"
        extra = {"stop": _price(p["stop_price"])}
    elif kind == "order_failed":
        key = "alert.order_failed"
        extra = {
            "action": t(lang, f"action.{p['purpose']}"),
            "reason": reason_text(lang, p["reason"]),
        }
    elif kind == "signal_rejected":
        key = "alert.signal_rejected"
        extra = {"reason": reason_text(lang, p["reason"])}
    elif kind == "approval_requested":
        key = "alert.approval_requested"
        extra = {
            "leverage": f"{Decimal(p['leverage']):g}",
            "collateral": _money(p["collateral_usd"]),
        }
    elif kind == "approval_expired":
        key = "alert.approval_expired"
        extra = {}
    elif kind == "source_failing":
        key = "alert.source_failing"
        extra = {"handle": p["handle"], "error": p["error"]}
    elif kind == "agent_approved":
        key = "alert.agent_approved"
        extra = {"address": p["agent"]}
    elif kind == "wallet_linked":
        key = "alert.wallet_linked"
        extra = {"address": p["address"]}
    elif kind == "deployments_paused":
        key = "alert.deployments_paused"
        extra = {"loss": _money(p["loss"]), "limit": _money(p["limit"]), "count": p["count"]}
    else:
        return f"{kind}: {p}"
    text = t(lang, key, **common, **extra)
    if kind == "position_opened":
        text += _levels_from_call(p, lang)
    if p.get("rationale"):
        text += "\n" + t(lang, "alert.rationale", rationale=p["rationale"])
    return text


def _levels_from_call(p: dict[str, Any], lang: str) -> str:
    """Which levels the call itself stated and were used, and which the agent refused."""
    prices = {
        "entry": p.get("call_entry"),
        "stop_loss": p.get("stop_price"),
        "take_profit": p.get("take_profit_price"),
    }
    used = [n for n in (p.get("levels_from_call") or "").split(",") if n in prices]
    refused = [n for n in (p.get("levels_refused") or "").split(",") if n in prices]
    out = ""
    if used:
        levels = ", ".join(
            t(lang, f"level.{n}", price=_price(prices[n])) for n in used if prices[n] is not None
        )
        out += "\n" + t(lang, "alert.levels_from_call", levels=levels)
    if refused:
        names = ", ".join(t(lang, f"level.name.{n}") for n in refused)
        out += "\n" + t(lang, "alert.levels_refused", levels=names)
    return out


def alert_reply(kind: str, p: dict[str, Any], lang: str = "en") -> Reply:
    text = render(kind, p, lang)
    if kind == "position_opened":
        close = Button(t(lang, "positions.close"), callbacks.make("pc", p["position_id"]))
        return Reply(text, [[close]])
    if kind == "approval_requested":
        return Reply(
            text,
            [
                [
                    Button(t(lang, "approval.confirm"), callbacks.make("ok", p["order_id"])),
                    Button(t(lang, "approval.skip"), callbacks.make("sk", p["order_id"])),
                ]
            ],
        )
    return Reply(text)
