"""`maxxit stats`: what the installation has done, and what the LLM classifier costs."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from storage.models import ClassificationRow, Order, Position, Post, Signal, User

MILLION = Decimal(1_000_000)


async def stats_lines(session: AsyncSession, settings: Settings) -> list[str]:
    async def count(model, *where) -> int:  # type: ignore[no-untyped-def]
        return (
            await session.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()

    by_classifier = (
        await session.execute(
            select(
                ClassificationRow.classifier,
                func.count(),
                func.coalesce(func.sum(ClassificationRow.tokens_in), 0),
                func.coalesce(func.sum(ClassificationRow.tokens_out), 0),
            ).group_by(ClassificationRow.classifier)
        )
    ).all()
    realized = (
        await session.execute(select(Position.realized_pnl).where(Position.status == "closed"))
    ).scalars()
    pnl = sum((p for p in realized if p is not None), Decimal(0))
    lines = [
        f"users {await count(User)}   posts {await count(Post)}   signals {await count(Signal)}",
        f"orders {await count(Order)} (filled {await count(Order, Order.status == 'filled')})   "
        f"positions open {await count(Position, Position.status == 'open')}, "
        f"closed {await count(Position, Position.status == 'closed')}, realized PnL {pnl:.2f}",
        "classifications:",
    ]
    total_cost = Decimal(0)
    for name, n, tin, tout in by_classifier:
        cost = (
            Decimal(tin) * settings.llm_price_input_per_mtok
            + Decimal(tout) * settings.llm_price_output_per_mtok
        ) / MILLION
        total_cost += cost
        lines.append(f"  {name:<8} {n:>7} posts   tokens in {tin:>9} out {tout:>8}   ${cost:.4f}")
    lines.append(f"LLM cost ${total_cost:.4f} at ${settings.llm_price_input_per_mtok}/"
                 f"${settings.llm_price_output_per_mtok} per million tokens in/out")  # fmt: skip
    return lines
