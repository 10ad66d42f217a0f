"""`maxxit vault rotate-agent-key USER VENUE`: start rotating one user's agent key. The user
gets a chat message with the connect page's link to approve the new key (Hyperliquid:
approveAgent; Ostium: setDelegate from their wallet or Safe); until they do, the old key trades
as before, and once they do, the new key replaces it here and at the venue
(wallets/key_rotation.py, wallets/ostium_rotation.py)."""

from __future__ import annotations

import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from engine.events import AgentKeyRotating
from engine.notify import write_outbox
from storage.audit import write_audit
from storage.db import create_engine, resolve_url, session_factory
from storage.migrate import upgrade
from storage.models import AgentKey, Identity, User
from storage.types import utcnow
from wallets import key_rotation, siwe_link
from wallets.vault import Vault, VaultError

ROTATABLE = ("HYPERLIQUID", "OSTIUM")
# the connect page's section where the user approves the new key
PAGE_SECTION = {"HYPERLIQUID": "hl", "OSTIUM": "ost"}


async def _user_id(session: AsyncSession, who: str) -> int | None:
    platform, _, external = who.partition(":")
    if external:
        return (
            await session.execute(
                select(Identity.user_id).where(
                    Identity.platform == platform, Identity.external_id == external
                )
            )
        ).scalar()
    if not who.isdigit():
        return None
    return (await session.execute(select(User.id).where(User.id == int(who)))).scalar()


async def rotate_agent_key(settings: Settings, who: str | None, venue: str | None) -> int:
    if not who or not venue:
        print("usage: maxxit vault rotate-agent-key USER VENUE", file=sys.stderr)
        return 2
    venue = venue.upper()
    if venue not in ROTATABLE:
        print(f"error: only {', '.join(ROTATABLE)} agent keys rotate", file=sys.stderr)
        return 2
    try:
        vault = Vault.from_env(settings.vault_env())
    except VaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    try:
        async with session_factory(db)() as s:
            user_id = await _user_id(s, who)
        if user_id is None:
            print(f"error: no user {who}", file=sys.stderr)
            return 1
        approved = None
        if venue == "OSTIUM":  # approved means: the chain names the current key the delegate
            approved = await _ostium_delegated(settings, session_factory(db), user_id)
            if isinstance(approved, str):
                print(f"error: {approved}", file=sys.stderr)
                return 2
        async with session_factory(db)() as s, s.begin():
            now = utcnow()
            started = await key_rotation.start(s, vault, user_id, venue, now, approved)
            if isinstance(started, str):
                print(f"error: nothing to rotate ({started})", file=sys.stderr)
                return 1
            token = await siwe_link.start_link(s, user_id, now)
            link = f"{settings.public_base()}/connect?t={token}&{PAGE_SECTION[venue]}=1"
            await write_outbox(s, [AgentKeyRotating(user_id, started.new_address, link, venue)])
            await write_audit(
                s, user_id, "rotate_agent_key_requested", "cli", f"agent:{venue}",
                old_agent=started.old_address, new_agent=started.new_address, by="operator",
            )  # fmt: skip
    finally:
        await db.dispose()
    print(f"new agent {started.new_address} for user {user_id} on {venue}, waiting for approval")
    if venue == "OSTIUM":  # it signs its own transactions on Arbitrum from the switch on
        print(f"fund {started.new_address} with ETH for gas on Arbitrum, as the first key was")
    print(f"the user was sent the approval link (valid {siwe_link.LINK_TTL}): {link}")
    return 0


async def _ostium_delegated(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], user_id: int
) -> bool | str:
    """Whether the chain names the user's current Ostium key their wallet's delegate (read
    outside any transaction), or why it cannot be told."""
    from bot.ostium_trading import delegation_reader

    reader = delegation_reader(settings)
    if reader is None:
        return "Ostium live trading is not configured (OSTIUM_RPC_URL)"
    async with sessions() as s:
        wallet = await siwe_link.linked_wallet(s, user_id)
        agent = (
            await s.execute(
                select(AgentKey.address).where(
                    AgentKey.user_id == user_id, AgentKey.venue == "OSTIUM"
                )
            )
        ).scalar()
    if wallet is None or agent is None:
        return False  # start() says there is nothing to rotate when there is no key
    try:
        return (await reader.state(wallet.address)).delegated_to(agent)
    except Exception as exc:
        return f"the Ostium chain is unreachable ({exc!r})"
