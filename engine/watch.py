"""Which open positions this process watches: those of the markets it owns (all of them for a
single process; a fair share of market shards for each replica, engine/coordination). Keeps the
monitor's index in step with the database as positions open and close here or elsewhere and
as shards move between replicas."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.checkpoint import save_trailing_starts
from engine.coordination.ownership import Ownership
from engine.levels import RiskLevels
from engine.monitor import PositionIndex
from engine.venues.base import Venue
from storage.enums import PositionStatus
from storage.models import Position

log = logging.getLogger(__name__)


# what the monitor and the paper books need of an open position: columns, not ORM objects
# (100,000 of those took seconds to build and kilobytes each to hold); amounts as their text,
# which hashes fast, so equal amounts become one shared Decimal (`_Amounts`)
def _text(column: str) -> Any:
    return cast(getattr(Position, column), String).label(column)


LEVEL_COLUMNS = (
    "entry_price",
    "stop_price",
    "take_profit_price",
    "trailing_activation_price",
    "trailing_distance_pct",
    "peak_price",
)
# read by position (a Row's attribute costs about ten times its index): id, market, venue,
# account, size, leverage, then the levels, one slice of the row (`LEVELS`: the memo's key)
WATCH_COLUMNS = (
    Position.id,
    Position.market,
    Position.venue,
    Position.account,
    _text("size"),
    _text("leverage"),
    Position.side,
    *(_text(c) for c in LEVEL_COLUMNS),
    Position.trailing_active,
)
LEVELS = slice(6, 14)
# ids per statement (PostgreSQL takes at most 32,767 bind parameters)
CHUNK = 5000
LOAD_PAGE = 10_000  # open positions read per statement at start


class _Amounts(dict[str | None, Decimal | None]):
    """Stored amount text -> one shared Decimal: the followers of a signal share entry, stop
    and targets, so 100,000 positions hold a few thousand Decimals, not 800,000."""

    def __missing__(self, text: str | None) -> Decimal | None:
        value = None if text is None else Decimal(text)
        self[text] = value
        return value


class _Names(dict[str, str]):
    def __missing__(self, name: str) -> str:
        self[name] = name
        return name


class _LevelsMemo(dict[tuple[Any, ...], RiskLevels]):
    """Equal stored levels -> one RiskLevels (the index only reads them when adding)."""

    def __init__(self) -> None:
        super().__init__()
        self.amounts = _Amounts()
        self.names = _Names()  # one string per market name, not one per row

    def of(self, row: Any) -> RiskLevels:
        key = row[LEVELS]  # side, entry, stop, take profit, activation, distance, peak, active
        levels = self.get(key)
        if levels is None:
            a = self.amounts
            side, entry, stop, tp, activation, distance, peak, active = key
            levels = self[key] = RiskLevels(
                side,
                a[entry],  # type: ignore[arg-type]
                a[stop],  # type: ignore[arg-type]
                a[tp],
                a[activation],
                a[distance],
                a[peak],  # type: ignore[arg-type]
                bool(active),
            )
        return levels


class Watch:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        index: PositionIndex,
        ownership: Ownership,
        venues: Mapping[str, Venue],
    ) -> None:
        self.sessions = sessions
        self.index = index
        self.ownership = ownership
        self.venues = venues
        self.watched: set[int] = set()  # position ids
        # `load_all` done: until then a replica's sync would read (and add) again every open
        # position start-up is loading, and a shutdown would wait for it (seconds on 100,000)
        self.loaded = False

    def __len__(self) -> int:
        return len(self.watched)

    def _add_many(self, positions: list[tuple[int, str, RiskLevels]]) -> None:
        self.index.add_many(positions)
        self.watched.update(p[0] for p in positions)

    def opened(self, opened: Iterable[tuple[int, str, RiskLevels]]) -> None:
        """Positions this process just opened: watched here when their market is ours, else
        the replica that owns it picks them up on its next sync."""
        self._add_many([o for o in opened if self.ownership.owns(o[1])])

    def closed(self, position_ids: Iterable[int]) -> None:
        for pid in position_ids:
            self.index.remove(pid)
            self.watched.discard(pid)

    async def _open_rows(
        self, *where: Any, order_by: Any = None, limit: int | None = None
    ) -> list[Any]:
        stmt = select(*WATCH_COLUMNS).where(Position.status == PositionStatus.OPEN, *where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        async with self.sessions() as s:
            # on the session's connection: Core rows, without the ORM's loading machinery
            # (a third of start-up's CPU with 100,000 rows)
            conn = await s.connection()
            return list((await conn.execute(stmt.limit(limit))).all())

    async def _open_rows_by_id(self, ids: list[int]) -> list[Any]:
        rows = []
        for start in range(0, len(ids), CHUNK):
            rows += await self._open_rows(Position.id.in_(ids[start : start + CHUNK]))
        return rows

    async def load_all(self, restore_paper: bool) -> None:
        """At start: every open position of our markets under the monitor, trailing state as
        stored; venues that keep no state of their own (paper) rebuilt from our books, page
        by page (they build a holding when it is first needed: engine/venues/paper_pending.py)."""
        memo = _LevelsMemo()
        a, names = memo.amounts, memo.names
        restores = {}
        if restore_paper:
            for name, venue in self.venues.items():
                restore = getattr(venue, "restore", None)
                if restore is not None:
                    restore([])  # a new restore, unless the venue's book already exists
                    restores[name] = restore
        after = None
        while True:
            # in pages by id: the rows of 100,000 positions never sit in memory at once
            # (the process keeps the memory it peaked at)
            rows = await self._open_rows(
                *(() if after is None else (Position.id > after,)),
                order_by=Position.id,
                limit=LOAD_PAGE,
            )
            if not rows:
                break
            after = rows[-1].id
            watch = []
            books: dict[str, list[tuple[str, str, str, Any, Any, Any]]] = {}
            owns = self.ownership.owns
            for p in rows:
                market = names[p[1]]
                levels = memo.of(p)
                if p[2] in restores:
                    books.setdefault(p[2], []).append(
                        (p[3], market, levels.side, a[p[4]], levels.entry, a[p[5]])
                    )
                if owns(market):
                    watch.append((p[0], market, levels))
            self._add_many(watch)
            for name, positions in books.items():
                restores[name](positions, True)
            del rows, watch, books
        self.loaded = True

    async def sync(self) -> set[str]:
        """Replicas, after each ownership round: watch what is open in our markets (opened by
        another replica, or in a shard just taken over), stop watching what closed elsewhere
        or whose shard moved away (its trailing state saved first, for the next owner). Returns
        the markets where positions were added: their last price is checked at once."""
        if not self.loaded:
            return set()  # start-up is loading them; the next round syncs
        async with self.sessions() as s:
            conn = await s.connection()  # Core rows: this reads every open position
            stmt = select(Position.id, Position.market).where(
                Position.status == PositionStatus.OPEN
            )
            open_now = dict((await conn.execute(stmt)).all())
        owned = {m: self.ownership.owns(m) for m in set(open_now.values())}  # once per market
        ours = {pid for pid, market in open_now.items() if owned[market]}
        leaving = [pid for pid in self.watched if pid not in ours]
        handed_over = [pid for pid in leaving if pid in open_now]
        if handed_over:
            await save_trailing_starts(self.sessions, self.index, handed_over)
        self.closed(leaving)
        missing = [pid for pid in ours if pid not in self.index]
        added: set[str] = set()
        if missing:
            memo = _LevelsMemo()
            rows = await self._open_rows_by_id(sorted(missing))
            self._add_many([(p.id, p.market, memo.of(p)) for p in rows])
            added.update(p.market for p in rows)
            log.info("now watching %d more position(s)", len(missing))
        return added

    async def liquidated(self, market: str, price: Decimal) -> list[int]:
        """Watched positions whose paper holding the mark liquidated (engine/venues/paper.py):
        they close at the liquidation price, whatever their own stop says."""
        hits: list[tuple[str, str, str, str]] = []
        for name, venue in self.venues.items():
            paper = getattr(venue, "paper", venue)  # AccountRoutedVenue keeps paper apart
            liquidations = getattr(paper, "liquidations", None)
            if liquidations is not None:
                hits += [(name, h.account, h.market, h.side) for h in liquidations(market, price)]
        if not hits:
            return []
        async with self.sessions() as s:
            rows = await s.execute(
                select(Position.id).where(
                    Position.status == PositionStatus.OPEN,
                    Position.market == market,
                    tuple_(Position.venue, Position.account, Position.market, Position.side).in_(
                        hits
                    ),
                )
            )
            return [pid for pid in rows.scalars() if pid in self.watched]

    async def open_position_ids(self) -> list[int]:
        async with self.sessions() as s:
            stmt = select(Position.id).where(Position.status == PositionStatus.OPEN)
            return list((await s.execute(stmt.order_by(Position.id))).scalars().all())
