"""Linking a wallet with Sign-In with Ethereum (EIP-4361), verified with the `siwe` package.

/link issues a short-lived link token bound to the chat user. The connect page (or the chat,
for wallets without a browser) asks for a nonce with the wallet's address and gets the exact
message to sign; the signed message comes back and is checked for domain, chain, nonce
(single use, bound to the token's user), expiry, not-before and signature, each refusal with
its own reason. Only then is the address linked, checksummed.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_utils import is_address, to_checksum_address
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import accounts
from storage.models import SiweNonce, Wallet

with warnings.catch_warnings():  # its ABNF grammar warns about redefined core rules
    warnings.simplefilter("ignore")
    import siwe

LINK_TTL = timedelta(minutes=15)
MESSAGE_TTL = timedelta(minutes=10)
STATEMENT = "Link this wallet to Maxxit. This signature cannot move funds or trade."


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    ok: bool
    reason: str  # "linked" or why not (a stable code the handlers put into words)
    user_id: int | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class SiweConfig:
    domain: str  # our public host (and port), e.g. "maxxit.example.com"
    uri: str  # the connect page
    chain_ids: frozenset[int] = frozenset({1, 42161})


def _token() -> str:
    return secrets.token_urlsafe(24)


async def start_link(session: AsyncSession, user_id: int, now: datetime) -> str:
    """A one-time link token for this user (the /link reply carries it)."""
    token = _token()
    session.add(
        SiweNonce(
            nonce=siwe.generate_nonce(),
            user_id=user_id,
            link_token=token,
            expires_at=now + LINK_TTL,
        )
    )
    await session.flush()
    return token


async def _link_row(session: AsyncSession, token: str | None) -> SiweNonce | None:
    """The row /link wrote for this token (the first of its rows); its `used_at` is the
    token's one-time state, and it expires with the token."""
    if not token or len(token) > 64:
        return None
    return (
        await session.execute(
            select(SiweNonce).where(SiweNonce.link_token == token).order_by(SiweNonce.id).limit(1)
        )
    ).scalar_one_or_none()


async def _token_spent(session: AsyncSession, token: str | None) -> bool:
    """A link is one-time: once a wallet was linked through it, it links nothing more."""
    row = await _link_row(session, token)
    return row is not None and row.used_at is not None


async def token_owner(session: AsyncSession, token: str, now: datetime) -> int | None:
    """The user a link token belongs to, while it is valid: unexpired and never used."""
    row = await _link_row(session, token)
    if row is None or row.expires_at <= now or row.used_at is not None:
        return None
    return row.user_id


async def spend_token(session: AsyncSession, token: str, now: datetime) -> int | None:
    """Use the link token: one atomic transition (unused -> used) that exactly one caller
    wins, whatever the timing; the user it was for, or None for the losers and for a token
    that expired. The row lock (PostgreSQL) or the write lock (SQLite) orders the racers."""
    link = await _link_row(session, token)
    if link is None:
        return None
    won = await session.execute(
        update(SiweNonce)
        .where(SiweNonce.id == link.id, SiweNonce.used_at.is_(None), SiweNonce.expires_at > now)
        .values(used_at=now)
        .returning(SiweNonce.user_id)
    )
    return won.scalar()


async def purge_expired(session: AsyncSession, now: datetime) -> int:
    """Delete nonces and link tokens past their expiry (they authorise nothing any more)."""
    gone = await session.execute(delete(SiweNonce).where(SiweNonce.expires_at <= now))
    return int(gone.rowcount or 0)  # type: ignore[attr-defined]


def build_message(
    config: SiweConfig, address: str, chain_id: int, nonce: str, now: datetime
) -> str:
    message = siwe.SiweMessage(
        domain=config.domain,
        address=address,
        statement=STATEMENT,
        uri=config.uri,
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        expiration_time=(now + MESSAGE_TTL).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )
    return message.prepare_message()


async def issue_message(
    session: AsyncSession,
    config: SiweConfig,
    token: str,
    address: str,
    chain_id: int,
    now: datetime,
) -> tuple[str, str] | str:
    """(nonce, message to sign) for the token's user, or a refusal reason."""
    link = await _link_row(session, token)
    if link is None or link.expires_at <= now:
        return "link_expired"
    if link.used_at is not None:
        return "link_used"
    user_id = link.user_id
    if not is_address(address):
        return "bad_address"
    if chain_id not in config.chain_ids:
        return "wrong_chain"
    nonce = siwe.generate_nonce()
    session.add(
        SiweNonce(nonce=nonce, user_id=user_id, link_token=token, expires_at=now + MESSAGE_TTL)
    )
    await session.flush()
    return nonce, build_message(config, to_checksum_address(address), chain_id, nonce, now)


