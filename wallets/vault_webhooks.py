"""Webhook signing secrets at rest: sealed with the vault (wallets/vault.py: AES-GCM under the
master key from the environment), like agent keys. The row's identity (channel id, owner,
URL) is bound in as associated data, so a sealed secret copied onto another row, or left on a
row whose URL changed, does not open. The plaintext exists only when a webhook is added (shown
to its owner once) and in memory while a request is signed; it is never logged."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import NotificationChannel
from wallets.vault import Rotation, Vault, VaultError


def webhook_aad(channel_id: int, user_id: int, address: str) -> bytes:
    return f"maxxit-webhook-secret:{channel_id}:{user_id}:{address}".encode()


def _aad(channel: NotificationChannel) -> bytes:
    return webhook_aad(channel.id, channel.user_id, channel.address)


def seal_secret(vault: Vault, channel: NotificationChannel, secret: str) -> None:
    """Store `secret` sealed on the channel (its id must be known: flush it first)."""
    if channel.id is None:
        raise VaultError("a webhook secret is sealed to its row: the row needs its id first")
    channel.secret_sealed, channel.secret_key_id = vault.seal(secret.encode(), _aad(channel))


class WebhookSecrets:
    """Opens a channel's secret for signing (engine/channels/dispatch.py holds one of these
    as a plain callable: the engine never sees the vault)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def __repr__(self) -> str:
        return f"WebhookSecrets({self._vault!r})"

    def open(self, channel: NotificationChannel) -> str:
        if channel.secret_sealed is None or channel.secret_key_id is None:
            raise VaultError(f"webhook {channel.id} has no sealed secret")
        return self._vault.open(
            channel.secret_sealed, channel.secret_key_id, _aad(channel)
        ).decode()


async def rotate_webhook_secrets(session: AsyncSession, vault: Vault) -> Rotation:
    """Re-seal every webhook secret not under the current master key (`maxxit vault rotate`)."""
    rows = (
        (
            await session.execute(
                select(NotificationChannel).where(
                    NotificationChannel.secret_sealed.is_not(None),
                    NotificationChannel.secret_key_id != vault.current.key_id,
                )
            )
        )
        .scalars()
        .all()
    )
    unreadable = []
    for row in rows:
        try:
            secret = vault.open(row.secret_sealed, row.secret_key_id, _aad(row))  # type: ignore[arg-type]
        except VaultError:
            unreadable.append(row.id)
            continue
        blob, key_id = vault.seal(secret, _aad(row))
        await session.execute(
            update(NotificationChannel)
            .where(NotificationChannel.id == row.id)
            .values(secret_sealed=blob, secret_key_id=key_id)
        )
    return Rotation(len(rows) - len(unreadable), unreadable)
