"""Database fixtures: a migrated SQLite file per test by default; PostgreSQL when
MAXXIT_TEST_DATABASE_URL names one (CI runs the suite once each way)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from storage.db import create_engine, session_factory, sqlite_url
from storage.migrate import upgrade_sync
from storage.models import Base
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.peers.ostium.chain import find_anvil
from tests.peers.ostium.peer import OstiumPeer

PG_URL = os.environ.get("MAXXIT_TEST_DATABASE_URL") or None
# as bot/telegram.py does: PTB's timedelta time periods, without a deprecation warning
os.environ.setdefault("PTB_TIMEDELTA", "true")


def _pg_reachable(url: str) -> str | None:
    async def probe() -> None:
        eng = create_engine(url)
        try:
            async with eng.connect() as c:
                await c.execute(text("select 1"))
        finally:
            await eng.dispose()

    try:
        asyncio.run(probe())
    except Exception as exc:
        return str(exc)
    return None


def refuse_non_test_database(url: str) -> None:
    """The suite drops the public schema: only of a database named like a test one (test,
    test_ux, tests...), never of one that may hold real data, whatever the url says."""
    name = make_url(url).database or ""
    if not name.lower().startswith("test"):
        raise pytest.UsageError(
            f"MAXXIT_TEST_DATABASE_URL names the database {name!r}: the tests drop its schema, "
            "so they run only on a database whose name starts with 'test'"
        )


async def _reset_schema(url: str) -> None:
    refuse_non_test_database(url)
    eng = create_engine(url)
    try:
        async with eng.begin() as c:
            await c.execute(text("DROP SCHEMA public CASCADE"))
            await c.execute(text("CREATE SCHEMA public"))
    finally:
        await eng.dispose()


@pytest.fixture(scope="session")
def database_backend(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated template: the SQLite file to copy, or the PostgreSQL url."""
    if PG_URL:
        problem = _pg_reachable(PG_URL)
        if problem:
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL at {PG_URL} is unreachable on CI: {problem}")
            pytest.skip(f"PostgreSQL unreachable: {problem}")
        asyncio.run(_reset_schema(PG_URL))  # a test database: start from nothing
        upgrade_sync(PG_URL)
        return PG_URL
    template = tmp_path_factory.mktemp("db") / "template.db"
    upgrade_sync(sqlite_url(template))
    return str(template)


async def _tables_a_test_has_written(conn: AsyncConnection) -> set[str]:
    """The tables holding rows or whose id sequence has moved: truncating only these costs a
    few ms where all 41 cost 60-200 ms, a third of the PostgreSQL suite's time."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    holding = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in tables
    )
    # pg_sequence_last_value is NULL until a sequence is read after its last restart (and
    # fails on a table: CASE keeps the planner from calling it before the relkind test)
    moved = (
        "SELECT t.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
        "AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "JOIN pg_class t ON t.oid = d.refobjid "
        "WHERE CASE WHEN s.relkind = 'S' THEN pg_sequence_last_value(s.oid) END IS NOT NULL"
    )
    rows = (await conn.execute(text(f"{holding} UNION {moved}"))).scalars().all()
    return set(rows) & set(tables)


@pytest.fixture
async def db_url(database_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if PG_URL:
        eng = create_engine(PG_URL)
        async with eng.begin() as c:
            used = await _tables_a_test_has_written(c)
            if used:
                names = ", ".join(f'"{name}"' for name in sorted(used))
                await c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        await eng.dispose()
        yield PG_URL
        return
    path = tmp_path / "maxxit.db"
    shutil.copy(database_backend, path)
    yield sqlite_url(path)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    eng = create_engine(db_url)
    yield session_factory(eng)
    await eng.dispose()


@pytest.fixture
async def peer() -> AsyncIterator[HyperliquidPeer]:
    """The Hyperliquid stand-in with ETH at 2000 and BTC at 90000 (a test module that needs
    other prices defines its own `peer`)."""
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000"}) as p:
        yield p


@pytest.fixture
async def ostium() -> AsyncIterator[OstiumPeer]:
    """The local Ostium (anvil + mock contracts + subgraph + price API + keeper). anvil comes
    from npm (.ci/run installs it); without it the Ostium tests skip, except on CI."""
    if find_anvil() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("anvil is not installed on CI (.ci/run installs it)")
        pytest.skip("anvil not installed: run .ci/run once, or set MAXXIT_ANVIL")
    async with OstiumPeer() as p:
        yield p
