"""Paper holdings restored at start but not built yet (engine/venues/paper.py).

A process that starts with 100,000 open paper positions needs almost none of their simulated
holdings at once: a holding is needed when its account places an order, when someone asks its
liquidation price, or when the mark comes near its liquidation price. Until then it waits
here, grouped by what a signal's followers share (market, side, entry, leverage): a group
keeps each account's size, and one liquidation level, so a tick checks a group, not each
holding, and start-up builds nothing per position but two dictionary entries.

The group's level is the liquidation price of its entry and leverage. A holding's own price
(engine/liquidation.py, from its margin entry x size / leverage) can differ from it in the
last digits of the Decimal context, so a group is built as soon as the mark comes within a
relative 1e-12 of its level, well before the exact check of the built holdings could fire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from engine.liquidation import liquidation_price

# how near (relative to entry + margin per unit) the mark may come before a group is built
NEAR = Decimal("1e-12")

Restored = tuple[str, str, str, Decimal, Decimal, Decimal | None]  # see PaperVenue.restore


@dataclass(eq=False, slots=True)
class _Group:
    market: str
    side: str
    entry: Decimal
    leverage: Decimal | None
    level: Decimal | None  # where the mark builds the group; None: never liquidated
    sizes: dict[str, Decimal] = field(default_factory=dict)  # account -> size

    def near(self, price: Decimal) -> bool:
        if self.level is None:
            return False
        return price <= self.level if self.side == "long" else price >= self.level


class PendingHoldings:
    """Holdings not built yet: by account (an order, a question) and by market (a tick)."""

    def __init__(self, maintenance_margin_rate: Callable[[str], Decimal]) -> None:
        self._mmr = maintenance_margin_rate
        self._groups: dict[tuple[str, str, Decimal, Decimal | None], _Group] = {}
        self._markets: dict[str, list[_Group]] = {}
        # account -> its group, or its groups when it holds several markets
        self._accounts: dict[str, _Group | list[_Group]] = {}
        # per market: the highest long and lowest short group level (None: none to watch)
        self._bounds: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._last: _Group | None = None  # the group `add` filled last

    def __bool__(self) -> bool:
        return bool(self._accounts)

    def add(
        self,
        account: str,
        market: str,
        side: str,
        size: Decimal,
        entry: Decimal,
        leverage: Decimal | None,
    ) -> bool:
        """Pending now; False if the account already has one in this market: the caller
        builds both at once, in order (netting)."""
        held = self._accounts.get(account)
        if held is not None and any(h.market == market for h in self._of(account)):
            return False
        g = self._last
        if g is None or (g.entry, g.leverage, g.market, g.side) != (entry, leverage, market, side):
            g = self._group(market, side, entry, leverage)
        g.sizes[account] = size
        if held is None:
            self._accounts[account] = g
        elif isinstance(held, list):
            held.append(g)
        else:
            self._accounts[account] = [held, g]
        return True

    def _group(self, market: str, side: str, entry: Decimal, leverage: Decimal | None) -> _Group:
        key = (market, side, entry, leverage)
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = _Group(market, side, entry, leverage, self._level(key))
            self._markets.setdefault(market, []).append(g)
            self._bounds.pop(market, None)
        self._last = g  # a signal's followers come one after the other
        return g

    def _level(self, key: tuple[str, str, Decimal, Decimal | None]) -> Decimal | None:
        market, side, entry, leverage = key
        if not leverage or leverage <= 0:
            return None
        mmr = self._mmr(market)
        level = liquidation_price(side, entry, leverage, mmr)
        if level <= 0 and side == "long":
            return None  # no positive price liquidates it (1x), whatever the rounding
        slack = (entry + entry / leverage) * NEAR
        return level + slack if side == "long" else level - slack

    def _of(self, account: str) -> list[_Group]:
        held = self._accounts.get(account)
        return [] if held is None else held if isinstance(held, list) else [held]

    def take_account(self, account: str) -> Iterator[Restored]:
        """Every pending holding of `account`, now to be built."""
        for g in self._of(account):
            yield self._take(g, account)
        self._accounts.pop(account, None)

    def take_near(self, market: str, price: Decimal) -> Iterator[Restored]:
        """The pending holdings of every group of `market` that `price` comes near."""
        groups = self._markets.get(market)
        if not groups:
            return
        bounds = self._bounds.get(market)
        if bounds is None:
            bounds = self._bounds[market] = self._bounds_of(groups)
        long_at, short_at = bounds
        if (long_at is None or price > long_at) and (short_at is None or price < short_at):
            return
        for g in [g for g in groups if g.near(price)]:
            for account in list(g.sizes):
                groups_of = self._of(account)
                yield self._take(g, account)
                rest = [h for h in groups_of if h is not g]
                if rest:
                    self._accounts[account] = rest[0] if len(rest) == 1 else rest
                else:
                    del self._accounts[account]

    @staticmethod
    def _bounds_of(groups: list[_Group]) -> tuple[Decimal | None, Decimal | None]:
        longs = [g.level for g in groups if g.side == "long" and g.level is not None]
        shorts = [g.level for g in groups if g.side != "long" and g.level is not None]
        return max(longs, default=None), min(shorts, default=None)

    def _take(self, g: _Group, account: str) -> Restored:
        size = g.sizes.pop(account)
        if not g.sizes:  # the group is empty: forget it
            self._last = None
            del self._groups[(g.market, g.side, g.entry, g.leverage)]
            self._markets[g.market].remove(g)
            self._bounds.pop(g.market, None)
        return account, g.market, g.side, size, g.entry, g.leverage
