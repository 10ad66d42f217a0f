"""The agent-key vault: trading-only keys Maxxit generates per user and venue, encrypted at
rest with AES-GCM under a master key from the environment (`MAXXIT_MASTER_KEY`).

Each ciphertext names its master key (`master_key_id`), so keys can be rotated: the current
key encrypts, older keys (`MAXXIT_MASTER_KEYS_OLD`) still decrypt until `maxxit vault rotate`
re-encrypts every row. The row's identity (user, venue, address) is bound into the cipher as
associated data: a ciphertext copied onto another row does not decrypt.

Key material never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import insert_ignore
from storage.models import AgentKey

NONCE_BYTES = 12


class VaultError(Exception):
    """A vault problem, described without any key material."""


class MissingMasterKey(VaultError):
    def __init__(self) -> None:
        super().__init__(
            "MAXXIT_MASTER_KEY is not set: live trading needs it to protect agent keys. "
            'Generate one with: python -c "import os, base64; '
            'print(base64.b64encode(os.urandom(32)).decode())"'
        )


@dataclass(frozen=True, slots=True)
class MasterKey:
    key_id: str
    _secret: bytes

    def __repr__(self) -> str:  # never show the key
        return f"MasterKey(key_id={self.key_id!r})"

    @classmethod
    def parse(cls, text: str) -> MasterKey:
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise VaultError("a master key must be 32 bytes, base64-encoded") from None
        if len(raw) != 32:
            raise VaultError("a master key must be 32 bytes, base64-encoded")
        return cls(hashlib.sha256(b"maxxit-master-key:" + raw).hexdigest()[:16], raw)


def agent_aad(user_id: int, venue: str, address: str) -> bytes:
    """What binds a sealed agent key to its row: the same key copied elsewhere fails."""
    return f"maxxit-agent-key:{user_id}:{venue}:{address.lower()}".encode()


class Vault:
    def __init__(self, current: MasterKey, older: tuple[MasterKey, ...] = ()) -> None:
        self.current = current
        self._keys = {k.key_id: k for k in (current, *older)}

    def __repr__(self) -> str:
        return f"Vault(current={self.current.key_id!r}, keys={len(self._keys)})"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Vault:
        env = dict(os.environ) if env is None else env
        current = env.get("MAXXIT_MASTER_KEY", "").strip()
        if not current:
            raise MissingMasterKey()
        older = [t for t in env.get("MAXXIT_MASTER_KEYS_OLD", "").split(",") if t.strip()]
        return cls(MasterKey.parse(current), tuple(MasterKey.parse(t) for t in older))

    def seal(self, secret: bytes, aad: bytes) -> tuple[bytes, str]:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current._secret).encrypt(nonce, secret, aad)
        return nonce + sealed, self.current.key_id

    def open(self, blob: bytes, key_id: str, aad: bytes) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise VaultError(f"agent key sealed under unknown master key {key_id}")
        try:
            return AESGCM(key._secret).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise VaultError("agent key does not decrypt: wrong master key or tampered") from None


async def ensure_agent_key(session: AsyncSession, vault: Vault, user_id: int, venue: str) -> str:
    """The address of the user's agent key on this venue, generated on first use."""
    found = (
        await session.execute(
            select(AgentKey.address).where(AgentKey.user_id == user_id, AgentKey.venue == venue)
        )
    ).scalar()
    if found is not None:
        return found
    account = Account.create()
    blob, key_id = vault.seal(bytes(account.key), agent_aad(user_id, venue, account.address))
    await insert_ignore(
        session,
        AgentKey,
        [
            {
                "user_id": user_id,
                "venue": venue,
                "address": account.address,
                "ciphertext": blob,
                "master_key_id": key_id,
            }
        ],
    )
    # a concurrent request may have won: the stored one is the key
    return (
        await session.execute(
            select(AgentKey.address).where(AgentKey.user_id == user_id, AgentKey.venue == venue)
        )
    ).scalar_one()


async def load_agent(
    session: AsyncSession, vault: Vault, user_id: int, venue: str
) -> LocalAccount | None:
    row = (
        await session.execute(
            select(AgentKey).where(AgentKey.user_id == user_id, AgentKey.venue == venue)
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    secret = vault.open(row.ciphertext, row.master_key_id, agent_aad(user_id, venue, row.address))
    account: LocalAccount = Account.from_key(secret)
    if account.address != row.address:
        raise VaultError(f"agent key of user {user_id} on {venue} does not match its address")
    return account


@dataclass(frozen=True, slots=True)
class Rotation:
    rotated: int
    unreadable: list[int]  # agent_keys ids no known master key opens (left as they are)


async def rotate(session: AsyncSession, vault: Vault) -> Rotation:
    """Re-encrypt every agent key not under the current master key."""
    rows = (
        (
            await session.execute(
                select(AgentKey).where(AgentKey.master_key_id != vault.current.key_id)
            )
        )
        .scalars()
        .all()
    )
    unreadable = []
    for row in rows:
        aad = agent_aad(row.user_id, row.venue, row.address)
        try:
            secret = vault.open(row.ciphertext, row.master_key_id, aad)
        except VaultError:
            unreadable.append(row.id)
            continue
        blob, key_id = vault.seal(secret, aad)
        await session.execute(
            update(AgentKey)
            .where(AgentKey.id == row.id)
            .values(ciphertext=blob, master_key_id=key_id)
        )
    return Rotation(len(rows) - len(unreadable), unreadable)
