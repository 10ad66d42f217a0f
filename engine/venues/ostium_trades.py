"""The open trades of an account on Ostium: read as positions (reconciliation), their stop
loss and take profit set on chain (engine/venues/ostium_protection.py), and how Ostium's
automation closed one. Part of OstiumVenue (engine/venues/ostium.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

from engine.venues.base import OrderRequest, VenueRejected
from engine.venues.hyperliquid import VenuePosition
from engine.venues.ostium_chain import Settlement
from engine.venues.ostium_errors import refusal

E18 = Decimal(10**18)


class OstiumTrades:
    _pairs: dict[str, Any]

    # provided by OstiumVenue
    async def chain(self) -> Any: ...
    async def reader(self) -> Any: ...
    async def _trader_sdk(self, account: str) -> Any: ...
    async def _send(self, signer: Any, call: Any) -> Any: ...
    async def _preflight(self, *args: Any) -> None: ...

    async def open_trades(self, account: str) -> dict[str, dict[str, Any]]:
        """The account's open trades by market, as the subgraph lists them."""
        trades, _ = await (await self.reader()).get_open_trades(account.lower())
        by_id = {p.id: p.market for p in self._pairs.values()}
        return {by_id[int(t["pair"]["id"])]: t for t in trades if int(t["pair"]["id"]) in by_id}

    async def automated_close(self, open_order_id: int) -> tuple[int, str, Settlement] | None:
        """The close Ostium's automation made of the trade an open order created: (order
        id, "tp" | "sl" | "liquidation", settlement); None if it is open, or was closed by a
        market close (ours, found by its own order)."""
        chain = await self.chain()
        trade_id = await asyncio.to_thread(chain.trade_of_open, open_order_id)
        if trade_id is None:
            return None
        found = await asyncio.to_thread(chain.close_of_trade, trade_id)
        if found is None or found[1] == "market":
            return None
        order_id, kind, settled = found
        size = Decimal(0)
        return order_id, kind, replace(settled, size=size)

    async def positions(self, account: str) -> list[VenuePosition]:
        """The account's open trades as net positions (reconciliation's read)."""
        out = []
        for market, t in (await self.open_trades(account)).items():
            size = Decimal(t["tradeNotional"]) / E18
            out.append(
                VenuePosition(market, size if t["isBuy"] else -size, Decimal(t["openPrice"]) / E18)
            )
        return out

    async def user_fills(self, account: str) -> list[dict[str, Any]]:
        """Hyperliquid-shaped fills for reconciliation's generic path: Ostium's closes reach
        the books through their settlements instead (engine/venues/ostium_protection.py)."""
        return []

    async def set_level(self, account: str, market: str, kind: str, price: Decimal) -> None:
        """The trade's stop loss ("sl") or take profit ("tp"), preflighted, receipt checked."""
        pair = self._pairs[market]
        trade = (await self.open_trades(account)).get(market)
        if trade is None:
            raise refusal("NoTradeFound", market)
        index = int(trade["index"])
        sdk, signer = await self._trader_sdk(account)
        trading = sdk.ostium.ostium_trading_contract
        name = "updateSl" if kind == "sl" else "updateTp"
        inner = trading.encode_abi(name, [pair.id, index, int(price * E18)])
        call = trading.functions.delegatedAction(account, inner)
        request = OrderRequest("", account, market, "long", Decimal(0), Decimal(1))
        await self._preflight(sdk, request, pair, signer, call)
        receipt = await self._send(signer, call)
        if receipt["status"] != 1:
            raise VenueRejected("reverted", f"Ostium reverted the {name} of {market}")
