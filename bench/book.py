"""Books for benchmarks and scaling tests, written straight into the real tables: followers
(users, deployments of one or more agents) and open positions as a fan-out leaves them (one
signal per agent, every follower holding it, levels shared by the signal's followers).

Writing them through the engine would take minutes at 100,000 positions; what is written
here is what the engine writes (the same columns, statuses and levels), so the code under
measurement reads the same rows it would in production."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.client_ids import client_order_id
from engine.levels import RiskLevels, RiskParams
from storage.bulk import insert_rows
from storage.db import create_engine, sqlite_url
from storage.enums import OrderPurpose, OrderStatus, PositionStatus, SignalStatus
from storage.models import Agent, Deployment, Identity, Order, Position, Post, Signal, Source, User
from storage.models import agent_sources as agent_sources_table

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
SOURCE = "@hawk"
PARAMS = RiskParams(Decimal("0.03"), Decimal("0.1"), Decimal("0.02"), Decimal("0.01"))
BATCH = 20_000  # rows per seeding statement


@dataclass(frozen=True, slots=True)
class Book:
    users: int
    agents: int

    def deployment_id(self, agent_id: int, user_id: int) -> int:
        return (agent_id - 1) * self.users + user_id


async def _advance_sequences(session: AsyncSession, tables: Sequence[str]) -> None:
    """Rows written with explicit ids: PostgreSQL's id sequences must move past them, or the
    engine's next insert collides (SQLite takes max(rowid) + 1 by itself)."""
    if session.bind.dialect.name != "postgresql":
        return
    for t in tables:
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{t}', 'id'),"
                f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}), false)"
            )
        )


