"""One market side of the monitor's index (engine/monitor.py): level sets in lists sorted by
level, and the trailing groups, so an update finds what it crosses at one end of a list."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from operator import itemgetter
from typing import Any, NamedTuple

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
