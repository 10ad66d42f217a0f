"""Run a scenario through the real engine on a fresh database, offline, and read back what
happened from the database (the source of truth, not the engine's memory)."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.classify.rules import RulesClassifier
from engine.events import Event, decimal_text
from engine.ingest import IncomingPost
from engine.markets import MarketInfo, default_markets
from engine.pipeline import Engine, PostOutcome
from engine.prices import PriceBook, PriceFeed, PriceTick, ReplayPriceFeed
from engine.replay.scenario import MarketSpec, PostSpec, Scenario
from engine.venues.paper import FeeConfig, PaperVenue
from storage.db import create_engine, resolve_url, session_factory, sqlite_url
from storage.enums import DeploymentStatus
from storage.migrate import upgrade
from storage.models import (
    Agent,
    Deployment,
    LedgerEntry,
    Position,
    Post,
    RoutingDecision,
    Signal,
    Source,
    User,
    agent_sources,
)

log = logging.getLogger(__name__)
SOURCE_KIND = "x"


@dataclass(slots=True)
class ReplayResult:
    positions: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    routing: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"positions": self.positions, "ledger": self.ledger, "routing": self.routing}


@dataclass(frozen=True, slots=True)
class Step:
    """One replayed event and what the engine did about it."""

    ts: datetime
    post: PostSpec | None  # None for a price update
    outcome: PostOutcome | None
    events: list[Event]
    user_names: dict[int, str]


StepHook = Callable[[Step], None]


def build_markets(scenario: Scenario) -> dict[str, dict[str, MarketInfo]]:
    defaults = default_markets()
    if scenario.markets is None:
        return defaults
    out: dict[str, dict[str, MarketInfo]] = {}
    for venue, entries in scenario.markets.items():
        listing: dict[str, MarketInfo] = {}
        for e in entries:
            spec = e if isinstance(e, MarketSpec) else MarketSpec(name=e)
            base = defaults[venue].get(spec.name, MarketInfo(spec.name))
            listing[spec.name] = MarketInfo(
                spec.name,
                base.size_decimals if spec.size_decimals is None else spec.size_decimals,
                base.max_leverage if spec.max_leverage is None else spec.max_leverage,
                base.min_notional if spec.min_notional is None else spec.min_notional,
            )
        out[venue] = listing
    return out


@contextlib.asynccontextmanager
async def fresh_database(database_url: str | None) -> AsyncIterator[str]:
    """A new empty database: a temporary SQLite file, or a throwaway PostgreSQL database next
    to the one `DATABASE_URL` names (a replay never touches real data)."""
    if not database_url:
        with tempfile.TemporaryDirectory(prefix="maxxit-replay-") as tmp:
            yield sqlite_url(Path(tmp) / "replay.db")
        return
    url = make_url(resolve_url(database_url, Path(".")))
    if not url.drivername.startswith("postgresql"):
        yield url.render_as_string(hide_password=False)
        return
    name = f"maxxit_replay_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as c:
            await c.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def seed_agents(
    session: AsyncSession, sc: Scenario, creators: dict[str, int] | None = None
) -> dict[str, Agent]:
    """The scenario's sources and agents (with who created them, by user name); by name."""
    creators = creators or {}
    handles = sorted({h for a in sc.agents for h in a.sources})
    sources = {h: Source(kind=SOURCE_KIND, handle=h) for h in handles}
    session.add_all(sources.values())
    agents = {
        a.name: Agent(
            name=a.name,
            creator_user_id=creators.get(a.creator) if a.creator else None,
            venue=a.venue,
            venue_preference=list(a.venue_preference or []),
            leverage=a.risk.leverage,
            stop_loss_pct=a.risk.stop_loss_pct,
            take_profit_pct=a.risk.take_profit_pct,
            trailing_activation_pct=a.risk.trailing_activation_pct,
            trailing_distance_pct=a.risk.trailing_distance_pct,
            min_confidence=a.risk.min_confidence,
            creator_share_pct=a.creator_share_pct,
            source_share_pct=a.source_share_pct,
        )
        for a in sc.agents
    }
    session.add_all(agents.values())
    await session.flush()
    await session.execute(
        agent_sources.insert(),
        [
            {"agent_id": agents[a.name].id, "source_id": sources[h].id}
            for a in sc.agents
            for h in dict.fromkeys(a.sources)
        ],
    )
    return agents


async def _seed(sessions: async_sessionmaker[AsyncSession], sc: Scenario) -> dict[int, str]:
    """Users, sources, agents and deployments of the scenario; returns user id -> name."""
    async with sessions() as s, s.begin():
        users = {u.name: User(display_name=u.name) for u in sc.users}
        s.add_all(users.values())
        await s.flush()
        agents = await seed_agents(s, sc, {name: u.id for name, u in users.items()})
        for u in sc.users:
            for d in u.deployments:
                s.add(
                    Deployment(
                        user_id=users[u.name].id,
                        agent_id=agents[d.agent].id,
                        status=DeploymentStatus.ACTIVE,
                        collateral_usd=d.collateral_usd,
                        leverage=d.leverage,
                        manual_approval=d.manual_approval,
                        mode=d.mode,
                        # the replay fills every account on its paper venue; the account's
                        # prefix is what profit share goes by (engine/profit_share.py)
                        account=f"{d.mode}:{u.name}:{d.agent}",
                    )
                )
    return {u.id: name for name, u in users.items()}