async def _insert(session: AsyncSession, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        await insert_rows(session, model, rows[start : start + BATCH])


async def seed_followers(
    sessions: async_sessionmaker[AsyncSession],
    users: int,
    agents: int = 1,
    chat: bool = False,
) -> Book:
    """`agents` agents listening to one source, `users` users each following every agent
    on the paper venue (one paper account per deployment); with `chat`, each user has a
    console identity (chat id = user id) to talk to the bot with."""
    book = Book(users, agents)
    async with sessions() as s, s.begin():
        await s.execute(Source.__table__.insert(), [{"id": 1, "kind": "x", "handle": SOURCE}])
        await _insert(
            s,
            Agent,
            [
                {
                    "id": a,
                    "name": f"Hawk{a}" if a > 1 else "Hawk",
                    "venue": "HYPERLIQUID",
                    "venue_preference": [],
                    "leverage": Decimal(5),
                    "stop_loss_pct": PARAMS.stop_loss_pct,
                    "take_profit_pct": PARAMS.take_profit_pct,
                    "trailing_activation_pct": PARAMS.trailing_activation_pct,
                    "trailing_distance_pct": PARAMS.trailing_distance_pct,
                    "min_confidence": Decimal("0.3"),
                }
                for a in range(1, agents + 1)
            ],
        )
        await s.execute(
            agent_sources_table.insert(),
            [{"agent_id": a, "source_id": 1} for a in range(1, agents + 1)],
        )
        await _insert(
            s,
            User,
            [{"id": u, "display_name": f"u{u}", "settings": {}} for u in range(1, users + 1)],
        )
        await _insert(
            s,
            Deployment,
            [
                {
                    "id": book.deployment_id(a, u),
                    "user_id": u,
                    "agent_id": a,
                    "collateral_usd": Decimal(100 + u % 50),
                    "leverage": Decimal(3),
                    "account": f"paper:{u}:{a}",
                }
                for a in range(1, agents + 1)
                for u in range(1, users + 1)
            ],
        )
        if chat:
            await _insert(
                s,
                Identity,
                [
                    {"id": u, "user_id": u, "platform": "console", "external_id": str(u)}
                    | {"chat_id": str(u)}
                    for u in range(1, users + 1)
                ],
            )
        await _advance_sequences(s, ["sources", "agents", "users", "deployments", "identities"])
    return book


async def seed_open_positions(
    sessions: async_sessionmaker[AsyncSession],
    book: Book,
    markets: Sequence[str],
    prices: dict[str, Decimal],
    namespace: str = "bench",
) -> dict[int, tuple[str, RiskLevels]]:
    """One filled long per agent (agent a trades markets[(a - 1) % len(markets)]) held by every
    follower: what `book.agents` fan-outs leave. Returns position id -> (market, levels)."""
    opened: dict[int, tuple[str, RiskLevels]] = {}
    async with sessions() as s, s.begin():
        for a in range(1, book.agents + 1):
            market = markets[(a - 1) % len(markets)]
            entry = prices[market]
            levels = RiskLevels.initial("long", entry, PARAMS)
            await _insert(
                s,
                Post,
                [
                    {
                        "id": a,
                        "source_id": 1,
                        "external_id": str(a),
                        "text": f"Long ${market}",
                        "posted_at": NOW,
                        "content_hash": f"h{a}",
                    }
                ],
            )
            await _insert(
                s,
                Signal,
                [
                    {
                        "id": a,
                        "agent_id": a,
                        "post_id": a,
                        "market": market,
                        "side": "long",
                        "confidence": Decimal("0.9"),
                        "status": SignalStatus.EXECUTED,
                        "signal_at": NOW,
                        "reference_price": entry,
                    }
                ],
            )
            orders, positions = [], []
            for u in range(1, book.users + 1):
                did = book.deployment_id(a, u)
                size = Decimal(100 + u % 50) * 3 / entry
                orders.append(
                    {
                        "id": did,
                        "signal_id": a,
                        "deployment_id": did,
                        "purpose": OrderPurpose.OPEN,
                        "client_order_id": client_order_id(namespace, a, did, OrderPurpose.OPEN),
                        "venue": "HYPERLIQUID",
                        "account": f"paper:{u}:{a}",
                        "market": market,
                        "side": "long",
                        "reduce_only": False,
                        "size": size.quantize(Decimal("0.0001")),
                        "leverage": Decimal(3),
                        "collateral_usd": Decimal(100 + u % 50),
                        "reference_price": entry,
                        "status": OrderStatus.FILLED,
                        "fill_price": entry,
                        "filled_size": size.quantize(Decimal("0.0001")),
                        "fee": Decimal("0.01"),
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
                positions.append(
                    {
                        "id": did,
                        "deployment_id": did,
                        "signal_id": a,
                        "open_order_id": did,
                        "venue": "HYPERLIQUID",
                        "account": f"paper:{u}:{a}",
                        "market": market,
                        "side": "long",
                        "size": size.quantize(Decimal("0.0001")),
                        "leverage": Decimal(3),
                        "entry_price": entry,
                        "open_fee": Decimal("0.01"),
                        "stop_price": levels.stop,
                        "take_profit_price": levels.take_profit,
                        "trailing_activation_price": levels.activation,
                        "trailing_distance_pct": levels.distance,
                        "trailing_active": False,
                        "peak_price": entry,
                        "status": PositionStatus.OPEN,
                        "opened_at": NOW,
                        "created_at": NOW,
                    }
                )
                opened[did] = (market, levels)
            await _insert(s, Order, orders)
            await _insert(s, Position, positions)
        await _advance_sequences(s, ["posts", "signals", "orders", "positions"])
    return opened


@asynccontextmanager
async def clone_of(template_url: str) -> AsyncIterator[str]:
    """A throwaway copy of a seeded database: a file copy on SQLite, CREATE DATABASE ...
    TEMPLATE on PostgreSQL (seconds, where seeding 100,000 positions again takes minutes)."""
    url = make_url(template_url)
    if not url.drivername.startswith("postgresql"):
        source = Path(url.database or "")
        with tempfile.TemporaryDirectory(prefix="maxxit-bench-") as tmp:
            target = Path(tmp) / "clone.db"
            shutil.copy(source, target)
            yield sqlite_url(target)
        return
    name = f"maxxit_clone_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as c:
            await c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
