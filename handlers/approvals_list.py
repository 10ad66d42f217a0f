"""/approvals: the orders waiting for the user's Confirm, each as its alert showed it (price,
size, stop, take profit, expiry) with Confirm / Skip."""

from __future__ import annotations

from sqlalchemy import select

from engine.events import decimal_text
from engine.levels import RiskLevels, RiskParams
from engine.venues.routed import mode_of
from handlers.alerts import alert_reply
from handlers.base import Reply, Response
from handlers.context import Ctx
from storage.enums import OrderPurpose, OrderStatus
from storage.models import Agent, Deployment, Order, Signal

SHOWN = 20


async def pending_approvals(ctx: Ctx, _: str = "") -> Response:
    now = ctx.services.clock()
    async with ctx.services.sessions() as s:
        rows = (
            await s.execute(
                select(Order, Agent)
                .join(Deployment, Deployment.id == Order.deployment_id)
                .join(Signal, Signal.id == Order.signal_id)
                .join(Agent, Agent.id == Signal.agent_id)
                .where(
                    Deployment.user_id == ctx.user_id,
                    Order.purpose == OrderPurpose.OPEN,
                    Order.status == OrderStatus.AWAITING_APPROVAL,
                    Order.expires_at > now,
                )
                .order_by(Order.expires_at, Order.id)
            )
        ).all()
    if not rows:
        return Response([Reply(ctx.t("approvals.none"))])
    replies = [Reply(ctx.t("approvals.header", count=len(rows)))]
    for order, agent in rows[:SHOWN]:
        price = order.reference_price
        if price is None:  # not sized yet: nothing to decide on
            continue
        levels = RiskLevels.initial(
            order.side,
            price,
            RiskParams(
                agent.stop_loss_pct,
                agent.take_profit_pct,
                agent.trailing_activation_pct,
                agent.trailing_distance_pct,
            ),
        )
        payload = {
            "order_id": order.id,
            "agent": agent.name,
            "market": order.market,
            "side": order.side,
            "leverage": decimal_text(order.leverage),
            "collateral_usd": decimal_text(order.collateral_usd),
            "mode": mode_of(order.account),
            "price": decimal_text(price),
            "size": decimal_text(order.size),
            "stop_price": decimal_text(levels.stop),
            "take_profit_price": decimal_text(levels.take_profit) if levels.take_profit else None,
            "expires_at": order.expires_at.isoformat() if order.expires_at else "",
            "time_zone": ctx.settings.get("time_zone"),
        }
        replies.append(alert_reply("approval_requested", payload, ctx.language))
    return Response(replies)