async def verify_and_link(
    session: AsyncSession,
    config: SiweConfig,
    message: str,
    signature: str,
    now: datetime,
    token: str | None = None,
) -> LinkOutcome:
    """Check everything, consume the nonce, link the address. Nothing changes on a refusal."""
    try:
        parsed = siwe.SiweMessage.from_message(message[:4000])
    except Exception:  # the parser raises several types for malformed text
        return LinkOutcome(False, "malformed")
    if parsed.domain != config.domain:
        return LinkOutcome(False, "wrong_domain")
    if parsed.uri != config.uri:  # signed for another page: not our connect page's message
        return LinkOutcome(False, "wrong_uri")
    if parsed.chain_id not in config.chain_ids:
        return LinkOutcome(False, "wrong_chain")
    row = (
        await session.execute(select(SiweNonce).where(SiweNonce.nonce == parsed.nonce))
    ).scalar_one_or_none()
    if row is None or (token is not None and row.link_token != token):
        return LinkOutcome(False, "unknown_nonce")
    if row.used_at is not None:
        return LinkOutcome(False, "nonce_used")
    if await _token_spent(session, row.link_token):  # another message of this link was used
        return LinkOutcome(False, "link_used")
    if row.expires_at <= now:
        return LinkOutcome(False, "expired")
    try:
        parsed.verify(signature.strip(), domain=config.domain, nonce=row.nonce, timestamp=now)
    except siwe.ExpiredMessage:
        return LinkOutcome(False, "expired")
    except siwe.NotYetValidMessage:
        return LinkOutcome(False, "not_yet_valid")
    except siwe.DomainMismatch:
        return LinkOutcome(False, "wrong_domain")
    except siwe.NonceMismatch:
        return LinkOutcome(False, "unknown_nonce")
    except Exception:  # InvalidSignature, or a signature that is not even hex
        return LinkOutcome(False, "bad_signature")
    if row.link_token is None or await spend_token(session, row.link_token, now) is None:
        return LinkOutcome(False, "link_used")  # a concurrent verify of this link won
    used = await session.execute(
        update(SiweNonce)
        .where(SiweNonce.id == row.id, SiweNonce.used_at.is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent verify won
        return LinkOutcome(False, "nonce_used")
    address = to_checksum_address(parsed.address)
    return await _link(session, row.user_id, address, parsed.chain_id, now)


async def _link(
    session: AsyncSession, user_id: int, address: str, chain_id: int, now: datetime
) -> LinkOutcome:
    existing = (
        await session.execute(select(Wallet).where(Wallet.address == address))
    ).scalar_one_or_none()
    if existing is not None and existing.unlinked_at is None and existing.user_id != user_id:
        # the signer proved they hold a wallet another account of theirs linked (Telegram and
        # Discord, say): this chat account joins that one, if it holds nothing of its own
        if await accounts.join(session, user_id, existing.user_id) == "joined":
            return LinkOutcome(True, "joined", existing.user_id, address)
        return LinkOutcome(False, "address_taken", user_id, address)
    # one linked wallet per user: a new link replaces the previous one
    await session.execute(
        update(Wallet)
        .where(Wallet.user_id == user_id, Wallet.unlinked_at.is_(None), Wallet.address != address)
        .values(unlinked_at=now)
    )
    if existing is None:
        session.add(Wallet(user_id=user_id, address=address, chain_id=chain_id))
    else:
        existing.user_id, existing.chain_id, existing.unlinked_at = user_id, chain_id, None
    await session.flush()
    return LinkOutcome(True, "linked", user_id, address)


async def linked_wallet(session: AsyncSession, user_id: int) -> Wallet | None:
    return (
        await session.execute(
            select(Wallet).where(Wallet.user_id == user_id, Wallet.unlinked_at.is_(None))
        )
    ).scalar_one_or_none()


async def unlink(session: AsyncSession, user_id: int, now: datetime) -> str | None:
    wallet = await linked_wallet(session, user_id)
    if wallet is None:
        return None
    wallet.unlinked_at = now
    return wallet.address
