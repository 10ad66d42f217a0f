"""Notify: engine events become outbox rows per user (in the transaction that caused them);
a dispatcher delivers pending rows through the transports and records the result, so a
message survives a restart and is never sent twice for one event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.events import Event, encoded_payloads
from storage.bulk import insert_ignore
from storage.enums import OutboxStatus
from storage.models import OutboxMessage, User
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)

# alerts a user can switch off in /settings, with their defaults; anything that asks the
# user to act (approvals) or says their deployments were paused is always delivered
ALERT_DEFAULTS: dict[str, bool] = {
    "position_opened": True,
    "position_closed": True,
    "stop_moved": False,  # can be chatty: opt-in
    "order_failed": True,
    "signal_rejected": True,
    "paused_skipped": False,  # a call a paused deployment did not trade: opt-in
}


def wants(settings: dict[str, Any] | None, kind: str) -> bool:
    if kind not in ALERT_DEFAULTS:
        return True
    chosen = ((settings or {}).get("alerts") or {}).get(kind)
    return ALERT_DEFAULTS[kind] if chosen is None else bool(chosen)


async def write_outbox(session: AsyncSession, events: Iterable[Event]) -> None:
    events = list(events)
    await insert_ignore(
        session,
        OutboxMessage,
        [
            {
                "user_id": e.user_id,
                "kind": e.kind,
                "payload": payload,
                "dedupe_key": e.dedupe_key,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
            }
            for e, payload in zip(events, encoded_payloads(events), strict=True)
        ],
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Literal["sent", "retry", "unreachable"]
    retry_after: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    id: int
    user_id: int
    kind: str
    payload: dict[str, Any]
    language: str = "en"  # the user's, for the transport to render in


class Transport(Protocol):
    """A chat app (or the console) that can deliver a message to one of our users."""

    name: str

    async def deliver(self, message: OutgoingMessage) -> Delivery: ...


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transport: Transport,
        concurrency: int = 32,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.concurrency = concurrency

    async def _claim(self, limit: int, now: datetime) -> list[tuple[Any, str, dict[str, Any]]]:
        """Take due messages by committing a lease on them, in one statement (atomic on
        SQLite and PostgreSQL): another dispatcher skips them until the lease runs out, so
        each is sent once; one that dies mid-delivery only delays its messages."""
        due = and_(
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        async with self.sessions() as s, s.begin():
            ids = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
            if s.bind.dialect.name == "postgresql":
                ids = ids.with_for_update(skip_locked=True)
            claimed = (
                await s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(ids.scalar_subquery()), due)
                    .values(next_attempt_at=now + LEASE)
                    .returning(
                        OutboxMessage.id,
                        OutboxMessage.user_id,
                        OutboxMessage.kind,
                        OutboxMessage.payload,
                        OutboxMessage.attempts,
                    )
                )
            ).all()
            if not claimed:
                return []
            users = {
                uid: (language, settings)
                for uid, language, settings in (
                    await s.execute(
                        select(User.id, User.language, User.settings).where(
                            User.id.in_({r.user_id for r in claimed})
                        )
                    )
                ).all()
            }
        out = []
        for r in sorted(claimed, key=lambda r: r.id):
            language, settings = users.get(r.user_id, ("en", {}))
            out.append((r, language or "en", settings or {}))
        return out

    async def deliver_pending(self, limit: int = 200) -> int:
        """Deliver what is due; returns how many were sent. Users are served concurrently
        (a chat app limits each chat, e.g. Telegram 1/s), each user's messages in order."""
        now = utcnow()
        per_user: dict[int, list[tuple[Any, str, dict[str, Any]]]] = {}
        for item in await self._claim(limit, now):
            per_user.setdefault(item[0].user_id, []).append(item)
        gate = asyncio.Semaphore(self.concurrency)

        async def serve(items: list[tuple[Any, str, dict[str, Any]]]) -> int:
            async with gate:
                return sum([await self._deliver_one(*item, now) for item in items])

        return sum(await asyncio.gather(*(serve(items) for items in per_user.values())))

    async def _deliver_one(
        self, row: Any, language: str, settings: dict[str, Any], now: datetime
    ) -> int:
        payload = row.payload
        if settings.get("time_zone"):  # times in the alert as the user reads them
            payload = {**payload, "time_zone": settings["time_zone"]}
        msg = OutgoingMessage(row.id, row.user_id, row.kind, payload, language)
        if not wants(settings, row.kind):
            result = Delivery("sent", error="muted in settings")
        else:
            try:
                result = await self.transport.deliver(msg)
            except Exception as exc:  # a transport bug must not lose the message
                log.exception("transport %s failed on message %s", self.transport.name, row.id)
                result = Delivery("retry", 5.0, type(exc).__name__)
        values: dict[str, Any] = {"attempts": row.attempts + 1}
        if result.status == "sent":
            values |= {"status": OutboxStatus.SENT, "sent_at": now, "error": result.error}
        elif result.status == "unreachable" or row.attempts + 1 >= MAX_ATTEMPTS:
            values |= {"status": OutboxStatus.DEAD, "error": result.error or result.status}
        else:
            backoff = max(result.retry_after, 2.0**row.attempts)
            values |= {"next_attempt_at": now + timedelta(seconds=backoff), "error": result.error}
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values)
            )
        return int(result.status == "sent" and result.error is None)
