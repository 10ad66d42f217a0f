"""In-memory index of open positions that finds, per price update, only those whose level
is crossed: no database read and no loop over every position on a tick.

Prices are mapped to x = price for longs and x = -price for shorts, so one set of
comparisons serves both sides ("the stop is hit when x <= stop", "take profit when x >= tp").

- Static levels live in heaps: stops (max-heap) and take-profit / trailing-activation
  levels (min-heap); an update pops only the entries it crosses.
- Trailing stops depend on the peak since activation. All positions of one market see the
  same prices after they activate, so those activated earlier always have a peak at least as
  high as those activated later. Positions sharing a peak form a group; groups form a stack
  with the highest peak at the bottom, and a new high merges every lower group into one
  (amortised O(log n) per position). A group's trailing stop for distance d is peak x (1-d)
  (peak x (1+d) in x-space for shorts), so the group's nearest stop is its smallest distance.

- Positions are kept by level set: the followers of a signal share every level, so they
  cross each one together. The lists, heaps and groups hold one entry per set (a few thousand
  for 100,000 positions), each with its positions' ids; a position costs an id in a list and
  an entry in the id map, and start-up builds one entry per signal, not one per position.

Closed positions are deleted lazily: they are flagged and skipped when they surface.
The results are exactly those of `engine.levels.RiskLevels.step` (tests compare them).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from engine.levels import RiskLevels
from engine.monitor_book import ONE, Trigger, _Book, _Group, _Set

__all__ = ["PositionIndex", "Trigger"]


class PositionIndex:
    """Open positions by market; `on_price` returns the positions that must close now."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[_Book, _Book]] = {}
        self._pos: dict[int, _Set] = {}  # shared with every book
        # positions whose trailing stop started since the caller last took this list
        self.activated: list[int] = []
        self._moved: set[_Group] = set()
        # the last levels added and their x-space values (see `add`)
        self._x_levels: tuple[RiskLevels | None, Any, Any, Any, Any] = (
            None,
            None,
            None,
            None,
            None,
        )

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, position_id: int) -> bool:
        return position_id in self._pos

    def add(self, position_id: int, market: str, levels: RiskLevels) -> None:
        if position_id in self._pos:
            return  # already watched (a second start(), a re-added refused close)
        long = levels.side == "long"
        sign = ONE if long else -ONE
        x = self._x_levels
        source = (levels.stop, levels.take_profit, levels.activation, levels.peak)
        if x[0] is not levels or any(a is not b for a, b in zip(x[5], source, strict=True)):
            # followers of one signal are added with one RiskLevels: their x-space levels
            # are computed once and shared (memory: one Decimal each, not one per position)
            x = self._x_levels = (
                levels,
                # a restored trailing position's stored stop includes the trail: a safe floor
                sign * levels.stop,
                None if levels.take_profit is None else sign * levels.take_profit,
                None if levels.activation is None else sign * levels.activation,
                sign * levels.peak,
                source,  # what they were computed from (a RiskLevels is mutable)
            )
        book = self._books_of(market)[0 if long else 1]
        state = (x[1], x[2], x[3], levels.distance, levels.trailing_active)
        self._pos[position_id] = book.add(position_id, state, x[4])

    def add_many(self, positions: Iterable[tuple[int, str, RiskLevels]]) -> None:
        """`add` for many positions (a start-up, a fan-out's fills): each book's lists are
        sorted once at the end instead of kept sorted on every insert."""
        touched: list[_Book] = []
        pos = self._pos
        last: tuple[str, RiskLevels, _Set] | None = None  # the previous position's
        try:
            for position_id, market, levels in positions:
                if position_id in pos:
                    continue  # already watched
                if last is not None and last[1] is levels and last[0] == market:
                    # the next follower of the same signal: the set the previous one joined
                    s = last[2]
                    s.ids.append(position_id)
                    s.live += 1
                    pos[position_id] = s
                    continue
                books = self._books_of(market)
                if not books[0].deferred:
                    books[0].deferred = books[1].deferred = True
                    touched += books
                self.add(position_id, market, levels)
                last = (market, levels, pos[position_id])
        finally:
            for book in touched:
                book.sort_deferred()

    def _books_of(self, market: str) -> tuple[_Book, _Book]:
        books = self._books.get(market)
        if books is None:
            books = self._books[market] = (_Book(True), _Book(False))
            books[0].activated = books[1].activated = self.activated
            books[0].moved = books[1].moved = self._moved
            books[0].pos = books[1].pos = self._pos
        return books

    def remove(self, position_id: int) -> None:
        s = self._pos.pop(position_id, None)
        if s is None or s.closed:
            return
        s.live -= 1
        if s.live == 0:
            s.closed = True
            s.ids = []
            s.book.closed_elsewhere()
        elif len(s.ids) > 2 * s.live + 16:  # drop the ids of members gone
            s.ids = [pid for pid in s.ids if self._pos.get(pid) is s]

    def on_price(self, market: str, price: Decimal) -> list[Trigger]:
        books = self._books.get(market)
        if books is None:
            return []
        out: list[Trigger] = []
        books[0].update(price, out)  # they drop what closes from the id map
        books[1].update(-price, out)
        return out

    def take_moved(self) -> list[int]:
        """Positions whose trailing stop may have moved since the last call (each trailing
        position of a group that made a new peak or took a member): what a checkpoint saves,
        without looking at the positions whose stops stood still."""
        groups, self._moved = self._moved, set()
        for books in self._books.values():
            books[0].moved = books[1].moved = self._moved
        pos = self._pos
        return sorted(
            {
                pid
                for g in groups
                if g.alive
                for e in g.items
                for pid in e[2].ids
                if pos.get(pid) is e[2]
            }
        )

    def mark_moved(self, position_ids: list[int]) -> None:
        """Positions a checkpoint could not save: taken again by the next `take_moved`."""
        for pid in position_ids:
            s = self._pos.get(pid)
            if s is not None and s.group is not None:
                self._moved.add(s.group)

    def state(self, position_id: int) -> tuple[Decimal, Decimal | None, bool] | None:
        """(current stop, peak, trailing active) in real prices, for display and checkpoints."""
        p = self._pos.get(position_id)
        if p is None:
            return None
        sign = ONE if p.long else -ONE
        if p.active and p.group is not None:
            trail = p.trail_level(p.group.peak)
            return sign * max(p.stop, trail), sign * p.group.peak, True
        return sign * p.stop, None, False
