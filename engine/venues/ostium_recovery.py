"""After a crash, or while Ostium's keeper has not answered: what became of an order we may
have sent (engine/venues/ostium_requests.py has the journal's rules), and the market-timeout
call for an order stuck past Ostium's timeout. Part of OstiumVenue (engine/venues/ostium.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from engine.venues.base import Fill, OrderLookup, OrderState, VenueRejected
from engine.venues.ostium_requests import Request

log = logging.getLogger(__name__)


class OstiumRecovery:
    journal: Any
    config: Any

    # provided by OstiumVenue
    async def chain(self) -> Any: ...
    async def reader(self) -> Any: ...
    async def _trader_sdk(self, account: str) -> Any: ...
    async def _send(self, signer: Any, call: Any) -> Any: ...
    async def _key_rotated_since(self, trader: str, signed_by: str) -> bool: ...
    def _fill(self, cloid: str, order_id: int, s: Any, request: Request) -> Fill: ...

    async def find_order(self, account: str, client_order_id: str) -> Fill | None:
        found = await self.look_up(account, client_order_id)
        if found.state == OrderState.CANCELED:
            raise VenueRejected("not_filled", found.detail)
        return found.fill if found.state == OrderState.FILLED else None

    async def look_up(self, account: str, client_order_id: str) -> OrderLookup:
        request = await self.journal.get(client_order_id)
        if request is None:
            return OrderLookup(OrderState.UNKNOWN)
        chain = await self.chain()
        order_id = request.order_id
        if order_id is None and request.tx_hash:
            # the signed transaction's hash was journaled before its broadcast
            state, order_id = await asyncio.to_thread(chain.transaction_state, request.tx_hash)
            if state == "pending":
                return OrderLookup(OrderState.OPEN, detail="in the mempool")
            if state == "unknown":
                # never broadcast, or its nonce went to another transaction: it can never be
                # mined, and a resend (with a newly claimed nonce) is safe
                return OrderLookup(OrderState.UNKNOWN)
            if order_id is None:
                if await self._key_rotated_since(account, request.signer):
                    # reverted because a key rotation switched keys first: it can never
                    # fill, and the new key may send the order again
                    return OrderLookup(OrderState.UNKNOWN)
                return OrderLookup(OrderState.CANCELED, detail="the transaction reverted")
            await self.journal.sent(client_order_id, request.tx_hash, order_id)
        elif order_id is None:  # a row journaled before the hash was (nonce and pair only)
            mined, order_id = await asyncio.to_thread(
                chain.mined_with_nonce,
                request.signer,
                request.trader,
                request.nonce,
                request.from_block,
                request.pair_index,
            )
            if not mined:
                pending = await asyncio.to_thread(chain.pending_nonce, request.signer)
                if pending > request.nonce:
                    return OrderLookup(OrderState.OPEN, detail="in the mempool")
                return OrderLookup(OrderState.UNKNOWN)  # never broadcast: a resend is safe
            if order_id is None:
                return OrderLookup(OrderState.CANCELED, detail="the transaction reverted")
            await self.journal.sent(client_order_id, request.tx_hash or "", order_id)
        settled = await asyncio.to_thread(chain.settlement, order_id, request.from_block)
        if settled is None:
            await self._end_if_stuck(account, request, order_id)
            return OrderLookup(OrderState.OPEN, detail=f"order {order_id} waits for the keeper")
        try:
            fill = self._fill(client_order_id, order_id, settled, request)
        except VenueRejected as exc:
            return OrderLookup(OrderState.CANCELED, detail=str(exc))
        return OrderLookup(OrderState.FILLED, fill, f"order {order_id}")

    async def _end_if_stuck(self, account: str, request: Request, order_id: int) -> None:
        """Past Ostium's market timeout and our patience: the timeout call ends the order
        (an open's collateral returns; a close is dropped, the trade stays open)."""
        reader = await self.reader()
        w3, trading = reader.w3, reader.ostium.ostium_trading_contract

        def due() -> bool:
            timeout = trading.functions.marketOrdersTimeout().call()
            return w3.eth.block_number >= request.from_block + 1 + timeout

        age = time.time() - self._sent_at(request)
        if age < self.config.stuck_after or not await asyncio.to_thread(due):
            return
        _, signer = await self._trader_sdk(account)
        if request.action == "open":
            inner = trading.encode_abi("openTradeMarketTimeout", [order_id])
        else:
            inner = trading.encode_abi("closeTradeMarketTimeout", [order_id, False])
        try:
            receipt = await self._send(signer, trading.functions.delegatedAction(account, inner))
        except Exception as exc:
            log.warning("ostium: timing out order %s failed: %r", order_id, exc)
            return
        if receipt["status"] != 1:
            log.warning("ostium: the timeout call for order %s reverted", order_id)

    def _sent_at(self, request: Request) -> float:
        return request.created_at.timestamp() if request.created_at else 0.0
