"""The journal of orders asked of Ostium (storage: ostium_requests), and what it tells after a
crash. A market order is two steps on Ostium: our transaction asks for a price (and gets an
order id), a keeper fills or cancels it later. Ostium has no client order id, so the row,
written after the transaction is signed and before it is broadcast, holds what finds the order
again: the signer, the nonce claimed for it (engine/venues/ostium_nonces.py), the signed
transaction's hash, the block it went out after, and the order id once the receipt gave it.

The look-up (engine/venues/ostium_recovery.py) turns a row into an OrderState without ever
allowing a second send of an order that reached the chain: no row, or a hash the node never
saw (never broadcast, or its nonce went to another transaction, so it can never be mined):
UNKNOWN; a transaction waiting in the mempool, or an order id with no settlement yet: OPEN;
settled: FILLED or CANCELED. Rows journaled before the hash was are found by signer and nonce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import OstiumRequest
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class Request:
    client_order_id: str
    action: str  # "open" | "close"
    trader: str
    signer: str
    nonce: int
    from_block: int
    pair_index: int
    trade_index: int = 0
    size: Decimal | None = None
    order_id: int | None = None
    tx_hash: str | None = None
    created_at: datetime | None = None


class RequestJournal:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def write(self, r: Request) -> None:
        """Before the send (again, for a resend of an order the chain never saw)."""
        async with self.sessions() as s, s.begin():
            await s.merge(
                OstiumRequest(
                    client_order_id=r.client_order_id,
                    action=r.action,
                    trader=r.trader,
                    signer=r.signer,
                    nonce=r.nonce,
                    from_block=r.from_block,
                    pair_index=r.pair_index,
                    trade_index=r.trade_index,
                    size=r.size,
                    tx_hash=r.tx_hash,  # signed, not yet broadcast: the journal comes first
                    order_id=None,
                    created_at=utcnow(),
                )
            )

    async def sent(self, client_order_id: str, tx_hash: str, order_id: int | None) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(OstiumRequest)
                .where(OstiumRequest.client_order_id == client_order_id)
                .values(tx_hash=tx_hash, order_id=None if order_id is None else str(order_id))
            )

    async def get(self, client_order_id: str) -> Request | None:
        async with self.sessions() as s:
            row = await s.get(OstiumRequest, client_order_id)
            if row is None:
                return None
            return Request(
                row.client_order_id,
                row.action,
                row.trader,
                row.signer,
                int(row.nonce),
                int(row.from_block),
                row.pair_index,
                row.trade_index,
                row.size,
                None if row.order_id is None else int(row.order_id),
                row.tx_hash,
                row.created_at,
            )
