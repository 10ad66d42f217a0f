"""What an alert says, in the user's language, and the buttons it carries (`alert_reply`):
Close on an opened position, Confirm / Skip on an approval request."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handlers import callbacks
from handlers.base import Button, Reply
from handlers.i18n import catalogue, pick_language, t, tn
from handlers.time_zone import when


def _money(value: Any) -> str:
    return f"{Decimal(value):,.2f}"


def _price(value: Any) -> str:
    return f"{Decimal(value):.6g}"


# alerts about a position (or one about to open): each says whether the money is real
ABOUT_A_POSITION = frozenset(
    {"position_opened", "position_closed", "stop_moved", "approval_requested"}
)


def approval_details(lang: str, p: dict[str, Any]) -> str:
    """Price, size, stop, take profit and expiry of an order waiting for Confirm (older
    alerts were written without them: nothing is shown then)."""
    if not p.get("price"):
        return ""
    tp = p.get("take_profit_price")
    text = t(
        lang,
        "alert.approval_details",
        price=_price(p["price"]),
        size=p.get("size") or "-",
        stop=_price(p["stop_price"]) if p.get("stop_price") else "-",
        tp=_price(tp) if tp else t(lang, "common.none"),
    )
    if p.get("expires_at"):
        moment = when(p["expires_at"], p.get("time_zone"))
        text += "\n" + t(lang, "alert.approval_expires", time=moment)
    return text


def reason_text(lang: str, code: str) -> str:
    key = f"reason.{code}"
    if key in catalogue(pick_language(lang)) or key in catalogue("en"):
        return t(lang, key)
    return code.replace("_", " ")  # a venue's own code we have no words for yet


def render(kind: str, p: dict[str, Any], lang: str = "en") -> str:
    side = t(lang, f"side.{p['side']}") if p.get("side") in ("long", "short") else ""
    # every alert names the agent (if any), side and market; str.format ignores the rest
    common = {"agent": p.get("agent", ""), "side": side, "market": p.get("market", "")}
    details = ""
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
        details = approval_details(lang, p)
    elif kind == "paused_skipped":
        key = "alert.paused_skipped"
        extra = {"id": p["deployment_id"]}
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
        count = tn(lang, "n.deployments", int(p["count"]))
        extra = {"loss": _money(p["loss"]), "limit": _money(p["limit"]), "count": count}
    else:
        return f"{kind}: {p}"
    text = t(lang, key, **common, **extra)
    if kind == "approval_requested" and details:
        text += "\n" + details
    if kind in ABOUT_A_POSITION and p.get("mode") in ("paper", "live"):
        text = t(lang, f"tag.{p['mode']}") + " " + text
    if p.get("rationale"):
        text += "\n" + t(lang, "alert.rationale", rationale=p["rationale"])
    return text


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
