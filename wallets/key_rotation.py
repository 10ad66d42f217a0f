"""Rotating a user's agent key on a venue without a gap.

1. `start`: a new key is generated and sealed into agent_key_rotations; the old key in
   agent_keys keeps trading (and moving stops) meanwhile.
2. The user approves the new key on the connect page (Hyperliquid `approveAgent` under the
   same agent name, which is what revokes the old key at the venue: Hyperliquid keeps one
   agent per name and account; Ostium `setDelegate(new)` from the trader's wallet or Safe,
   which replaces the one delegate a trader has: wallets/ostium_rotation.py).
3. `complete`: once the venue lists the new key, one transaction swaps it into agent_keys.
   Protective orders rest on the venue under the user's account, not the agent's, so they
   stay where they are throughout; the new key moves and cancels them from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eth_account import Account
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AgentKey, AgentKeyRotation
from wallets.vault import Vault, agent_aad, ensure_agent_key


@dataclass(frozen=True, slots=True)
class Started:
    old_address: str
    new_address: str


async def pending(session: AsyncSession, user_id: int, venue: str) -> AgentKeyRotation | None:
    return (
        await session.execute(
            select(AgentKeyRotation)
            .where(
                AgentKeyRotation.user_id == user_id,
                AgentKeyRotation.venue == venue,
                AgentKeyRotation.completed_at.is_(None),
                AgentKeyRotation.cancelled_at.is_(None),
            )
            .order_by(AgentKeyRotation.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def key_to_approve(
    session: AsyncSession, vault: Vault, user_id: int, venue: str
) -> tuple[str, bool]:
    """The agent key the user's wallet should approve on the venue, and whether it is a
    rotation's: a pending rotation's new key, else the current one (made on first use)."""
    rotation = await pending(session, user_id, venue)
    if rotation is not None:
        return rotation.new_address, True
    return await ensure_agent_key(session, vault, user_id, venue), False


async def start(
    session: AsyncSession,
    vault: Vault,
    user_id: int,
    venue: str,
    now: datetime,
    approved: bool | None = None,
) -> Started | str:
    """A new key waiting for the user's approval, or why not ("no_agent": nothing to
    rotate; "not_approved": the current key was never approved, so approving it is enough).
    `approved`: the venue's own answer where agent_keys does not record it (Ostium: the
    chain's delegate); None reads agent_keys.approved_at (Hyperliquid)."""
    current = (
        await session.execute(
            select(AgentKey).where(AgentKey.user_id == user_id, AgentKey.venue == venue)
        )
    ).scalar_one_or_none()
    if current is None:
        return "no_agent"
    if not (current.approved_at is not None if approved is None else approved):
        return "not_approved"
    # a rotation asked for earlier and never approved is replaced by this one
    await session.execute(
        update(AgentKeyRotation)
        .where(
            AgentKeyRotation.user_id == user_id,
            AgentKeyRotation.venue == venue,
            AgentKeyRotation.completed_at.is_(None),
            AgentKeyRotation.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
    )
    account = Account.create()
    blob, key_id = vault.seal(bytes(account.key), agent_aad(user_id, venue, account.address))
    session.add(
        AgentKeyRotation(
            user_id=user_id,
            venue=venue,
            old_address=current.address,
            new_address=account.address,
            ciphertext=blob,
            master_key_id=key_id,
        )
    )
    await session.flush()
    return Started(current.address, account.address)


async def complete(session: AsyncSession, rotation_id: int, now: datetime) -> Started | None:
    """Swap the approved new key in; None if another caller already did (or it was
    replaced). One guarded transition: a second confirm finds it completed."""
    won = (
        await session.execute(
            update(AgentKeyRotation)
            .where(
                AgentKeyRotation.id == rotation_id,
                AgentKeyRotation.completed_at.is_(None),
                AgentKeyRotation.cancelled_at.is_(None),
            )
            .values(completed_at=now)
            .returning(
                AgentKeyRotation.user_id,
                AgentKeyRotation.venue,
                AgentKeyRotation.old_address,
                AgentKeyRotation.new_address,
                AgentKeyRotation.ciphertext,
                AgentKeyRotation.master_key_id,
            )
        )
    ).one_or_none()
    if won is None:
        return None
    await session.execute(
        update(AgentKey)
        .where(AgentKey.user_id == won.user_id, AgentKey.venue == won.venue)
        .values(
            address=won.new_address,
            ciphertext=won.ciphertext,
            master_key_id=won.master_key_id,
            approved_at=now,
        )
    )
    return Started(won.old_address, won.new_address)
