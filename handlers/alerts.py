"""What an alert says, in the user's language, and the buttons it carries (`alert_reply`):
Close on an opened position, Confirm / Skip on an approval request; `alert_with_picture` adds
the closed-trade card."""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import lru_cache
from typing import Any

from engine.analytics.charts import TradeCard, trade_card
from engine.analytics.charts import render as draw
from handlers import callbacks
from handlers.base import Button, Reply
from handlers.i18n import catalogue, pick_language, t, tn
from handlers.time_zone import when

BILLING_ALERTS = ("subscription_active", "subscription_lapsed", "channel_disabled")
log = logging.getLogger(__name__)


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
    elif kind == "limit_entry_placed":
        key = "alert.limit_entry_placed"
        moment = when(p["expires_at"], p.get("time_zone"))
        extra = {"price": _price(p["limit_price"]), "time": moment}
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
    elif kind == "agent_key_rotating":
        ostium = p.get("venue") == "OSTIUM"
        key = "alert.agent_key_rotating_ostium" if ostium else "alert.agent_key_rotating"
        extra = {"address": p["agent"], "url": p["url"]}
    elif kind == "agent_key_rotated":
        key = "alert.agent_key_rotated"
        extra = {"address": p["agent"], "old": p["old_agent"], "venue": p["venue"].title()}
    elif kind == "wallet_linked":
        key = "alert.wallet_linked"
        extra = {"address": p["address"]}
    elif kind == "deployments_paused":
        key = "alert.deployments_paused"
        count = tn(lang, "n.deployments", int(p["count"]))
        extra = {"loss": _money(p["loss"]), "limit": _money(p["limit"]), "count": count}
    elif kind in BILLING_ALERTS:  # paid agents and notification channels (issue 14)
        key = f"alert.{kind}"
        extra = {k: v for k, v in p.items() if k not in common}
    else:
        return f"{kind}: {p}"
    text = t(lang, key, **common, **extra)
    if kind == "position_opened":
        text += _levels_from_call(p, lang)
    if kind == "approval_requested" and details:
        text += "\n" + details
    if kind in ABOUT_A_POSITION and p.get("mode") in ("paper", "live"):
        text = t(lang, f"tag.{p['mode']}") + " " + text
    if p.get("rationale"):
        text += "\n" + t(lang, "alert.rationale", rationale=p["rationale"])
    if p.get("route_runner_up") and p.get("route_saving_pct"):
        text += "\n" + t(
            lang,
            "alert.route_cheaper",
            venue=p["venue"].title(),
            pct=f"{Decimal(p['route_saving_pct']):.2f}",
            other=p["route_runner_up"].title(),
        )
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
        shown = {n: _price(v) for n, v in prices.items() if v is not None}
        if "entry" in shown and p.get("call_entry_to") is not None:  # a range: both ends
            shown["entry"] += "–" + _price(p["call_entry_to"])
        levels = ", ".join(t(lang, f"level.{n}", price=shown[n]) for n in used if n in shown)
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


def _trade_card(p: dict[str, Any], lang: str) -> TradeCard:
    side = p["side"]
    entry, size, pnl = Decimal(p["entry_price"]), Decimal(p["size"]), Decimal(p["realized_pnl"])
    leverage = Decimal(p.get("leverage") or 1)
    margin = entry * size / leverage if leverage > 0 else entry * size
    return TradeCard(
        agent=p.get("agent") or "",
        market=p["market"],
        side_label=t(lang, f"side.{side}") if side in ("long", "short") else side,
        is_long=side == "long",
        return_pct=pnl / margin if margin else Decimal(0),
        pnl=pnl,
        entry_label=t(lang, "card.entry"),
        entry=_price(entry),
        exit_label=t(lang, "card.exit"),
        exit=_price(p["exit_price"]),
        footer=f"{reason_text(lang, p['close_reason'])} · {p.get('venue', '')}".strip(" ·"),
        leverage=f"{leverage:g}x",
    )


@lru_cache(maxsize=256)
def _card_png(card: TradeCard) -> bytes:
    # followers of one agent with the same stake get the same card: drawn once
    return trade_card(card)


async def alert_with_picture(kind: str, p: dict[str, Any], lang: str = "en") -> Reply:
    """`alert_reply`, with a picture where one helps: a closed trade's card. A picture that
    cannot be drawn never holds the alert back."""
    reply = alert_reply(kind, p, lang)
    if kind == "position_closed":
        try:
            reply.photo = await draw(_card_png, _trade_card(p, lang))
        except Exception:
            log.exception("closed-trade card for position %s not drawn", p.get("position_id"))
    return reply
