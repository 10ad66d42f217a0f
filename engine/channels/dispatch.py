"""Alerts on the channels a user added besides chat (email, webhooks).

`ChannelFanout` wraps the chat transport: when the outbox dispatcher hands it a message, it
first queues one `channel_deliveries` row per confirmed channel of the user that wants that
kind (unique per channel and message, so a retried chat delivery queues nothing twice).
`ChannelDispatcher` sends due rows, with exponential backoff; a webhook that keeps failing is
switched off and its owner told in chat. Chat muting (/settings) applies before the fan-out;
each channel has its own per-kind toggles on top.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.billing_events import ChannelDisabled
from engine.channels.senders import EmailSender, SendFailed, WebhookSender
from engine.notify import Delivery, OutgoingMessage, Transport, wants, write_outbox
from storage.bulk import insert_ignore
from storage.models import ChannelDelivery, NotificationChannel
from storage.types import utcnow

log = logging.getLogger(__name__)

EMAIL, WEBHOOK = "email", "webhook"
CONFIRM_KIND = "email_confirm"  # goes to an unconfirmed address: that is its point
MAX_ATTEMPTS = 8
LEASE = timedelta(seconds=60)

# (kind, payload, language) -> (subject, text), in the user's language (handlers render it)
Render = Callable[[str, dict[str, Any], str], tuple[str, str]]
OpenSecret = Callable[[NotificationChannel], str]


def channel_wants(channel: NotificationChannel, kind: str) -> bool:
    return wants({"alerts": channel.kinds or {}}, kind)


async def queue_confirmation(
    session: AsyncSession, channel_id: int, token: str, url: str, language: str
) -> None:
    await insert_ignore(
        session,
        ChannelDelivery,
        [
            {
                "channel_id": channel_id,
                "dedupe_key": f"confirm:{token}",
                "kind": CONFIRM_KIND,
                "payload": {"url": url},
                "language": language,
                "status": "pending",
            }
        ],
    )


class ChannelFanout:
    """A Transport: queues the message for the user's channels, then hands it to chat."""

    def __init__(self, inner: Transport, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.inner = inner
        self.sessions = sessions
        self.name = inner.name

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        async with self.sessions() as s, s.begin():
            channels = (
                await s.execute(
                    select(NotificationChannel).where(
                        NotificationChannel.user_id == message.user_id,
                        NotificationChannel.confirmed_at.is_not(None),
                        NotificationChannel.disabled_at.is_(None),
                    )
                )
            ).scalars()
            rows = [
                {
                    "channel_id": c.id,
                    "dedupe_key": f"outbox:{message.id}",
                    "kind": message.kind,
                    "payload": message.payload,
                    "language": message.language,
                    "status": "pending",
                }
                for c in channels
                if channel_wants(c, message.kind)
            ]
            await insert_ignore(s, ChannelDelivery, rows)
        return await self.inner.deliver(message)


class ChannelDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        render: Render,
        email: EmailSender | None,
        webhooks: WebhookSender | None,
        clock: Callable[[], datetime] = utcnow,
        disable_after: int = 5,
        backoff_seconds: float = 30.0,
        open_secret: OpenSecret | None = None,
    ) -> None:
        self.sessions = sessions
        # a webhook's signing secret is sealed at rest; this opens it for one request
        # (wallets/vault_webhooks.WebhookSecrets.open; None: webhooks cannot be signed)
        self.open_secret = open_secret
        self.render = render
        self.email = email
        self.webhooks = webhooks
        self.clock = clock
        self.disable_after = disable_after
        self.backoff_seconds = backoff_seconds

    async def _claim(self, limit: int, now: datetime) -> list[ChannelDelivery]:
        due = and_(
            ChannelDelivery.status == "pending",
            or_(ChannelDelivery.next_attempt_at.is_(None), ChannelDelivery.next_attempt_at <= now),
        )
        async with self.sessions() as s, s.begin():
            ids = select(ChannelDelivery.id).where(due).order_by(ChannelDelivery.id).limit(limit)
            if s.bind.dialect.name == "postgresql":
                ids = ids.with_for_update(skip_locked=True)
            claimed = (
                await s.execute(
                    update(ChannelDelivery)
                    .where(ChannelDelivery.id.in_(ids.scalar_subquery()), due)
                    .values(next_attempt_at=now + LEASE)
                    .returning(ChannelDelivery)
                )
            ).scalars()
            rows = sorted(claimed, key=lambda r: r.id)
            s.expunge_all()
        return rows

    async def deliver_pending(self, limit: int = 100) -> int:
        """Send what is due (one at a time: a few per user, rarely many); how many were sent."""
        now = self.clock()
        sent = 0
        for row in await self._claim(limit, now):
            sent += await self._one(row, now)
        return sent

    async def _one(self, row: ChannelDelivery, now: datetime) -> int:
        async with self.sessions() as s:
            channel = await s.get(NotificationChannel, row.channel_id)
        if channel is None or channel.disabled_at is not None:
            await self._finish(row, "dead", now, "channel off")
            return 0
        if row.kind != CONFIRM_KIND and channel.confirmed_at is None:
            await self._finish(row, "dead", now, "not confirmed")
            return 0
        try:
            await self._send(channel, row)
        except SendFailed as exc:
            await self._failed(channel, row, now, exc)
            return 0
        await self._finish(row, "sent", now, None)
        if channel.failures:
            async with self.sessions() as s, s.begin():
                await s.execute(
                    update(NotificationChannel)
                    .where(NotificationChannel.id == channel.id)
                    .values(failures=0)
                )
        return 1

    async def _send(self, channel: NotificationChannel, row: ChannelDelivery) -> None:
        if channel.kind == EMAIL:
            if self.email is None:
                raise SendFailed("email is not configured")
            subject, text = self.render(row.kind, row.payload, row.language)
            await self.email.send(channel.address, subject, text)
        elif channel.kind == WEBHOOK:
            if self.webhooks is None or self.open_secret is None:
                raise SendFailed("webhooks are not configured", permanent=True)
            try:
                secret = self.open_secret(channel)
            except Exception as exc:  # the vault's error names no key material
                raise SendFailed(f"signing secret unavailable: {exc}", permanent=True) from None
            await self.webhooks.send(channel.address, secret, row.id, row.kind, row.payload)
        else:
            raise SendFailed(f"unknown channel kind {channel.kind}", permanent=True)

    async def _finish(self, row: ChannelDelivery, status: str, now: datetime, error: Any) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(ChannelDelivery)
                .where(ChannelDelivery.id == row.id)
                .values(
                    status=status,
                    attempts=row.attempts + 1,
                    sent_at=now if status == "sent" else None,
                    error=error,
                )
            )

    async def _failed(
        self, channel: NotificationChannel, row: ChannelDelivery, now: datetime, exc: SendFailed
    ) -> None:
        attempts = row.attempts + 1
        error = str(exc)[:500]
        log.info("channel %s delivery %s failed: %s", channel.id, row.id, error)
        async with self.sessions() as s, s.begin():
            if exc.permanent or attempts >= MAX_ATTEMPTS:
                values: dict[str, Any] = {"status": "dead"}
            else:
                delay = self.backoff_seconds * 2 ** (attempts - 1)
                values = {"next_attempt_at": now + timedelta(seconds=delay)}
            await s.execute(
                update(ChannelDelivery)
                .where(ChannelDelivery.id == row.id)
                .values(attempts=attempts, error=error, **values)
            )
            if channel.kind != WEBHOOK:
                return
            failures = (
                await s.execute(
                    update(NotificationChannel)
                    .where(NotificationChannel.id == channel.id)
                    .values(failures=NotificationChannel.failures + 1)
                    .returning(NotificationChannel.failures)
                )
            ).scalar_one()
            if failures < self.disable_after:
                return
            # switched off: its queue is dropped, the owner is told in chat
            await s.execute(
                update(NotificationChannel)
                .where(NotificationChannel.id == channel.id)
                .values(disabled_at=now)
            )
            await s.execute(
                update(ChannelDelivery)
                .where(
                    ChannelDelivery.channel_id == channel.id, ChannelDelivery.status == "pending"
                )
                .values(status="dead", error="channel disabled")
            )
            event = ChannelDisabled(channel.user_id, channel.id, channel.address, error[:200])
            await write_outbox(s, [event])
