"""Set-based writes the engine's fan-out relies on (one statement for thousands of rows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _table(target: type[DeclarativeBase] | Table) -> Table:
    return target if isinstance(target, Table) else target.__table__  # type: ignore[return-value]


async def insert_ignore(
    session: AsyncSession, target: type[DeclarativeBase] | Table, rows: Sequence[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: a row that a unique key already holds is skipped,
    which is what makes a retried stage harmless."""
    if not rows:
        return
    table = _table(target)
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    await session.execute(ins.on_conflict_do_nothing(), list(rows))


async def update_by_id(
    session: AsyncSession, target: type[DeclarativeBase] | Table, rows: Sequence[dict[str, Any]]
) -> None:
    """One UPDATE executed for many rows, grouped by the set of columns each row changes."""
    table = _table(target)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        cols = tuple(sorted(k for k in r if k != "id"))
        groups.setdefault(cols, []).append({("_id" if k == "id" else k): v for k, v in r.items()})
    for cols, params in groups.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in cols})
        )
        await (await session.connection()).execute(stmt, params)