async def _events(sc: Scenario, feed: PriceFeed) -> list[tuple[datetime, int, int, Any]]:
    # equal times: prices (0) before posts (1); then feed / file order
    merged: list[tuple[datetime, int, int, Any]] = [
        (t.ts, 0, i, t) async for i, t in _enumerate(feed.ticks())
    ]
    merged += [(p.posted_at, 1, i, p) for i, p in enumerate(sc.posts)]
    merged.sort(key=lambda e: (e[0], e[1], e[2]))
    return merged


async def _enumerate(items: AsyncIterator[PriceTick]) -> AsyncIterator[tuple[int, PriceTick]]:
    i = 0
    async for item in items:
        yield i, item
        i += 1


async def run_scenario(
    sc: Scenario, database_url: str | None = None, on_step: StepHook | None = None
) -> ReplayResult:
    async with fresh_database(database_url) as url:
        await upgrade(url)
        db = create_engine(url)
        try:
            sessions = session_factory(db)
            names = await _seed(sessions, sc)
            return await _replay(sessions, sc, names, on_step)
        finally:
            await db.dispose()


async def _replay(
    sessions: async_sessionmaker[AsyncSession],
    sc: Scenario,
    names: dict[int, str],
    on_step: StepHook | None,
) -> ReplayResult:
    markets = build_markets(sc)
    prices = PriceBook()
    fees = FeeConfig(sc.fees.taker_bps, sc.fees.slippage_bps)
    venues = {name: PaperVenue(name, listing, prices, fees) for name, listing in markets.items()}
    known = sorted({m for listing in markets.values() for m in listing})
    feed = ReplayPriceFeed([PriceTick(p.ts, p.market, p.price) for p in sc.prices])
    events = await _events(sc, feed)
    now = [events[0][0] if events else datetime.now().astimezone()]
    engine = Engine(
        sessions, venues, prices, RulesClassifier(known_markets=known), clock=lambda: now[0]
    )
    emitted: list[Event] = []
    engine.listeners.append(emitted.append)
    await engine.start()
    for ts, kind, _, item in events:
        now[0] = ts
        outcome = None
        if kind == 0:
            await engine.on_price(item)
        else:
            outcome = await engine.ingest(
                IncomingPost(SOURCE_KIND, item.source, item.id, item.text, item.posted_at)
            )
        if on_step is not None and (outcome is not None or emitted):
            on_step(Step(ts, item if kind else None, outcome, list(emitted), names))
        emitted.clear()
    still_open = await engine.open_position_ids()
    if still_open:
        await engine.close_positions(dict.fromkeys(still_open, "end_of_replay"))
        if on_step is not None:
            on_step(Step(now[0], None, None, list(emitted), names))
    return await collect(sessions)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


async def collect(sessions: async_sessionmaker[AsyncSession]) -> ReplayResult:
    out = ReplayResult()
    async with sessions() as s:
        rows = await s.execute(
            select(Position, Agent.name, User.display_name)
            .join(Deployment, Deployment.id == Position.deployment_id)
            .join(Agent, Agent.id == Deployment.agent_id)
            .join(User, User.id == Deployment.user_id)
            .order_by(Position.opened_at, Position.id)
        )
        for p, agent, user in rows:
            fees = p.open_fee + (p.close_fee or 0)
            out.positions.append(
                {
                    "id": p.id,
                    "agent": agent,
                    "user": user,
                    "market": p.market,
                    "side": p.side,
                    "venue": p.venue,
                    "entry_price": _s(p.entry_price),
                    "exit_price": _s(p.exit_price),
                    "size": _s(p.size),
                    "leverage": _s(p.leverage),
                    "close_reason": p.close_reason,
                    "fees": _s(fees),
                    "realized_pnl": _s(p.realized_pnl),
                    "opened_at": p.opened_at.isoformat(),
                    "closed_at": p.closed_at.isoformat() if p.closed_at else None,
                }
            )
        for e in (await s.execute(select(LedgerEntry).order_by(LedgerEntry.id))).scalars():
            out.ledger.append(
                {
                    "kind": e.kind,
                    "beneficiary": e.beneficiary,
                    "amount": _s(e.amount),
                    "position_id": e.position_id,
                }
            )
        routed = await s.execute(
            select(Signal, Agent.name, Post.external_id, RoutingDecision)
            .join(Agent, Agent.id == Signal.agent_id)
            .join(Post, Post.id == Signal.post_id)
            .join(RoutingDecision, RoutingDecision.signal_id == Signal.id)
            .order_by(Signal.id)
        )
        for sig, agent, post_id, d in routed:
            out.routing.append(
                {
                    "signal": sig.id,
                    "agent": agent,
                    "post": post_id,
                    "market": sig.market,
                    "side": sig.side,
                    "venue": d.venue,
                    "reason": d.reason,
                }
            )
    return out
