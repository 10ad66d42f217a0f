"""The paper venue's liquidation watch (engine/venues/paper.py): per market, the liquidation
price of every holding not liquidated yet, the nearest long and short of them (so a tick far
from all of them is one comparison), and the holdings liquidated and not closed yet.

A base class of `PaperVenue`, not a venue of its own: it reads the venue's books
(`accounts`), its listing (`_markets`) and its restored holdings not built yet (`_pending`),
and the venue calls `_track` after every change to a holding.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from engine.liquidation import crossed, liquidation_price_for_margin
from engine.markets import MarketInfo
from engine.venues.paper_books import PaperAccount, PaperHolding, PaperLiquidation
from engine.venues.paper_pending import PendingHoldings, Restored


class LiquidationWatch:
    accounts: dict[str, PaperAccount]
    _markets: Mapping[str, MarketInfo]
    _pending: PendingHoldings

    def _watch_liquidations(self) -> None:
        self._watch: dict[str, dict[tuple[str, str], Decimal]] = {}
        self._nearest: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._liquidating: dict[str, set[tuple[str, str]]] = {}

    # the venue's own: an account's books with its restored holdings built, and one
    # restored holding built
    def account(self, account: str) -> PaperAccount:
        raise NotImplementedError

    def _restore_one(self, restored: Restored) -> None:
        raise NotImplementedError

    def liquidation_price(self, account: str, market: str, side: str) -> Decimal | None:
        """Where the holding is (or was) liquidated; None without one or with unknown margin."""
        if self._pending:
            self.account(account)
        acc = self.accounts.get(account)
        held = acc.positions.get((market, side)) if acc else None
        if held is None:
            return None
        if held.liquidated_at is not None:
            return held.liquidated_at
        return self._liquidation_price(market, side, held)

    def _liquidation_price(self, market: str, side: str, held: PaperHolding) -> Decimal | None:
        if held.margin is None or held.size <= 0:
            return None
        return liquidation_price_for_margin(
            side, held.entry, held.size, held.margin, self._maintenance_margin_rate(market)
        )

    def _maintenance_margin_rate(self, market: str) -> Decimal:
        return (self._markets.get(market) or MarketInfo(market)).maintenance_margin_rate

    def _liquidate(
        self, market: str, side: str, held: PaperHolding, price: Decimal
    ) -> Decimal | None:
        """The holding's liquidation price if `price` liquidates it (now or before)."""
        if held.liquidated_at is None:
            liquidation = self._liquidation_price(market, side, held)
            if liquidation is None or liquidation <= 0 or not crossed(side, liquidation, price):
                return None
            held.liquidated_at = liquidation
        return held.liquidated_at

    def liquidations(self, market: str, price: Decimal) -> list[PaperLiquidation]:
        """Holdings in `market` liquidated at this mark, or before and not closed yet.

        The engine calls this on every tick of a market, before its stops, and closes our
        positions of each (account, market, side) returned with reason "liquidation"; those
        closes fill at the liquidation price whatever the mark is by then. Asking again is
        harmless: a holding is listed until it is closed."""
        if self._pending:  # restored holdings the mark comes near are built first
            for restored in list(self._pending.take_near(market, price)):
                self._restore_one(restored)
        watch = self._watch.get(market)
        if watch:
            long_at, short_at = self._nearest_levels(market)
            if (long_at is not None and price <= long_at) or (
                short_at is not None and price >= short_at
            ):
                for (account, side), level in list(watch.items()):
                    if crossed(side, level, price):
                        held = self.accounts[account].positions[(market, side)]
                        held.liquidated_at = level
                        self._track(account, market, side)
        out = []
        for account, side in sorted(self._liquidating.get(market, ())):
            held = self.accounts[account].positions[(market, side)]
            assert held.liquidated_at is not None
            out.append(PaperLiquidation(account, market, side, held.size, held.liquidated_at))
        return out

    def _nearest_levels(self, market: str) -> tuple[Decimal | None, Decimal | None]:
        """The highest long and the lowest short liquidation price in the market."""
        nearest = self._nearest.get(market)
        if nearest is None:
            watch = self._watch.get(market, {})
            longs = [p for (_, side), p in watch.items() if side == "long"]
            shorts = [p for (_, side), p in watch.items() if side != "long"]
            nearest = (max(longs, default=None), min(shorts, default=None))
            self._nearest[market] = nearest
        return nearest

    def _unwatch(self, market: str, key: tuple[str, str]) -> None:
        """Forget the level of the holding `key` (account, side) of `market`."""
        watch, liquidating = self._watch.get(market), self._liquidating.get(market)
        if watch:
            watch.pop(key, None)
        if liquidating:
            liquidating.discard(key)
        self._nearest.pop(market, None)

    def _track(self, account: str, market: str, side: str) -> None:
        """Refresh the liquidation watch for one holding after it changed."""
        key = (account, side)
        self._unwatch(market, key)
        held = self.accounts[account].positions.get((market, side))
        if held is None:
            return
        if held.liquidated_at is not None:
            self._liquidating.setdefault(market, set()).add(key)
            return
        level = self._liquidation_price(market, side, held)
        if level is not None and level > 0:
            self._watch.setdefault(market, {})[key] = level
