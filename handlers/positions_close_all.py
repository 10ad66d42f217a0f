"""Close all (confirmed) on /positions, and one message per manual close: the reply to the
user's Close is the news, so the "position closed" alert for it is not sent as well."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from handlers import callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.format import signed_money
from storage.enums import CloseReason, OutboxStatus, PositionStatus
from storage.models import Deployment, OutboxMessage, Position


async def shown_in_reply(ctx: Ctx, position_ids: list[int]) -> None:
    """Mark the 'closed' alerts of these positions as delivered: the reply said it. An alert
    a dispatcher already holds is still sent (harmless: the same facts twice)."""
    if not position_ids:
        return
    async with ctx.services.sessions() as s, s.begin():
        await s.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.user_id == ctx.user_id,
                OutboxMessage.dedupe_key.in_([f"closed:{pid}" for pid in position_ids]),
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.next_attempt_at.is_(None),  # not claimed by a dispatcher
            )
            .values(status=OutboxStatus.SENT, sent_at=ctx.services.clock(), error="in reply")
        )


async def _open_ids(ctx: Ctx) -> list[int]:
    async with ctx.services.sessions() as s:
        return list(
            (
                await s.execute(
                    select(Position.id)
                    .join(Deployment, Deployment.id == Position.deployment_id)
                    .where(
                        Deployment.user_id == ctx.user_id,
                        Position.status == PositionStatus.OPEN,
                    )
                    .order_by(Position.id)
                )
            )
            .scalars()
            .all()
        )


async def close_all_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    ids = await _open_ids(ctx)
    if not ids:
        return Response([Reply(ctx.t("positions.none"), edit=True)])
    yes = Button(ctx.t("positions.close_all_yes"), callbacks.make("pcay"))
    no = Button(ctx.t("positions.close_no"), callbacks.make("pcan"))
    return Response(
        [
            Reply(
                ctx.t("positions.close_all_ask", count=ctx.tn("n.open_positions", len(ids))),
                [[yes, no]],
            )
        ]
    )


async def close_all_keep_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return Response([Reply(ctx.t("positions.close_all_kept"), edit=True)])


async def close_all_confirm_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    ids = await _open_ids(ctx)  # the user's own, read again at the press
    if not ids:
        return Response([Reply(ctx.t("positions.none"), edit=True)])
    await ctx.services.engine.close_positions(dict.fromkeys(ids, CloseReason.MANUAL))
    async with ctx.services.sessions() as s:
        rows = (
            await s.execute(
                select(Position.id, Position.status, Position.realized_pnl).where(
                    Position.id.in_(ids)
                )
            )
        ).all()
    closed = [r for r in rows if r.status != PositionStatus.OPEN]
    pnl = sum((r.realized_pnl or Decimal(0) for r in closed), Decimal(0))
    await shown_in_reply(ctx, [r.id for r in closed])
    text = ctx.t(
        "positions.closed_all",
        closed=len(closed),
        pending=len(rows) - len(closed),
        pnl=signed_money(pnl),
    )
    return Response([Reply(text, edit=True)])
