"""Ostium's two-step orders: one row per order we asked Ostium for, written before the
transaction is sent, so a crash at any point is resolved from the chain without sending twice
(engine/venues/ostium_requests.py): the signer's nonce tells whether the transaction was ever
mined; the order id, once known, which settlement event ended it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import Money


class OstiumRequest(CreatedAt, Base):
    __tablename__ = "ostium_requests"
    client_order_id: Mapped[str] = mapped_column(String(34), primary_key=True)
    action: Mapped[str] = mapped_column(String(8))  # "open" | "close"
    trader: Mapped[str] = mapped_column(String(64))
    signer: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[int] = mapped_column(BigInteger)  # the signer's nonce the transaction uses
    from_block: Mapped[int] = mapped_column(BigInteger)
    pair_index: Mapped[int] = mapped_column(Integer)
    trade_index: Mapped[int] = mapped_column(Integer, default=0)
    # a close: the size it closes (asset units; the whole trade or its share), for the fill
    size: Mapped[Decimal | None] = mapped_column(Money)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    order_id: Mapped[str | None] = mapped_column(String(78))  # Ostium's, once known


class SignerNonce(Base):
    """The next nonce of a signing key, shared by every replica (engine/venues/ostium_nonces.py):
    claimed one at a time with an atomic UPDATE ... RETURNING, never read-then-written, so two
    replicas sending for one agent key never pick the same nonce; raised to the chain's pending
    nonce when the chain is ahead (the key used elsewhere), lowered to it to close a gap."""

    __tablename__ = "signer_nonces"
    signer: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
