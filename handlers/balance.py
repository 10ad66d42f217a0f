"""/balance: what the user's accounts hold. A live Hyperliquid account is read from
Hyperliquid (account value, withdrawable, margin used), a live Ostium one from the chain and
the subgraph (USDC in the wallet, collateral and unrealized PnL of open trades); paper
deployments show their paper equity (margin in open positions plus their unrealized PnL) and
realized PnL, labelled [PAPER]. A venue that does not answer is said plainly, never shown as
zero."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from engine.account_balances import VenueUnreachable, hyperliquid_balance, ostium_balance
from engine.venues.routed import AccountRoutedVenue
from handlers.base import Reply, Response
from handlers.context import Ctx
from handlers.format import money, signed_money
from handlers.positions import unrealized
from storage.enums import PositionStatus
from storage.models import Deployment, Position
from wallets import siwe_link


async def _live_lines(ctx: Ctx) -> list[str]:
    async with ctx.services.sessions() as s:
        wallet = await siwe_link.linked_wallet(s, ctx.user_id)
    if wallet is None:
        return []
    lines: list[str] = []
    for name, shown, read in (
        ("HYPERLIQUID", "Hyperliquid", _hyperliquid),
        ("OSTIUM", "Ostium", _ostium),
    ):
        venue = ctx.services.engine.venues.get(name)
        if not isinstance(venue, AccountRoutedVenue):  # live trading off on this venue
            continue
        tag = ctx.t("tag.live")
        lines.append(ctx.t("balance.live_head", tag=tag, venue=shown, address=wallet.address))
        try:
            lines.append(await read(ctx, venue.live, wallet.address))
        except VenueUnreachable:
            lines.append(ctx.t("balance.unreachable", venue=shown))
    return lines


async def _hyperliquid(ctx: Ctx, venue: Any, address: str) -> str:
    held = await hyperliquid_balance(venue, address)
    return ctx.t(
        "balance.hl_lines",
        value=money(held.account_value),
        withdrawable=money(held.withdrawable),
        margin=money(held.margin_used),
    )


async def _ostium(ctx: Ctx, venue: Any, address: str) -> str:
    held = await ostium_balance(venue, address, ctx.services.engine.prices.price)
    equity = held.equity
    return ctx.t(
        "balance.ostium_lines",
        usdc=money(held.usdc),
        collateral=money(held.collateral),
        upnl=signed_money(held.unrealized) if held.unrealized is not None else "-",
        equity=money(equity) if equity is not None else "-",
    )


async def _paper_lines(ctx: Ctx) -> list[str]:
    async with ctx.services.sessions() as s:
        paper = (Deployment.user_id == ctx.user_id) & Position.account.startswith("paper:")
        opened = (
            (
                await s.execute(
                    select(Position)
                    .join(Deployment, Deployment.id == Position.deployment_id)
                    .where(paper, Position.status == PositionStatus.OPEN)
                )
            )
            .scalars()
            .all()
        )
        realized = (
            await s.execute(
                select(func.coalesce(func.sum(Position.realized_pnl), 0))
                .join(Deployment, Deployment.id == Position.deployment_id)
                .where(paper, Position.status == PositionStatus.CLOSED)
            )
        ).scalar_one()
        any_paper = (
            await s.execute(
                select(func.count(Deployment.id)).where(
                    Deployment.user_id == ctx.user_id, Deployment.account.startswith("paper:")
                )
            )
        ).scalar_one()
    if not any_paper:
        return []
    margin = upnl = Decimal(0)
    for p in opened:
        margin += p.size * p.entry_price / (p.leverage or 1)
        move = unrealized(p, ctx.services.engine.prices.price(p.market))
        upnl += move or 0
    return [
        ctx.t("balance.paper_head", tag=ctx.t("tag.paper")),
        ctx.t(
            "balance.paper_lines",
            equity=money(margin + upnl),
            margin=money(margin),
            upnl=signed_money(upnl),
            realized=signed_money(Decimal(realized)),
        ),
    ]


async def balance(ctx: Ctx, _: str = "") -> Response:
    parts = [*await _live_lines(ctx), *await _paper_lines(ctx)]
    if not parts:
        return Response([Reply(ctx.t("balance.none"))])
    return Response([Reply("\n".join(parts))])
