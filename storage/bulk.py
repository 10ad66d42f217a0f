"""Set-based writes the engine's fan-out relies on (one statement for thousands of rows).

`executemany` compiles a statement once and hands the driver plain tuples, each value run
through its column type's own bind processor (exact money, UTC datetimes, JSON), so a
10,000-row write costs the driver's loop, not ten thousand trips through the ORM.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert, Update

from storage.bulk_copy import COPY_MIN_ROWS, Columns, bind_column, copy_insert, copy_update
from storage.ids import among

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


def _columns(table: Table, rows: Sequence[dict[str, Any]]) -> Columns | None:
    """The rows column by column, with the columns that have Python-side defaults filled in
    (a callable default is called once: one statement, one `now`), and the columns NULL in
    every row without a default left out. None when the rows differ in keys."""
    first = rows[0].keys()
    # the same number of keys in every row, and each of the first row's in every row: the
    # same keys (checked this way at C speed; comparing key views row by row was 5% of a
    # fan-out's Python)
    if len(set(map(len, rows))) != 1:
        return None
    try:
        out: Columns = {k: list(map(itemgetter(k), rows)) for k in first}
    except KeyError:
        return None
    n = len(rows)
    for col in table.columns:
        d = col.default
        if col.key in out:
            # `is not None` per value, stopping at the first: count(None) compared every
            # value with None through its type's __eq__
            if d is None and col.server_default is None and _all_none(out[col.key]):
                del out[col.key]
        elif d is not None and (d.is_scalar or d.is_callable):
            out[col.key] = [d.arg(None) if d.is_callable else d.arg] * n
    return out


def _all_none(values: list[Any]) -> bool:
    return not any(v is not None for v in values)


def _as_rows(columns: Columns) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, vals, strict=True)) for vals in zip(*columns.values(), strict=True)]


# compiled bulk statements by (kind, table, columns, dialect): a fan-out writes the same few
# shapes in every batch, and compiling one is a millisecond of Python each time
_COMPILED: dict[tuple[Any, ...], Any] = {}


async def execute_columns(
    conn: AsyncConnection,
    stmt: Insert | Update,
    columns: Columns,
    shape: tuple[Any, ...] | None = None,
) -> None:
    """Execute `stmt` once per row of `columns` (name -> values), as one executemany of
    tuples bound column by column. `shape`: what identifies the statement among those this
    module builds (its compiled form is then reused)."""
    n = len(next(iter(columns.values()), []))
    if not n:
        return
    dialect = conn.dialect
    key = None if shape is None else (*shape, dialect.name)
    compiled = _COMPILED.get(key) if key is not None else None
    if compiled is None:
        compiled = stmt.compile(dialect=dialect)
        if key is not None:
            if len(_COMPILED) >= 256:
                _COMPILED.clear()
            _COMPILED[key] = compiled
    names = compiled.positiontup
    if names is None or "POSTCOMPILE" in compiled.string:
        # a named paramstyle, or an expanding IN list: let SQLAlchemy do it
        await conn.execute(stmt, _as_rows(columns))
        return
    bound = []
    for name in names:
        values = columns.get(name)
        if values is None:  # a value written into the statement itself
            bind = compiled.binds[name]
            if bind.required:
                raise KeyError(f"no value for bind parameter {name!r}")
            values = [bind.effective_value] * n
        bound.append(bind_column(compiled.binds[name].type, dialect, values))
    await conn.exec_driver_sql(compiled.string, list(zip(*bound, strict=True)))


async def executemany(session: AsyncSession, stmt: Insert | Update, rows: Sequence[dict]) -> None:
    if not rows:
        return
    names = set().union(*rows)
    if any(len(r) != len(names) for r in rows):
        # rows must all carry the same names (a name only some rows carry is refused, as
        # SQLAlchemy's executemany refuses it)
        missing = sorted(n for n in names if any(n not in r for r in rows))
        raise KeyError(f"rows differ in keys: {missing}")
    columns = {n: list(map(itemgetter(n), rows)) for n in names}
    await execute_columns(await session.connection(), stmt, columns)


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


async def insert_rows(
    session: AsyncSession,
    target: Target,
    rows: Sequence[dict[str, Any]],
    ignore: bool = False,
    returning: str | None = None,
) -> dict[Any, int] | None:
    """INSERT many rows; with `ignore`, ON CONFLICT DO NOTHING: a row a unique key already
    holds is skipped, which is what makes a retried stage harmless. On PostgreSQL a large
    write goes through COPY (storage/bulk_copy.py), with the same result.

    `returning` (a unique column): where the path can tell it in the same statement (a large
    write on PostgreSQL), the id of each row written, by its value there; else None, and the
    caller reads the ids back. A read-back costs a second statement, and PostgreSQL planned
    some as a scan of the whole table (34 ms for 1,000 client order ids among 100,000)."""
    if not rows:
        return None
    table = _table(target)
    columns = _columns(table, rows)
    if columns is None:  # rows that differ in keys: each row's own names
        keys, full = _with_defaults(table, rows)
        missing = [k for k in keys if any(k not in r for r in full)]
        if missing:  # a name only some rows carry is refused, as SQLAlchemy refuses it
            raise KeyError(f"rows differ in keys: {missing}")
        columns = {k: [r[k] for r in full] for k in keys}
    conn = await session.connection()
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return await copy_insert(conn, table, columns, ignore, returning)
    stmt = _insert(session, table).values({k: bindparam(k) for k in columns})
    if ignore:
        stmt = stmt.on_conflict_do_nothing()
    await execute_columns(conn, stmt, columns, ("insert", table, tuple(columns), ignore))
    return None


async def insert_ignore(
    session: AsyncSession, target: Target, rows: Sequence[dict], returning: str | None = None
) -> dict[Any, int] | None:
    return await insert_rows(session, target, rows, ignore=True, returning=returning)


def _groups(rows: Sequence[dict]) -> list[Columns]:
    """Rows grouped by the set of columns each changes, column by column ("id" included)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(sorted(r)), []).append(r)
    return [{c: list(map(itemgetter(c), group)) for c in cols} for cols, group in groups.items()]


