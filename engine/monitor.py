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

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from operator import itemgetter
from typing import Any, NamedTuple

from engine.levels import RiskLevels

ONE = Decimal(1)
_seq = count()


@dataclass(eq=False, slots=True)
class _Set:
    """Positions of one book that share every level and every state (a signal's followers):
    whatever crosses one of them crosses all, so they are one entry of the book's lists."""

    long: bool
    stop: Decimal  # x-space base stop (the stop loss, never moves)
    tp: Decimal | None  # x-space
    activation: Decimal | None  # x-space
    distance: Decimal | None
    book: _Book
    # members, with stale ids left by `PositionIndex.remove` (the id map says who is in)
    ids: list[int] = field(default_factory=list)
    live: int = 0  # members still open
    active: bool = False
    closed: bool = False
    group: _Group | None = None

    def trail_level(self, peak_x: Decimal) -> Decimal:
        d = self.distance or Decimal(0)
        return peak_x * (ONE - d) if self.long else peak_x * (ONE + d)


@dataclass(eq=False, slots=True)
class _Group:
    peak: Decimal  # x-space
    items: list[tuple[Decimal, int, _Set]] = field(default_factory=list)  # sorted by distance
    version: int = 0
    alive: bool = True

    def threshold(self, x: Decimal, long: bool) -> Decimal:
        """Distances up to this are hit at x (peak x (1-d) >= x, or peak x (1+d) >= x)."""
        return ONE - x / self.peak if long else x / self.peak - ONE


class Trigger(NamedTuple):
    position_id: int
    reason: str  # stop_loss / trailing_stop / take_profit


_key = itemgetter(0)
_new = tuple.__new__  # builds a Trigger without NamedTuple's Python-level __new__ (hot path)


def _trigger(position_id: int, reason: str) -> Trigger:
    return _new(Trigger, (position_id, reason))


