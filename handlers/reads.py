"""A connection for the read-only handlers (/positions, /pnl, a position's buttons): no ORM
session, and on PostgreSQL no transaction around the reads.

On PostgreSQL a session's read costs three round trips (BEGIN, the statement, the ROLLBACK
that returns the connection); in autocommit it is the statement alone. Nothing is lost: at
READ COMMITTED (PostgreSQL's default, ours) each statement of a transaction sees its own
snapshot anyway. On SQLite autocommit would cost a hop to the driver's thread to switch the
connection over and back, so the reads keep the default there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handlers.base import Services


@asynccontextmanager
async def read_only(services: Services) -> AsyncIterator[AsyncConnection]:
    bind = services.sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):  # sessions bound otherwise: as a session reads
        async with services.sessions() as s:
            yield await s.connection()
        return
    async with bind.connect() as conn:
        if conn.dialect.name == "postgresql":  # asyncpg: a flag on the connection, no trip
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
