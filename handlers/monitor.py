"""/monitor: a pinned message listing the user's open positions (live price, move, PnL) that
edits itself as prices move. /monitor toggles it (or /monitor on, /monitor off). The message
is sent, pinned and edited by the chat app's editor (bot/telegram_monitor.py), at most once
every few seconds and only when its text changed; this module says what it shows."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from engine import notify_monitor
from engine.venues.routed import mode_of
from handlers.base import Reply, Response, Services, UserError
from handlers.context import Ctx
from handlers.format import LANGUAGE, price, signed_money, signed_pct
from handlers.i18n import t
from handlers.positions import returns, unrealized
from storage.enums import PositionStatus
from storage.models import Agent, Deployment, Position

# chat apps whose editor keeps a monitor message (Discord and the console: not yet)
EDITED_ON = frozenset({"telegram"})
MAX_LINES = 30  # Telegram's 4096 characters hold about this many position lines


async def monitor(ctx: Ctx, args: str) -> Response:
    word = args.strip().lower()
    if word not in ("", "on", "off"):
        raise UserError("monitor.usage")
    platform = ctx.request.platform
    if platform not in EDITED_ON:
        return Response([Reply(ctx.t("monitor.telegram_only"))])
    async with ctx.services.sessions() as s, s.begin():
        on = await notify_monitor.is_on(s, ctx.user_id, platform)
        if word == "on" or (word == "" and not on):
            await notify_monitor.turn_on(s, ctx.user_id, platform, ctx.request.chat_id)
            return Response([Reply(ctx.t("monitor.on"))])
        if not await notify_monitor.turn_off(s, ctx.user_id, platform):
            return Response([Reply(ctx.t("monitor.already_off"))])
    return Response([Reply(ctx.t("monitor.off"))])


async def monitor_text(services: Services, user_id: int, language: str) -> str:
    """What the monitor shows now. Nothing here changes unless a price or a position does
    (no clock), so an unchanged text means no edit."""
    async with services.sessions() as s:
        rows = (
            await s.execute(
                select(Position, Agent.name)
                .join(Deployment, Deployment.id == Position.deployment_id)
                .join(Agent, Agent.id == Deployment.agent_id)
                .where(Deployment.user_id == user_id, Position.status == PositionStatus.OPEN)
                .order_by(Position.id)
            )
        ).all()
    LANGUAGE.set(language)  # amounts in the user's number format
    lines = [t(language, "monitor.title")]
    if not rows:
        return "\n".join([*lines, t(language, "monitor.empty")])
    total = Decimal(0)
    for p, agent in rows[:MAX_LINES]:
        mark = services.engine.prices.price(p.market)
        upnl = unrealized(p, mark)
        move = "-" if mark is None or upnl is None else signed_pct(returns(p, mark, upnl)[0])
        total += upnl or 0
        lines.append(
            t(
                language,
                "monitor.line",
                tag=t(language, f"tag.{mode_of(p.account)}"),
                agent=agent,
                side=t(language, f"side.{p.side}"),
                market=p.market,
                mark=price(mark) if mark is not None else "-",
                move=move,
                upnl=signed_money(upnl) if upnl is not None else "-",
            )
        )
    if len(rows) > MAX_LINES:
        lines.append(t(language, "monitor.more", count=len(rows) - MAX_LINES))
    lines.append(t(language, "monitor.total", upnl=signed_money(total)))
    return "\n".join(lines)
