"""`column IN (ids)` for the long id lists a tick reads and updates by (thousands of ids).

SQLAlchemy renders an IN list as one bind parameter per value, at every execution: on
PostgreSQL that is thousands of `$n` to render, to encode one by one, and a distinct prepared
statement for every list length. There the list is one array parameter instead
(`column = ANY($1)`: the same rows, NULLs included, and false for an empty list, as IN); on
SQLite, which has no arrays, it stays an IN list.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement


def among(session: AsyncSession, column: Any, ids: Collection[Any]) -> ColumnElement[bool]:
    """`column IN ids`, as one array parameter on PostgreSQL."""
    if session.get_bind().dialect.name != "postgresql":
        # one expanding parameter: the same IN list, without coercing each value into an
        # element of the statement (0.33 against 0.05 ms to build for 1,000 ids)
        listed = bindparam(None, list(ids), type_=column.type, expanding=True)
        return column.in_(listed)  # type: ignore[no-any-return]
    array = bindparam(None, list(ids), type_=ARRAY(column.type))
    return column == any_(array)  # type: ignore[no-any-return]
