"""The floor of a benchmark: the same rows written into the same tables through the database
driver's fastest path, with no engine around it. SQLite: the driver's `executemany` on
prepared tuples (values already in their stored form: money as text, times as ISO text).
PostgreSQL: asyncpg's binary COPY for inserts, and COPY into a temporary table joined by an
UPDATE ... FROM for updates (one statement for all rows, not one per row)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class Bare:
    def __init__(self, driver: Any, postgresql: bool) -> None:
        self.driver = driver
        self.postgresql = postgresql

    @classmethod
    async def of(cls, conn: AsyncConnection) -> Bare:
        await conn.execute(text("SELECT 1"))  # the transaction begins at the driver too
        raw = await conn.get_raw_connection()
        return cls(raw.driver_connection, conn.dialect.name == "postgresql")

    def money(self, value: Decimal | None) -> Any:
        # the stored form: NUMERIC on PostgreSQL, canonical text on SQLite (storage/types.py)
        if value is None or self.postgresql:
            return value
        return format(value, "f")

    def time(self, value: datetime) -> Any:
        return value if self.postgresql else value.replace(tzinfo=None).isoformat(" ")

    async def fetch(self, sql_sqlite: str, sql_pg: str, *args: Any) -> list[Any]:
        if self.postgresql:
            return list(await self.driver.fetch(sql_pg, *args))
        cursor = await self.driver.execute(sql_sqlite, args)
        rows = await cursor.fetchall()
        await cursor.close()
        return list(rows)

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        if not rows:
            return
        if self.postgresql:
            await self.driver.copy_records_to_table(table, records=rows, columns=list(columns))
            return
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        await self.driver.executemany(sql, rows)

    async def update(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
        """Rows are (id, *values of `columns`)."""
        if not rows:
            return
        if self.postgresql:
            tmp = f"_bare_{table}"
            await self.driver.execute(
                f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS"
                f" SELECT id, {', '.join(columns)} FROM {table} WITH NO DATA"
            )
            await self.driver.copy_records_to_table(tmp, records=rows, columns=["id", *columns])
            sets = ", ".join(f"{c} = {tmp}.{c}" for c in columns)
            await self.driver.execute(
                f"UPDATE {table} SET {sets} FROM {tmp} WHERE {table}.id = {tmp}.id"
            )
            return
        sets = ", ".join(f"{c} = ?" for c in columns)
        await self.driver.executemany(
            f"UPDATE {table} SET {sets} WHERE id = ?", [(*r[1:], r[0]) for r in rows]
        )