async def _update_group(
    session: AsyncSession, table: Table, columns: Columns, only_if_status: str | None
) -> list[int] | None:
    """One UPDATE for every row of the group; the ids it moved when the path tells them
    (COPY on PostgreSQL), else None."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql" and len(columns["id"]) >= COPY_MIN_ROWS:
        return await copy_update(conn, table, columns, only_if_status)
    stmt = update(table).where(table.c.id == bindparam("_id"))
    if only_if_status is not None:
        stmt = stmt.where(table.c.status == only_if_status)
    values = {c: bindparam(c) for c in columns if c != "id"}
    await execute_columns(
        conn,
        stmt.values(values),
        {("_id" if c == "id" else c): v for c, v in columns.items()},
        ("update", table, tuple(columns), only_if_status),
    )
    return None


async def update_by_id(
    session: AsyncSession, target: Target, rows: Sequence[dict], only_if_status: str | None = None
) -> None:
    """One UPDATE executed for many rows, grouped by the set of columns each row changes;
    with `only_if_status`, a row no longer in that status is left as it is."""
    table = _table(target)
    for columns in _groups(rows):
        await _update_group(session, table, columns, only_if_status)


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
    one moves each row. One executemany and one read, not an UPDATE ... RETURNING per row
    (on PostgreSQL, a large group is one UPDATE ... FROM a COPY that returns the ids)."""
    if not rows:
        return []
    table = _table(target)
    mark = secrets.token_hex(12)
    moved: list[int] = []
    unknown: list[int] = []
    for columns in _groups([{**r, mark_column: mark} for r in rows]):
        ids = await _update_group(session, table, columns, from_status)
        if ids is None:
            unknown += columns["id"]
        else:
            moved += ids
    unknown = sorted(set(unknown))
    for start in range(0, len(unknown), chunk):
        part = unknown[start : start + chunk]
        result = await session.execute(
            select(table.c.id).where(among(session, table.c.id, part), table.c[mark_column] == mark)
        )
        moved += [r[0] for r in result]
    return sorted(set(moved))


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
            .where(among(session, table.c.id, part), table.c.status == from_status)
            .values(values)
            .returning(table.c.id)
        )
        moved += [r[0] for r in rows]
    return moved


async def transition_rows(
    session: AsyncSession,
    target: Target,
    ids: Sequence[int],
    from_status: str,
    values: dict[str, Any],
    own: Mapping[int, dict[str, Any]],
) -> list[int]:
    """`transition`, where each row of `own` (id -> values) also takes values of its own:
    the ids moved. On PostgreSQL, when every group of rows is large enough for COPY, one
    guarded UPDATE ... FROM per group writes both and returns the ids it moved, so each row
    is written once, not twice; otherwise the guarded transition first, then the own values
    of the rows it moved."""
    table = _table(target)
    if (await session.connection()).dialect.name == "postgresql":
        groups = _groups([{"id": i, **values, **own.get(i, {})} for i in sorted(set(ids))])
        if groups and all(len(g["id"]) >= COPY_MIN_ROWS for g in groups):
            moved: list[int] = []
            for columns in groups:
                moved += await copy_update(await session.connection(), table, columns, from_status)
            return sorted(moved)
    moved = await transition(session, target, ids, from_status, values)
    await update_by_id(session, target, [{"id": i, **own[i]} for i in moved if i in own])
    return moved
