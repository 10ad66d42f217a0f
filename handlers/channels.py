"""/email and /webhook: alerts by email (opt-in, confirmed through a link sent to the
address) and to a user's HTTPS webhook (signed; its secret shown once), each with per-kind
toggles; and what those channels say (`channel_text`)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import select

from engine.channels.dispatch import CONFIRM_KIND, EMAIL, WEBHOOK, queue_confirmation
from engine.net.safe_http import SafeFetcher, UnsafeURL
from engine.notify import ALERT_DEFAULTS, wants
from handlers import callbacks
from handlers.alerts import render
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.i18n import t
from storage.models import NotificationChannel
from storage.types import utcnow
from wallets.vault_webhooks import seal_secret

MAX_WEBHOOKS = 3
_EMAIL = r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,200}\.[A-Za-z]{2,24}$"


def channel_text(kind: str, payload: dict[str, Any], language: str) -> tuple[str, str]:
    """(subject, body) of an email."""
    if kind == CONFIRM_KIND:
        return t(language, "email.confirm_subject"), t(language, "email.confirm_body", **payload)
    body = render(kind, payload, language)
    return body.split("\n", 1)[0][:120], body + "\n\n" + t(language, "email.footer")


async def _mine(ctx: Ctx, kind: str) -> list[NotificationChannel]:
    async with ctx.services.sessions() as s:
        rows = await s.execute(
            select(NotificationChannel)
            .where(NotificationChannel.user_id == ctx.user_id, NotificationChannel.kind == kind)
            .order_by(NotificationChannel.id)
        )
        return list(rows.scalars())


def _toggles(ctx: Ctx, channel: NotificationChannel) -> list[list[Button]]:
    kinds = list(ALERT_DEFAULTS)
    on = {"alerts": channel.kinds or {}}
    rows = [
        [
            Button(
                ("✅ " if wants(on, k) else "▫️ ") + ctx.t(f"settings.alert.{k}"),
                callbacks.make("ct", channel.id, i + j),
            )
            for j, k in enumerate(kinds[i : i + 2])
        ]
        for i in range(0, len(kinds), 2)
    ]
    rows.append([Button(ctx.t("channels.remove"), callbacks.make("cx", channel.id))])
    return rows


def _card(ctx: Ctx, channel: NotificationChannel) -> Reply:
    if channel.disabled_at is not None:
        state = "disabled"
    elif channel.confirmed_at is None:
        state = "unconfirmed"
    else:
        state = "on"
    text = ctx.t(f"channels.{channel.kind}_{state}", address=channel.address)
    return Reply(text, _toggles(ctx, channel))


async def email(ctx: Ctx, args: str) -> Response:
    """/email: your address's state; /email you@example.com: send a confirmation link."""
    address = args.strip()
    if not address:
        mine = await _mine(ctx, EMAIL)
        if not mine:
            return Response([Reply(ctx.t("channels.email_usage"))])
        return Response([_card(ctx, c) for c in mine])
    if not re.match(_EMAIL, address):
        raise UserError("channels.bad_email")
    token = secrets.token_urlsafe(24)
    async with ctx.services.sessions() as s, s.begin():
        # one address per user: a new one replaces the old, unconfirmed until its link
        channel = (
            await s.execute(
                select(NotificationChannel).where(
                    NotificationChannel.user_id == ctx.user_id, NotificationChannel.kind == EMAIL
                )
            )
        ).scalar_one_or_none()
        if channel is None:
            channel = NotificationChannel(user_id=ctx.user_id, kind=EMAIL, kinds={})
            s.add(channel)
        channel.address, channel.confirm_token = address, token
        channel.confirmed_at = channel.disabled_at = None
        await s.flush()
        url = f"{ctx.services.public_url.rstrip('/')}/email/confirm?t={token}"
        await queue_confirmation(s, channel.id, token, url, ctx.language)
    return Response([Reply(ctx.t("channels.email_sent", address=address))])


