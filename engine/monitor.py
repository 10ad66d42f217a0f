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

Closed positions are deleted lazily: they are flagged and skipped when they surface.
The results are exactly those of `engine.levels.RiskLevels.step` (tests compare them).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count

from engine.levels import RiskLevels

ONE = Decimal(1)
_seq = count()


@dataclass(eq=False, slots=True)
class _Pos:
    id: int
    long: bool
    stop: Decimal  # x-space base stop (the stop loss, never moves)
    tp: Decimal | None  # x-space
    activation: Decimal | None  # x-space
    distance: Decimal | None
    active: bool = False
    closed: bool = False
    group: _Group | None = None

    def trail_level(self, peak_x: Decimal) -> Decimal:
        d = self.distance or Decimal(0)
        return peak_x * (ONE - d) if self.long else peak_x * (ONE + d)


@dataclass(eq=False, slots=True)
class _Group:
    peak: Decimal  # x-space
    items: list[tuple[Decimal, int, _Pos]] = field(default_factory=list)  # min-heap on distance
    version: int = 0
    alive: bool = True


@dataclass(frozen=True, slots=True)
class Trigger:
    position_id: int
    reason: str  # stop_loss / trailing_stop / take_profit


class _Book:
    """Positions of one market and one side."""

    def __init__(self, long: bool) -> None:
        self.long = long
        self.stops: list[tuple[Decimal, int, _Pos]] = []  # (-stop, seq, pos): max-heap
        self.ups: list[tuple[Decimal, int, _Pos, bool]] = []  # (level, seq, pos, is_tp)
        self.stack: list[_Group] = []  # peaks decrease towards the top
        self.levels: list[tuple[Decimal, int, _Group, int]] = []  # (-level, seq, group, ver)

    def add(self, p: _Pos, peak_x: Decimal) -> None:
        heapq.heappush(self.stops, (-p.stop, next(_seq), p))
        if p.tp is not None:
            heapq.heappush(self.ups, (p.tp, next(_seq), p, True))
        if p.active:
            self._join(p, peak_x)
        elif p.activation is not None:
            heapq.heappush(self.ups, (p.activation, next(_seq), p, False))

    def _join(self, p: _Pos, peak_x: Decimal) -> None:
        # restored positions may carry a peak that is not the top's; keep the stack ordered
        pos = len(self.stack)
        while pos > 0 and self.stack[pos - 1].peak < peak_x:
            pos -= 1
        if pos > 0 and self.stack[pos - 1].peak == peak_x:
            g = self.stack[pos - 1]
        else:
            g = _Group(peak_x)
            self.stack.insert(pos, g)
        heapq.heappush(g.items, (p.distance or Decimal(0), next(_seq), p))
        p.group = g
        self._push_level(g)

    def _push_level(self, g: _Group) -> None:
        while g.items and g.items[0][2].closed:
            heapq.heappop(g.items)
        g.version += 1
        if g.items:
            level = g.items[0][2].trail_level(g.peak)
            heapq.heappush(self.levels, (-level, next(_seq), g, g.version))

    def update(self, x: Decimal, out: list[Trigger]) -> None:
        activated: list[_Pos] = []
        ups = self.ups
        while ups and ups[0][0] <= x:
            _, _, p, is_tp = heapq.heappop(ups)
            if p.closed:
                continue
            if is_tp:
                p.closed = True
                out.append(Trigger(p.id, "take_profit"))
            elif not p.active:
                p.active = True
                activated.append(p)
        stops = self.stops
        while stops and -stops[0][0] >= x:
            _, _, p = heapq.heappop(stops)
            if not p.closed:
                p.closed = True
                out.append(Trigger(p.id, "trailing_stop" if p.active else "stop_loss"))
        levels = self.levels
        while levels and -levels[0][0] >= x:
            _, _, g, ver = heapq.heappop(levels)
            if not g.alive or ver != g.version:
                continue
            items = g.items
            while items and items[0][2].trail_level(g.peak) >= x:
                _, _, p = heapq.heappop(items)
                if not p.closed:
                    p.closed = True
                    out.append(Trigger(p.id, "trailing_stop"))
            self._push_level(g)
        self._raise_peaks(x, activated)

    def _raise_peaks(self, x: Decimal, activated: list[_Pos]) -> None:
        stack = self.stack
        if (not stack or stack[-1].peak >= x) and not activated:
            return
        merged: list[_Group] = []
        while stack and stack[-1].peak < x:
            merged.append(stack.pop())
        if stack and stack[-1].peak == x:
            merged.append(stack.pop())
        if not merged and not activated:
            return
        merged.sort(key=lambda g: len(g.items), reverse=True)
        base = merged[0] if merged else _Group(x)
        for g in merged[1:]:
            g.alive = False
            for item in g.items:
                if not item[2].closed:
                    heapq.heappush(base.items, item)
                    item[2].group = base
        for p in activated:
            heapq.heappush(base.items, (p.distance or Decimal(0), next(_seq), p))
            p.group = base
        base.peak = x
        base.alive = True
        stack.append(base)
        self._push_level(base)


class PositionIndex:
    """Open positions by market; `on_price` returns the positions that must close now."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[_Book, _Book]] = {}
        self._pos: dict[int, tuple[str, _Pos]] = {}

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, position_id: int) -> bool:
        return position_id in self._pos

    def add(self, position_id: int, market: str, levels: RiskLevels) -> None:
        long = levels.side == "long"
        sign = ONE if long else -ONE
        p = _Pos(
            id=position_id,
            long=long,
            stop=sign * levels.stop if not levels.trailing_active else sign * self._base(levels),
            tp=None if levels.take_profit is None else sign * levels.take_profit,
            activation=None if levels.activation is None else sign * levels.activation,
            distance=levels.distance,
            active=levels.trailing_active,
        )
        books = self._books.get(market)
        if books is None:
            books = self._books[market] = (_Book(True), _Book(False))
        books[0 if long else 1].add(p, sign * levels.peak)
        self._pos[position_id] = (market, p)

    @staticmethod
    def _base(levels: RiskLevels) -> Decimal:
        # a restored trailing position: its stored stop already includes the trail, which is
        # at least the base stop, so it is a safe static floor
        return levels.stop

    def remove(self, position_id: int) -> None:
        entry = self._pos.pop(position_id, None)
        if entry is not None:
            entry[1].closed = True

    def on_price(self, market: str, price: Decimal) -> list[Trigger]:
        books = self._books.get(market)
        if books is None:
            return []
        out: list[Trigger] = []
        books[0].update(price, out)
        books[1].update(-price, out)
        for t in out:
            self._pos.pop(t.position_id, None)
        return out

    def state(self, position_id: int) -> tuple[Decimal, Decimal | None, bool] | None:
        """(current stop, peak, trailing active) in real prices, for display and checkpoints."""
        entry = self._pos.get(position_id)
        if entry is None:
            return None
        p = entry[1]
        sign = ONE if p.long else -ONE
        if p.active and p.group is not None:
            trail = p.trail_level(p.group.peak)
            return sign * max(p.stop, trail), sign * p.group.peak, True
        return sign * p.stop, None, False
