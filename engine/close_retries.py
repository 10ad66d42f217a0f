"""Closes the venue refused: the positions are still open and still due to close. The next
tick of their market retries at once, later ones back off (1 s, 2 s, 4 s ... 5 min)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.enums import PositionStatus
from storage.models import Position


@dataclass(frozen=True, slots=True)
class CloseRetry:
    market: str
    reason: str
    attempts: int
    not_before: datetime


class CloseRetries:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.pending: dict[int, CloseRetry] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def due(self, market: str) -> dict[int, str]:
        if not self.pending:
            return {}
        now = self.clock()
        return {
            pid: r.reason
            for pid, r in self.pending.items()
            if r.market == market and r.not_before <= now
        }

    def settled(self, position_ids: Iterable[int]) -> None:
        for pid in position_ids:
            self.pending.pop(pid, None)

    async def schedule(self, refused: list[tuple[int, int, str]]) -> None:
        """`refused`: (signal, deployment, close reason) of each refused close order."""
        reasons = {(sig, dep): reason for sig, dep, reason in refused}
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(
                        Position.id, Position.market, Position.signal_id, Position.deployment_id
                    ).where(
                        Position.status == PositionStatus.OPEN,
                        tuple_(Position.signal_id, Position.deployment_id).in_(list(reasons)),
                    )
                )
            ).all()
        now = self.clock()
        for pid, market, sig, dep in rows:
            prev = self.pending.get(pid)
            attempts = prev.attempts + 1 if prev else 1
            delay = timedelta(seconds=0 if attempts == 1 else min(300, 2 ** (attempts - 1)))
            self.pending[pid] = CloseRetry(market, reasons[(sig, dep)], attempts, now + delay)