async def confirm_email(services: Any, token: str) -> int | None:
    """The link in the confirmation email was followed: the channel's user, or None."""
    if not token or len(token) > 64:
        return None
    async with services.sessions() as s, s.begin():
        channel = (
            await s.execute(
                select(NotificationChannel).where(NotificationChannel.confirm_token == token)
            )
        ).scalar_one_or_none()
        if channel is None:
            return None
        channel.confirmed_at = channel.confirmed_at or utcnow()
        channel.confirm_token = None  # a link works once
        return channel.user_id


async def webhook(ctx: Ctx, args: str) -> Response:
    """/webhook: your webhooks; /webhook https://...: add one (its signing secret shown once)."""
    url = args.strip()
    if not url:
        mine = await _mine(ctx, WEBHOOK)
        if not mine:
            return Response([Reply(ctx.t("channels.webhook_usage"))])
        return Response([_card(ctx, c) for c in mine])
    if len(url) > 300:
        raise UserError("channels.webhook_refused", reason="too_long")
    fetcher = ctx.services.safe_http or SafeFetcher()
    try:
        await fetcher.check(url)
    except UnsafeURL as exc:
        raise UserError("channels.webhook_refused", reason=exc.reason) from None
    finally:
        if ctx.services.safe_http is None:
            await fetcher.aclose()
    vault = ctx.services.vault
    if vault is None:  # its signing secret is kept sealed: no vault, no webhook
        raise UserError("channels.webhook_no_vault")
    secret = "whsec_" + secrets.token_hex(24)
    async with ctx.services.sessions() as s, s.begin():
        mine = list(
            (
                await s.execute(
                    select(NotificationChannel).where(
                        NotificationChannel.user_id == ctx.user_id,
                        NotificationChannel.kind == WEBHOOK,
                    )
                )
            ).scalars()
        )
        same = next((c for c in mine if c.address == url), None)
        if same is not None and same.disabled_at is None:
            raise UserError("channels.webhook_exists")
        if same is None and sum(c.disabled_at is None for c in mine) >= MAX_WEBHOOKS:
            raise UserError("channels.webhook_too_many", max=MAX_WEBHOOKS)
        if same is None:
            same = NotificationChannel(user_id=ctx.user_id, kind=WEBHOOK, address=url, kinds={})
            s.add(same)
        await s.flush()  # its id is bound into the sealed secret
        seal_secret(vault, same, secret)
        # the URL passed the checks and the user owns it: no confirmation round trip
        same.confirmed_at, same.disabled_at, same.failures = utcnow(), None, 0
    return Response([Reply(ctx.t("channels.webhook_added", url=url, secret=secret))])


async def _own(ctx: Ctx, channel_id: int) -> NotificationChannel | None:
    async with ctx.services.sessions() as s:
        channel = await s.get(NotificationChannel, channel_id)
    return channel if channel is not None and channel.user_id == ctx.user_id else None


async def toggle_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    channel = await _own(ctx, cb.int_arg())
    if channel is None:
        return ctx.not_yours()
    kinds = list(ALERT_DEFAULTS)
    index = int(cb.args[1]) if len(cb.args) > 1 and cb.args[1].isdigit() else -1
    if not 0 <= index < len(kinds):
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    kind = kinds[index]
    async with ctx.services.sessions() as s, s.begin():
        row = await s.get_one(NotificationChannel, channel.id)
        chosen = dict(row.kinds or {})
        chosen[kind] = not wants({"alerts": chosen}, kind)
        row.kinds = chosen
        await s.flush()
        channel = row
    reply = _card(ctx, channel)
    reply.edit = True
    return Response([reply], notice=ctx.t("settings.saved"))


async def remove_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    channel = await _own(ctx, cb.int_arg())
    if channel is None:
        return ctx.not_yours()
    async with ctx.services.sessions() as s, s.begin():
        row = await s.get_one(NotificationChannel, channel.id)
        row.disabled_at = row.disabled_at or utcnow()
    text = ctx.t("channels.removed", address=channel.address)
    return Response([Reply(text, edit=True)], notice=ctx.t("settings.saved"))
