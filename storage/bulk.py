"""Set-based writes the engine's fan-out relies on (one statement for thousands of rows).

`executemany` compiles a statement once and hands the driver plain tuples, each value run
through its column type's own bind processor (exact money, UTC datetimes, JSON), so a
10,000-row write costs the driver's loop, not ten thousand trips through the ORM.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert, Update

Target = type[DeclarativeBase] | Table


def _table(target: Target) -> Table:
    return target if isinstance(target, Table) else target.__table__  # type: ignore[return-value]


def _with_defaults(table: Table, rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict]]:
    """Column names of the rows plus those with Python-side defaults, filled in."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    # a column that is NULL in every row and has no default can be left out of the statement
    nullable = {c.key for c in table.columns if c.default is None and c.server_default is None}
    keys = [k for k in keys if k not in nullable or any(r.get(k) is not None for r in rows)]
    extra = {}
    for col in table.columns:
        d = col.default
        if col.key not in keys and d is not None and (d.is_scalar or d.is_callable):
            extra[col.key] = d
    if not extra:
        return keys, list(rows)
    out = []
    for r in rows:
        full = dict(r)
        for k, d in extra.items():
            full[k] = d.arg(None) if d.is_callable else d.arg
        out.append(full)
    return keys + list(extra), out


async def executemany(session: AsyncSession, stmt: Insert | Update, rows: Sequence[dict]) -> None:
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect)
    names = compiled.positiontup
    if names is None or "POSTCOMPILE" in compiled.string:
        # a named paramstyle, or an expanding IN list: let SQLAlchemy do it
        await conn.execute(stmt, list(rows))
        return
    supplied = set().union(*rows)
    fixed = {}
    for n in names:
        if n not in supplied:  # a value written into the statement itself
            bind = compiled.binds[n]
            if bind.required:
                raise KeyError(f"no value for bind parameter {n!r}")
            fixed[n] = bind.effective_value
    if fixed or any(len(r) != len(supplied) for r in rows):
        # rows must all carry the same names (a name only some rows carry is refused, as
        # SQLAlchemy's executemany refuses it); the statement's own values fill the rest
        missing = [n for n in names if n not in fixed and any(n not in r for r in rows)]
        if missing:
            raise KeyError(f"rows differ in keys: {missing}")
        rows = [{**fixed, **r} for r in rows]
    # column by column: one comprehension per column runs its bind processor over every row
    # (a tuple per row built by zip), instead of a generator per row; several times faster
    columns = []
    for n in names:
        proc = compiled.binds[n].type._cached_bind_processor(dialect)
        values = [r[n] for r in rows]
        columns.append([proc(v) for v in values] if proc else values)
    await conn.exec_driver_sql(compiled.string, list(zip(*columns, strict=True)))


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


async def insert_rows(
    session: AsyncSession, target: Target, rows: Sequence[dict[str, Any]], ignore: bool = False
) -> None:
    """INSERT many rows; with `ignore`, ON CONFLICT DO NOTHING: a row a unique key already
    holds is skipped, which is what makes a retried stage harmless."""
    if not rows:
        return
    table = _table(target)
    keys, full = _with_defaults(table, rows)
    stmt = _insert(session, table).values({k: bindparam(k) for k in keys})
    if ignore:
        stmt = stmt.on_conflict_do_nothing()
    await executemany(session, stmt, full)


async def insert_ignore(session: AsyncSession, target: Target, rows: Sequence[dict]) -> None:
    await insert_rows(session, target, rows, ignore=True)


async def update_by_id(
    session: AsyncSession, target: Target, rows: Sequence[dict], only_if_status: str | None = None
) -> None:
    """One UPDATE executed for many rows, grouped by the set of columns each row changes;
    with `only_if_status`, a row no longer in that status is left as it is."""
    table = _table(target)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        cols = tuple(sorted(k for k in r if k != "id"))
        groups.setdefault(cols, []).append({("_id" if k == "id" else k): v for k, v in r.items()})
    for cols, params in groups.items():
        stmt = update(table).where(table.c.id == bindparam("_id"))
        if only_if_status is not None:
            stmt = stmt.where(table.c.status == only_if_status)
        await executemany(session, stmt.values({c: bindparam(c) for c in cols}), params)


async def settle_rows(
    session: AsyncSession,
    target: Target,
    rows: Sequence[dict],
    from_status: str,
    mark_column: str,
    chunk: int = 5000,
) -> list[int]:
    """Compare-and-set for many rows with values of their own: each row still in
    `from_status` takes its values and a mark unique to this call (in `mark_column`); the ids
    carrying the mark are the rows this call moved. Of two recorders of the same fact, exactly
    one moves each row. One executemany and one read, not an UPDATE ... RETURNING per row."""
    if not rows:
        return []
    table = _table(target)
    mark = secrets.token_hex(12)
    await update_by_id(session, table, [{**r, mark_column: mark} for r in rows], from_status)
    ids = sorted({r["id"] for r in rows})
    moved: list[int] = []
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        result = await session.execute(
            select(table.c.id).where(table.c.id.in_(part), table.c[mark_column] == mark)
        )
        moved += [r[0] for r in result]
    return moved


async def transition(
    session: AsyncSession,
    target: Target,
    ids: Sequence[int],
    from_status: str,
    values: dict[str, Any],
    chunk: int = 5000,
) -> list[int]:
    """Compare-and-set: move the rows among `ids` still in `from_status` to `values`; returns
    the ids this call moved. Of two recorders of the same fact, exactly one sees each row
    (PostgreSQL re-checks the status of a row it had to wait for before updating it)."""
    table = _table(target)
    moved: list[int] = []
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), chunk):
        part = ordered[start : start + chunk]
        rows = await session.execute(
            update(table)
            .where(table.c.id.in_(part), table.c.status == from_status)
            .values(values)
            .returning(table.c.id)
        )
        moved += [r[0] for r in rows]
    return moved
