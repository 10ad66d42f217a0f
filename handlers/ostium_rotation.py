"""Finishing an Ostium agent-key rotation (wallets/ostium_rotation.py has why it is one
`setDelegate(new)` from the trader's wallet): once the trading contract names the new key the
trader's delegate, it replaces the old one here in one guarded transaction (a second caller,
on this replica or another, finds it done), with its audit row and the user's "done" message.

Whoever sees the chain first finishes it: the connect page after the wallet sent the
transaction, /wallet, the scheduled check (a Safe's transaction signed later in the Safe app),
or the Ostium venue itself before it signs (bot/ostium_trading.signer_lookup), so no order and
no stop move is ever signed with a key the chain no longer accepts."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.events import AgentKeyRotated
from engine.notify import write_outbox
from handlers.base import Services
from storage.audit import write_audit
from wallets import key_rotation, ostium_rotation, siwe_link

VENUE = "OSTIUM"
log = logging.getLogger(__name__)

DelegateOf = Callable[[str], Awaitable[str | None]]


async def finish(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    rotation_id: int,
    user_id: int,
    trader: str,
    transport: str,
) -> key_rotation.Started | None:
    """The chain names the new key: swap it in, on the record, and tell the user."""
    async with sessions() as s, s.begin():
        swapped = await key_rotation.complete(s, rotation_id, now)
        if swapped is None:
            return None  # another caller finished it
        await write_outbox(
            s, [AgentKeyRotated(user_id, VENUE, swapped.new_address, swapped.old_address)]
        )
        await write_audit(
            s, user_id, "rotate_agent_key", transport, f"agent:{VENUE}",
            old_agent=swapped.old_address, new_agent=swapped.new_address, account=trader,
        )  # fmt: skip
    log.info("ostium agent key of user %s rotated to %s", user_id, swapped.new_address)
    return swapped


async def switch_if_delegated(
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    user_id: int,
    trader: str,
    delegate_of: DelegateOf,
    transport: str,
) -> str:
    """A reason code: "rotated", "waiting" (the chain still names the old key) or
    "no_rotation". The chain is read outside any transaction, and only while a rotation
    waits (this runs before every Ostium signature)."""
    async with sessions() as s:
        rotation = await key_rotation.pending(s, user_id, VENUE)
    if rotation is None:
        return "no_rotation"
    if not ostium_rotation.switched(await delegate_of(trader), rotation.new_address):
        return "waiting"
    await finish(sessions, clock(), rotation.id, user_id, trader, transport)
    return "rotated"


async def confirm(services: Services, user_id: int, transport: str) -> str:
    """For the connect page and /wallet: a reason code (see switch_if_delegated), or
    "live_off", "no_wallet", "chain_unreachable"."""
    if services.vault is None or services.ostium is None:
        return "live_off"
    async with services.sessions() as s:
        wallet = await siwe_link.linked_wallet(s, user_id)
    if wallet is None:
        return "no_wallet"

    async def delegate_of(trader: str) -> str | None:
        return (await services.ostium.state(trader)).delegate  # type: ignore[no-any-return]

    try:
        verdict = await switch_if_delegated(
            services.sessions, services.clock, user_id, wallet.address, delegate_of, transport
        )
        if verdict == "no_rotation":  # finished already by another caller?
            async with services.sessions() as s:
                done_to = await ostium_rotation.last_rotated_to(s, user_id)
            if done_to and ostium_rotation.switched(await delegate_of(wallet.address), done_to):
                verdict = "rotated"
        return verdict
    except Exception as exc:
        log.warning("ostium delegate of %s unavailable: %r", wallet.address, exc)
        return "chain_unreachable"


async def switch_all(
    sessions: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
    delegate_of: DelegateOf,
) -> int:
    """The scheduled check: every waiting rotation whose new key the chain names is finished.
    Returns how many this call finished."""
    async with sessions() as s:
        rows = await ostium_rotation.waiting(s)
    done = 0
    for row in rows:
        try:
            delegate = await delegate_of(row.trader)
        except Exception as exc:  # the node is down: the next run reads again
            log.warning("ostium delegate of %s unavailable: %r", row.trader, exc)
            continue
        if ostium_rotation.switched(delegate, row.new_address):
            finished = await finish(
                sessions, clock(), row.rotation_id, row.user_id, row.trader, "chain"
            )
            done += finished is not None
    return done