class _Book:
    """Positions of one market and one side, in lists sorted by level: what an update crosses
    is a contiguous end of a list, found by one bisect and cut off in one slice. The entries
    are level sets (`_Set`); the live counts below count sets."""

    def __init__(self, long: bool) -> None:
        self.long = long
        # (level, position) sorted by level with `key`, so equal levels need no tie-breaker
        # (a sequence number per entry cost 36 bytes a position)
        self.stops: list[tuple[Decimal, _Set]] = []  # ascending; hit: stop >= x
        self.ups: list[tuple[Decimal, _Set, bool]] = []  # ascending; hit: level <= x
        self.stack: list[_Group] = []  # peaks decrease towards the top
        self.levels: list[tuple[Decimal, int, _Group, int]] = []  # heap of (-nearest stop)
        self.live = 0
        self.dead = 0  # closed sets still referenced from the lists
        # shared with the index: position id -> its set, for the positions still open
        self.pos: dict[int, _Set] = {}
        # sets a new position may join: by levels and state (see `add`)
        self.joinable: dict[tuple[Any, ...], _Set] = {}
        self.activated: list[int] = []  # shared with the index: trailing stops just started
        # shared with the index: groups whose trailing stops may have moved since the last
        # checkpoint (a new peak, a member joined), so a checkpoint reads only those
        self.moved: set[_Group] = set()
        self.deferred = False  # adding many: lists sorted once when done

    def add(
        self,
        position_id: int,
        levels: tuple[Decimal, Decimal | None, Decimal | None, Decimal | None, bool],
        peak_x: Decimal,
    ) -> _Set:
        """Add a position with x-space (stop, tp, activation, distance, trailing active) and,
        when active, the peak of its trail: it joins the set in the same state, if any."""
        key = (*levels, peak_x) if levels[4] else levels
        s = self.joinable.get(key)
        if s is not None and not s.closed and s.active == levels[4]:
            # an inactive set is still as added (its activation not crossed); an active one
            # is the same state only while its group still has the peak the newcomer carries
            g = s.group
            if not s.active or (g is not None and g.alive and g.peak == peak_x):
                s.ids.append(position_id)
                s.live += 1
                if g is not None:
                    self.moved.add(g)  # a restored trail: its stored stop may lag
                return s
        stop, tp, activation, distance, active = levels
        s = self.joinable[key] = _Set(self.long, stop, tp, activation, distance, self)
        s.ids.append(position_id)
        s.live = 1
        s.active = active
        self.live += 1
        if self.deferred:
            # many at once (PositionIndex.add_many): appended now, sorted once at the end; an
            # insort each moved half the list every time (quadratic in a book of thousands)
            self.stops.append((stop, s))
            if tp is not None:
                self.ups.append((tp, s, True))
            if active:
                self._join(s, peak_x)
            elif activation is not None:
                self.ups.append((activation, s, False))
            return s
        insort(self.stops, (stop, s), key=_key)
        if tp is not None:
            insort(self.ups, (tp, s, True), key=_key)
        if active:
            self._join(s, peak_x)
        elif activation is not None:
            insort(self.ups, (activation, s, False), key=_key)
        return s

    def sort_deferred(self) -> None:
        # stable: among equal levels, earlier entries stay first, as insort_right keeps them
        self.stops.sort(key=_key)
        self.ups.sort(key=_key)
        self.deferred = False

    def _join(self, p: _Set, peak_x: Decimal) -> None:
        # restored positions may carry a peak that is not the top's; keep the stack ordered
        pos = len(self.stack)
        while pos > 0 and self.stack[pos - 1].peak < peak_x:
            pos -= 1
        if pos > 0 and self.stack[pos - 1].peak == peak_x:
            g = self.stack[pos - 1]
        else:
            g = _Group(peak_x)
            self.stack.insert(pos, g)
        insort(g.items, (p.distance or Decimal(0), next(_seq), p), key=_key)
        p.group = g
        self.moved.add(g)  # a restored trail: its stored stop may lag behind its peak
        self._push_level(g)

    def _push_level(self, g: _Group) -> None:
        items = g.items
        first = 0
        while first < len(items) and items[first][2].closed:
            first += 1
        if first:
            del items[:first]
        g.version += 1
        if items:
            level = items[0][2].trail_level(g.peak)
            heapq.heappush(self.levels, (-level, next(_seq), g, g.version))
        if len(self.levels) > 2 * len(self.stack) + 64:
            # every new high re-keys a group and leaves the old entry behind: drop stale ones
            self.levels = [e for e in self.levels if e[2].alive and e[3] == e[2].version]
            heapq.heapify(self.levels)

    def closed_elsewhere(self) -> None:
        self._note_closed(1)

    def _close(self, s: _Set, reason: str, out: list[Trigger]) -> None:
        """Every open member of `s` closes for `reason`."""
        s.closed = True
        pos = self.pos
        for pid in s.ids:
            if pos.get(pid) is s:  # not removed meanwhile (nor listed twice: re-added)
                del pos[pid]
                out.append(_trigger(pid, reason))
        s.ids = []
        s.live = 0

    def _note_closed(self, n: int) -> None:
        # a closed position leaves `live`; its entries in the other lists count as dead
        # until a compaction drops them
        self.live -= n
        self.dead += n
        if self.dead > 64 and self.dead > self.live:
            self._compact()

    def _compact(self) -> None:
        self.joinable = {k: s for k, s in self.joinable.items() if not s.closed}
        self.stops = [e for e in self.stops if not e[1].closed]
        self.ups = [e for e in self.ups if not e[1].closed]
        for g in self.stack:
            g.items = [e for e in g.items if not e[2].closed]
        self.dead = 0

    def update(self, x: Decimal, out: list[Trigger]) -> None:
        closed = 0
        ups = self.ups
        if ups and ups[0][0] <= x:
            i = bisect_right(ups, x, key=_key)
            activated = []
            for _, p, is_tp in ups[:i]:
                if p.closed:
                    continue
                if is_tp:
                    self._close(p, "take_profit", out)
                    closed += 1
                elif not p.active:
                    p.active = True
                    activated.append(p)
            del ups[:i]
        else:
            activated = []
        stops = self.stops
        if stops and stops[-1][0] >= x:
            i = bisect_left(stops, x, key=_key)
            for _, p in stops[i:]:
                if not p.closed:
                    self._close(p, "trailing_stop" if p.active else "stop_loss", out)
                    closed += 1
            del stops[i:]
        levels = self.levels
        nx = -x
        while levels and levels[0][0] <= nx:
            _, _, g, ver = heapq.heappop(levels)
            if not g.alive or ver != g.version:
                continue
            closed += self._trail_hits(g, x, out)
            self._push_level(g)
        self._raise_peaks(x, activated)
        if activated:
            pos = self.pos
            for s in activated:
                if not s.closed:
                    self.activated.extend(pid for pid in s.ids if pos.get(pid) is s)
        if closed:
            self._note_closed(closed)

    def _trail_hits(self, g: _Group, x: Decimal, out: list[Trigger]) -> int:
        items = g.items
        i = bisect_right(items, g.threshold(x, self.long), key=_key)
        # the threshold is a rounded quotient: settle the boundary with exact products
        while i > 0 and items[i - 1][2].trail_level(g.peak) < x:
            i -= 1
        while i < len(items) and items[i][2].trail_level(g.peak) >= x:
            i += 1
        closed = 0
        for _, _, p in items[:i]:
            if not p.closed:
                self._close(p, "trailing_stop", out)
                closed += 1
        del items[:i]
        return closed

    def _raise_peaks(self, x: Decimal, activated: list[_Set]) -> None:
        stack = self.stack
        if (not stack or stack[-1].peak >= x) and not activated:
            return
        merged: list[_Group] = []
        while stack and stack[-1].peak <= x:
            merged.append(stack.pop())
        base = merged[0] if merged else _Group(x)
        if len(merged) > 1 or activated:
            items = base.items  # in place: Timsort merges the appended sorted runs cheaply
            for g in merged[1:]:
                g.alive = False
                for e in g.items:
                    if not e[2].closed:
                        items.append(e)
                        e[2].group = base
            for p in activated:
                items.append((p.distance or Decimal(0), next(_seq), p))
                p.group = base
            items.sort(key=_key)
        base.peak = x
        base.alive = True
        self.moved.add(base)
        stack.append(base)
        self._push_level(base)


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
