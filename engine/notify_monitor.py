"""The trade monitors' rows (storage/models/monitor.py): turned on and off by /monitor, and
claimed by one editor at a time. Replicas share the table: a guarded UPDATE gives each
monitor to the replica that holds its lease (or to anyone once the lease lapsed), so a chat's
message is edited by one process only, and a restart finds the message id where it left it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import TradeMonitor, User


@dataclass(frozen=True, slots=True)
class MonitorRow:
    id: int
    user_id: int
    language: str
    chat_id: str
    message_id: str | None
    text: str
    edited_at: datetime | None
    stopping: bool


async def _row(s: AsyncSession, user_id: int, platform: str) -> TradeMonitor | None:
    found = await s.execute(
        select(TradeMonitor).where(
            TradeMonitor.user_id == user_id, TradeMonitor.platform == platform
        )
    )
    return found.scalar_one_or_none()


async def turn_on(s: AsyncSession, user_id: int, platform: str, chat_id: str) -> bool:
    """False when it is already on (a stopping one is kept going instead)."""
    row = await _row(s, user_id, platform)
    if row is not None:
        was_on = not row.stopping
        row.stopping = False
        return not was_on
    try:
        async with s.begin_nested():
            s.add(TradeMonitor(user_id=user_id, platform=platform, chat_id=chat_id))
    except IntegrityError:  # the same /monitor twice at once: one row
        return False
    return True


async def turn_off(s: AsyncSession, user_id: int, platform: str) -> bool:
    """False when it was not on. A sent message is unpinned by its editor, then forgotten."""
    row = await _row(s, user_id, platform)
    if row is None or row.stopping:
        return False
    if row.message_id is None:
        await s.delete(row)
    else:
        row.stopping = True
    return True


async def is_on(s: AsyncSession, user_id: int, platform: str) -> bool:
    row = await _row(s, user_id, platform)
    return row is not None and not row.stopping


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    platform: str,
    editor: str,
    now: datetime,
    lease: timedelta,
) -> list[MonitorRow]:
    """This replica's monitors: those it holds (renewed), unheld ones and lapsed ones."""
    async with sessions() as s, s.begin():
        await s.execute(
            update(TradeMonitor)
            .where(
                TradeMonitor.platform == platform,
                or_(
                    TradeMonitor.editor.is_(None),
                    TradeMonitor.editor == editor,
                    TradeMonitor.lease_until < now,
                ),
            )
            .values(editor=editor, lease_until=now + lease)
        )
        rows = await s.execute(
            select(TradeMonitor, User.language)
            .join(User, User.id == TradeMonitor.user_id)
            .where(TradeMonitor.platform == platform, TradeMonitor.editor == editor)
            .order_by(TradeMonitor.id)
        )
        return [
            MonitorRow(
                m.id, m.user_id, language, m.chat_id, m.message_id, m.text, m.edited_at, m.stopping
            )
            for m, language in rows
        ]


async def shown(
    sessions: async_sessionmaker[AsyncSession],
    monitor_id: int,
    text: str,
    now: datetime,
    message_id: str | None = None,
) -> None:
    values: dict[str, object] = {"text": text, "edited_at": now}
    if message_id is not None:
        values["message_id"] = message_id
    async with sessions() as s, s.begin():
        await s.execute(update(TradeMonitor).where(TradeMonitor.id == monitor_id).values(values))


async def forget(sessions: async_sessionmaker[AsyncSession], monitor_id: int) -> None:
    async with sessions() as s, s.begin():
        await s.execute(delete(TradeMonitor).where(TradeMonitor.id == monitor_id))
