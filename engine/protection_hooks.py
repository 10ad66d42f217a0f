"""The engine's use of protection (engine/protection.py): triggers placed after a live position
opens, canceled after the engine closes it itself, moved after the trailing stop moved, and
reconciled with the books (engine/protection_reconcile.py) whenever the engine reconciles.

Every step here is best effort and runs after the engine recorded what it did, with no
transaction open: a venue that is down or refuses never undoes or blocks a recorded open or
close. What a failure leaves behind (a missing trigger, one that should be gone, a stop that
lags) is put right by the next reconciliation or checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.protection import (
    RESTING,
    MoveSettings,
    ProtectionVenue,
    TriggeredClose,
    cancel_protection,
    move_stops,
    protect_opened,
)
from engine.protection_reconcile import reconcile_protection
from engine.reconcile import is_live
from engine.venues.hyperliquid_protection import STOP
from storage.enums import PositionStatus
from storage.models import Position, ProtectiveOrder
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class Protection:
    """Protective triggers for the live positions of one venue (Hyperliquid)."""

    sessions: async_sessionmaker[AsyncSession]
    venue: ProtectionVenue
    settings: MoveSettings = field(default_factory=MoveSettings)
    clock: Callable[[], datetime] = utcnow

    @property
    def name(self) -> str:
        return self.venue.name

    def for_venue(self, name: str) -> Protection | None:
        """This protection if it is the named venue's (engine/venues/ostium_protection.py's
        ProtectionSet answers for several venues)."""
        return self if name == self.name else None

    def covers(self, venue: str, account: str) -> bool:
        """A position on this venue with real money: paper positions rest nowhere."""
        return venue == self.venue.name and is_live(account)

    async def opened(self, position_ids: list[int], namespace: str) -> None:
        """Newly opened positions (protect_opened keeps the live ones of this venue)."""
        try:
            await protect_opened(
                self.sessions, self.venue, position_ids, namespace=namespace, clock=self.clock
            )
        except Exception:  # the position stands; reconciliation places its triggers
            log.exception("protection: placing triggers for %s failed", position_ids)

    async def closed(self, position_ids: list[int]) -> None:
        """Positions the engine closed: their triggers off the venue (with positionTpsl the
        venue drops them once flat; one that stayed is canceled by the next reconcile)."""
        try:
            await cancel_protection(self.sessions, self.venue, position_ids, clock=self.clock)
        except Exception:
            log.exception("protection: canceling triggers of %s failed", position_ids)

    async def follow_stops(self, watched: Iterable[int], namespace: str) -> dict[int, str]:
        """Move resting stops to the books' stop, for the positions this process watches.
        Asks for every resting stop that differs from its position's stop, not only those
        the last checkpoint moved: a move refused as too soon, or lost to an error, is made
        by a later checkpoint even if the trailing stop has not moved since."""
        try:
            lagging = await self._lagging(set(watched))
            if not lagging:
                return {}
            return await move_stops(
                self.sessions, self.venue, lagging,
                settings=self.settings, namespace=namespace, clock=self.clock,
            )  # fmt: skip
        except Exception:
            log.exception("protection: moving stops failed; the next checkpoint retries")
            return {}

    async def _lagging(self, watched: set[int]) -> dict[int, Decimal]:
        stmt = (
            select(Position.id, Position.account, Position.stop_price)
            .join(ProtectiveOrder, ProtectiveOrder.position_id == Position.id)
            .where(
                Position.status == PositionStatus.OPEN,
                Position.venue == self.venue.name,
                ProtectiveOrder.kind == STOP,
                ProtectiveOrder.status == RESTING,
                ProtectiveOrder.trigger_price != Position.stop_price,
            )
        )
        async with self.sessions() as s:
            rows = (await s.execute(stmt)).all()
        # move_stops rounds to the tick and skips steps too small to spend weight on
        return {pid: stop for pid, account, stop in rows if pid in watched and is_live(account)}

    async def triggered(self, namespace: str) -> list[TriggeredClose]:
        """Reconcile resting triggers with the books; the triggers that closed positions the
        books still hold open, to be closed at the venue's fill."""
        try:
            return await reconcile_protection(
                self.sessions, self.venue, namespace=namespace, clock=self.clock
            )
        except Exception:  # the external-close path still settles what is gone at the venue
            log.exception("protection: reconciling triggers failed; next run retries")
            return []
