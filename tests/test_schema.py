"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
and money survives a round trip exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from storage.db import create_engine
from storage.models import Base, User
from storage.models.agents import Agent


async def test_migrations_match_the_models(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_money_round_trips_exactly_and_rounds_like_postgresql(sessions) -> None:
    async with sessions() as s, s.begin():
        s.add(User(display_name="u"))
        s.add(
            Agent(
                name="a",
                venue="MULTI",
                stop_loss_pct=Decimal("0.000000000000000001"),
                leverage=Decimal("12345678901234567890.123456789012345678"),
                take_profit_pct=Decimal("0.0000000000000000005"),
            )
        )
    async with sessions() as s:
        a = (await s.execute(select(Agent))).scalar_one()
    assert a.stop_loss_pct == Decimal("1E-18")
    assert a.leverage == Decimal("12345678901234567890.123456789012345678")
    assert a.take_profit_pct == Decimal("1E-18")  # half away from zero, as NUMERIC does


async def test_floats_are_refused_as_money(sessions) -> None:
    with pytest.raises(Exception, match="never float"):
        async with sessions() as s, s.begin():
            s.add(Agent(name="f", venue="MULTI", stop_loss_pct=0.1))


async def test_large_amounts_keep_all_38_digits(sessions) -> None:
    big = Decimal("12345678901234567890.1234567890123456789")  # 19 decimals: rounded
    async with sessions() as s, s.begin():
        s.add(Agent(name="big", venue="MULTI", stop_loss_pct=Decimal("0.1"), leverage=big))
    async with sessions() as s:
        a = (await s.execute(select(Agent))).scalar_one()
    assert a.leverage == Decimal("12345678901234567890.123456789012345679")


async def test_bulk_writes_use_statement_values_and_refuse_ragged_rows(sessions) -> None:
    from sqlalchemy import bindparam
    from sqlalchemy import update as sa_update

    from storage.bulk import executemany, insert_rows

    async with sessions() as s, s.begin():
        await insert_rows(s, User, [{"display_name": "a"}, {"display_name": "b"}])
        t = User.__table__
        await executemany(
            s,
            sa_update(t).where(t.c.display_name == bindparam("who")).values(language="es"),
            [{"who": "a"}],
        )
        with pytest.raises(KeyError, match="rows differ"):
            await insert_rows(
                s, User, [{"display_name": "c", "language": "ru"}, {"display_name": "d"}]
            )
    async with sessions() as s:
        rows = (await s.execute(select(User.display_name, User.language).order_by(User.id))).all()
    assert rows == [("a", "es"), ("b", "en")]


def test_upgrading_a_database_that_has_data_keeps_it(tmp_path) -> None:
    """Migrations after the first run on live databases: with rows referencing agents and
    orders (foreign keys on), every later revision must apply and keep the data."""
    import sqlite3

    from storage.db import sqlite_url
    from storage.migrate import upgrade_sync

    path = tmp_path / "old.db"
    upgrade_sync(sqlite_url(path), "0002")
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    now = "2026-01-01 00:00:00"
    db.execute(
        "insert into users (id, display_name, language, settings, created_at) "
        "values (1, 'u', 'en', '{}', ?)", (now,)
    )  # fmt: skip
    db.execute(
        "insert into agents (id, name, venue, venue_preference, status, leverage, stop_loss_pct, "
        "min_confidence, max_slippage_bps, creator_share_pct, source_share_pct, created_at) "
        "values (1, 'A', 'HYPERLIQUID', '[]', 'active', '3', '0.03', '0.5', '50', '0.1', '0.1', ?)",
        (now,),
    )
    db.execute(
        "insert into deployments (id, user_id, agent_id, mode, status, collateral_usd, leverage, "
        "manual_approval, account, created_at) "
        "values (1, 1, 1, 'paper', 'active', '100', '2', 0, 'paper:1', ?)", (now,)
    )  # fmt: skip
    db.commit()
    db.close()
    upgrade_sync(sqlite_url(path), "head")
    db = sqlite3.connect(path)
    assert db.execute("select name, isolated_margin from agents").fetchall() == [("A", 0)]
    assert db.execute("select account from deployments").fetchall() == [("paper:1",)]
    db.close()
