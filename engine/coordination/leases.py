"""Lease rows: a name held by one replica until a time, renewed by its holder, taken by anyone
once it lapses. Every call is one short transaction; none is held across a network call."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Lease


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    name = session.bind.dialect.name if session.bind else "sqlite"
    return (postgresql if name == "postgresql" else sqlite).insert(Lease)


async def acquire(
    sessions: async_sessionmaker[AsyncSession],
    names: Iterable[str],
    holder: str,
    ttl: timedelta,
    now: datetime,
) -> set[str]:
    """Take or renew each name that is free, lapsed or already ours; returns those held now."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    until = now + ttl
    async with sessions() as s, s.begin():
        # renew ours and take lapsed ones; a live lease of another replica is left alone
        taken = (
            await s.execute(
                update(Lease)
                .where(
                    Lease.name.in_(wanted),
                    (Lease.holder == holder) | (Lease.expires_at <= now),
                )
                .values(holder=holder, expires_at=until)
                .returning(Lease.name)
            )
        ).scalars()
        held = set(taken)
        fresh = [n for n in wanted if n not in held]
        if fresh:
            stmt = (
                _insert(s)
                .values([{"name": n, "holder": holder, "expires_at": until, "acquired_at": now}
                         for n in fresh])
                .on_conflict_do_nothing()
                .returning(Lease.name)
            )  # fmt: skip
            held |= set((await s.execute(stmt)).scalars())
    return held


async def release(
    sessions: async_sessionmaker[AsyncSession], names: Iterable[str], holder: str
) -> None:
    wanted = list(names)
    if not wanted:
        return
    async with sessions() as s, s.begin():
        await s.execute(delete(Lease).where(Lease.name.in_(wanted), Lease.holder == holder))


async def live_holders(
    sessions: async_sessionmaker[AsyncSession], prefix: str, now: datetime
) -> dict[str, str]:
    """name -> holder of the unexpired leases whose name starts with `prefix`."""
    async with sessions() as s:
        rows = await s.execute(
            select(Lease.name, Lease.holder).where(
                Lease.name.startswith(prefix), Lease.expires_at > now
            )
        )
        return dict(rows.all())
