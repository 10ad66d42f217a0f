"""Rotating Maxxit's Ostium agent key (the steps common to every venue are in
wallets/key_rotation.py; this is what is Ostium's own).

Ostium keeps one delegate per trader (`delegations(trader)` on the trading contract), so the
user's approval of the new key is a single transaction from the trader's wallet (or their
Safe): `setDelegate(new)`. It replaces the old key in the same write: from the block it is
mined, the old key's `delegatedAction` reverts (NotDelegate) and the new key's runs as the
trader. Nothing else moves: the trades, their stop loss and take profit, and the USDC allowance
belong to the trader, not to the key, so Ostium's automation keeps guarding them throughout,
and no `removeDelegate` is needed (it would leave the trader with no delegate at all).

The switch here follows the chain, never the other way round: the new key replaces the old
one in agent_keys only once the trading contract names it the delegate (`switched`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from web3 import AsyncWeb3

from storage.models import AgentKeyRotation, Wallet
from wallets.ostium_delegation import (
    Contracts,
    UnsignedTx,
    safe_set_delegate_tx,
    set_delegate_tx,
)
from wallets.safe import SafeTxRequest

VENUE = "OSTIUM"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A rotation waiting for the chain: whose, and the trader whose delegate to read."""

    rotation_id: int
    user_id: int
    new_address: str
    trader: str


def rotation_txs(contracts: Contracts, new_agent: str) -> list[UnsignedTx]:
    """What the trader's wallet sends to approve the new key (and so revoke the old one)."""
    return [set_delegate_tx(contracts, new_agent)]


async def safe_rotation_txs(
    w3: AsyncWeb3, safe: str, contracts: Contracts, new_agent: str
) -> list[SafeTxRequest]:
    """The same for a Safe that is the trader: one Safe transaction for its owners to sign in
    their Safe app."""
    return [await safe_set_delegate_tx(w3, safe, contracts, new_agent)]


def switched(delegate: str | None, new_address: str) -> bool:
    """The chain names the new key the trader's delegate."""
    return delegate is not None and delegate.lower() == new_address.lower()


async def last_rotated_to(session: AsyncSession, user_id: int) -> str | None:
    """The new key of the user's newest finished rotation (for a page asking after the switch
    whether it is done)."""
    return (
        await session.execute(
            select(AgentKeyRotation.new_address)
            .where(
                AgentKeyRotation.user_id == user_id,
                AgentKeyRotation.venue == VENUE,
                AgentKeyRotation.completed_at.is_not(None),
            )
            .order_by(AgentKeyRotation.id.desc())
            .limit(1)
        )
    ).scalar()


async def waiting(session: AsyncSession) -> list[Waiting]:
    """Every Ostium rotation not yet switched, with the linked wallet that is the trader."""
    rows = await session.execute(
        select(
            AgentKeyRotation.id,
            AgentKeyRotation.user_id,
            AgentKeyRotation.new_address,
            Wallet.address,
        )
        .join(Wallet, Wallet.user_id == AgentKeyRotation.user_id)
        .where(
            AgentKeyRotation.venue == VENUE,
            AgentKeyRotation.completed_at.is_(None),
            AgentKeyRotation.cancelled_at.is_(None),
            Wallet.unlinked_at.is_(None),
        )
        .order_by(AgentKeyRotation.id)
    )
    return [Waiting(*r) for r in rows.all()]
