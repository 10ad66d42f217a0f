"""Protection on Ostium: a live position's stop loss and take profit are set on the trade
itself (Ostium's `updateSl` / `updateTp`, signed by the agent key through delegatedAction),
and the stop is moved there as the trailing stop moves, so the trade stays protected while our
process is down (the same rule as Hyperliquid's resting triggers). Ostium's automation closes
a trade whose level the price crossed; the close reaches our books through the venue.

Stateless: the levels live on the chain and are read back from the subgraph's open trades,
so a move lost to a crash is made by the next checkpoint."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.protection import TriggeredClose
from engine.reconcile import is_live
from storage.enums import CloseReason, PositionStatus
from storage.models import Order, Position

log = logging.getLogger(__name__)
E18 = Decimal(10**18)
# the SDK writes prices through floats: a level within this fraction of ours is ours
SAME_LEVEL = Decimal("1e-9")
REASONS = {
    "sl": CloseReason.STOP_LOSS,
    "tp": CloseReason.TAKE_PROFIT,
    "liquidation": CloseReason.LIQUIDATION,
}


def _same(on_chain: Decimal, wanted: Decimal | None) -> bool:
    if wanted is None or wanted <= 0:
        return on_chain == 0
    return abs(on_chain - wanted) <= wanted * SAME_LEVEL


@dataclass
class OstiumProtection:
    sessions: async_sessionmaker[AsyncSession]
    venue: Any  # engine/venues/ostium.OstiumVenue

    @property
    def name(self) -> str:
        return str(self.venue.name)

    def for_venue(self, name: str) -> OstiumProtection | None:
        return self if name == self.name else None

    def covers(self, venue: str, account: str) -> bool:
        return venue == self.name and is_live(account)

    async def opened(self, position_ids: list[int], namespace: str) -> None:
        await self._sync(position_ids)

    async def closed(self, position_ids: list[int]) -> None:
        """Nothing to cancel: a trade's levels leave with the trade."""

    async def follow_stops(self, watched: Iterable[int], namespace: str) -> dict[int, str]:
        return await self._sync(list(watched))

    async def triggered(self, namespace: str) -> list[TriggeredClose]:
        """Live positions our books hold open whose trade Ostium's automation closed (its
        stop loss, take profit or a liquidation, while we were down or before our own close
        went out): each with the chain's close, for the engine to close at that fill."""
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(Position, Order.venue_order_id)
                    .join(Order, Order.id == Position.open_order_id)
                    .where(Position.venue == self.name, Position.status == PositionStatus.OPEN)
                )
            ).all()
        by_account: dict[str, list[tuple[Position, str | None]]] = defaultdict(list)
        for p, open_order in rows:
            if is_live(p.account):
                by_account[p.account].append((p, open_order))
        out = []
        for account, held in by_account.items():
            try:
                trades = await self.venue.open_trades(account)
            except Exception as exc:
                log.warning("ostium protection: trades of %s unavailable: %r", account, exc)
                continue
            for p, open_order in held:
                if p.market in trades or not open_order:
                    continue
                found = await self.venue.automated_close(int(open_order))
                if found is None:
                    continue
                order_id, kind, settled = found
                reason = REASONS[kind]
                if reason == CloseReason.STOP_LOSS and p.trailing_active:
                    reason = CloseReason.TRAILING_STOP
                out.append(
                    TriggeredClose(
                        p.id,
                        kind,
                        reason,
                        settled.price,
                        p.size,
                        Decimal(0),  # no closing fee: the rollover is holding cost
                        str(order_id),
                        "",
                        settled.at,
                        -settled.holding_total,
                    )
                )
        return out

    async def _sync(self, position_ids: list[int]) -> dict[int, str]:
        """Set on each trade the levels our books hold, where they differ."""
        if not position_ids:
            return {}
        async with self.sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(Position).where(
                            Position.id.in_(position_ids),
                            Position.venue == self.name,
                            Position.status == PositionStatus.OPEN,
                        )
                    )
                )
                .scalars()
                .all()
            )
        by_account: dict[str, list[Position]] = defaultdict(list)
        for p in rows:
            if is_live(p.account):
                by_account[p.account].append(p)
        moved: dict[int, str] = {}
        for account, positions in by_account.items():
            try:
                trades = await self.venue.open_trades(account)
            except Exception as exc:
                log.warning("ostium protection: trades of %s unavailable: %r", account, exc)
                continue
            for p in positions:
                trade = trades.get(p.market)
                if trade is None:
                    continue
                try:
                    if not _same(Decimal(trade["stopLossPrice"]) / E18, p.stop_price):
                        await self.venue.set_level(account, p.market, "sl", p.stop_price)
                        moved[p.id] = "stop_moved"
                    tp = p.take_profit_price
                    if tp and not _same(Decimal(trade["takeProfitPrice"]) / E18, tp):
                        await self.venue.set_level(account, p.market, "tp", tp)
                except Exception as exc:  # the position stands; the next checkpoint retries
                    log.warning("ostium protection: levels of %s failed: %r", p.id, exc)
        return moved


class ProtectionSet:
    """Several venues' protection behind the engine's one `protection` hook."""

    def __init__(self, members: list[Any]) -> None:
        self.members = members

    @property
    def name(self) -> str:
        return ",".join(m.name for m in self.members)

    def for_venue(self, name: str) -> Any:
        return next((m for m in self.members if m.name == name), None)

    def covers(self, venue: str, account: str) -> bool:
        return any(m.covers(venue, account) for m in self.members)

    async def opened(self, position_ids: list[int], namespace: str) -> None:
        for m in self.members:
            await m.opened(position_ids, namespace)

    async def closed(self, position_ids: list[int]) -> None:
        for m in self.members:
            await m.closed(position_ids)

    async def follow_stops(self, watched: Iterable[int], namespace: str) -> dict[int, str]:
        ids = list(watched)
        out: dict[int, str] = {}
        for m in self.members:
            out |= await m.follow_stops(ids, namespace)
        return out

    async def triggered(self, namespace: str) -> list[Any]:
        return []  # asked per venue (for_venue(name).triggered)
