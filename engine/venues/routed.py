"""One venue name, two books: paper deployments trade on the paper venue, live ones on the
real venue, chosen by the order's account ("paper:..." accounts are simulated). The engine
and the orders table stay the same for both, as the design asks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from engine.markets import MarketInfo
from engine.venues.base import Fill, OrderLookup, OrderRequest, Venue, look_up


def is_paper(account: str) -> bool:
    return account.startswith("paper:")


def mode_of(account: str) -> str:
    """What a user is told a position is: "paper" (simulated money) or "live"."""
    return "paper" if is_paper(account) else "live"


class AccountRoutedVenue:
    def __init__(self, paper: Venue, live: Venue) -> None:
        self.name = live.name
        self.paper = paper
        self.live = live

    def markets(self) -> Mapping[str, MarketInfo]:
        # the real listing once loaded: paper trades what the venue really lists
        return self.live.markets() or self.paper.markets()

    def _for(self, account: str) -> Venue:
        return self.paper if is_paper(account) else self.live

    async def place_order(self, order: OrderRequest) -> Fill:
        return await self._for(order.account).place_order(order)

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        return await self._for(account).find_order(account, client_order_id)

    async def look_up(self, account: str, client_order_id: str) -> OrderLookup:
        return await look_up(self._for(account), account, client_order_id)

    async def cancel_order(self, account: str, market: str, client_order_id: str) -> None:
        cancel = getattr(self._for(account), "cancel_order", None)
        if cancel is not None:
            await cancel(account, market, client_order_id)

    def cross_resting(self, market: str, price: Decimal) -> list[str]:
        # paper limit entries fill on our ticks; the live venue fills its own
        cross = getattr(self.paper, "cross_resting", None)
        return cross(market, price) if cross is not None else []

    def restore(
        self, positions: Iterable[tuple[str, str, str, object, object]], more: bool = False
    ) -> None:
        restore = getattr(self.paper, "restore", None)
        if restore is not None:
            restore([p for p in positions if is_paper(p[0])], more)

    def __getattr__(self, name: str) -> object:
        # reconciliation reads (positions, user_fills, info...) belong to the live venue
        return getattr(self.live, name)
