"""Alert channels besides chat: email through a real SMTP server (aiosmtpd on 127.0.0.1),
opt-in with a confirmation link, per-kind toggles; users' webhooks, signed, retried with
backoff, switched off after repeated failures, HTTPS to public addresses only (as are
research-feed URLs in /create)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.console import ConsoleTransport
from bot.email_confirm import routes as email_routes
from bot.web import make_app
from engine.channels.dispatch import ChannelDispatcher, ChannelFanout
from engine.channels.senders import EmailSender, SmtpConfig, WebhookSender
from engine.events import PositionClosed, PositionOpened
from engine.notify import Dispatcher, write_outbox
from handlers.channels import channel_text
from storage.models import (
    ChannelDelivery,
    NotificationChannel,
    OutboxMessage,
    Source,
    User,
)
from tests.chat_helpers import NOW, Person, World, make_world, text_of
from tests.peers.public_tls import PublicSite, public_https
from tests.peers.telegram_api import serve_app
from wallets.vault import MasterKey, Vault
from wallets.vault_webhooks import WebhookSecrets

# webhook signing secrets are sealed by the vault (wallets/vault_webhooks.py)
VAULT = Vault(MasterKey.parse("bWF4eGl0LXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE="))


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), mail))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def opened(user_id: int, position_id: int) -> PositionOpened:
    return PositionOpened(user_id, position_id, "Hawk", "HYPERLIQUID", "ETH", "long",
                          Decimal("0.1"), Decimal(2000), Decimal(3), Decimal(100),
                          Decimal(1940), None)  # fmt: skip


def closed(user_id: int, position_id: int) -> PositionClosed:
    return PositionClosed(user_id, position_id, "Hawk", "HYPERLIQUID", "ETH", "long",
                          Decimal("0.1"), Decimal(2000), Decimal(2100), "take_profit",
                          Decimal("0.2"), Decimal("9.8"))  # fmt: skip


class Alerts:
    """The outbox dispatcher with the console as the chat, fanning out to channels."""

    def __init__(self, world: World, channels: ChannelDispatcher) -> None:
        self.world = world
        self.chat: list[str] = []
        transport = ChannelFanout(ConsoleTransport(self.chat.append), world.sessions)
        self.outbox = Dispatcher(world.sessions, transport)
        self.channels = channels

    async def send(self, *events: object) -> int:
        async with self.world.sessions() as s, s.begin():
            await write_outbox(s, events)  # type: ignore[arg-type]
        await self.outbox.deliver_pending()
        return await self.channels.deliver_pending()


async def user_id(world: World, person: Person) -> int:
    await person.say("/start")
    async with world.sessions() as s:
        return (await s.execute(select(User.id).order_by(User.id.desc()))).scalars().first()


async def test_email_opt_in_confirmation_and_per_kind_toggles(sessions, smtp) -> None:
    inbox, port = smtp
    world = await make_world(sessions)
    clock = [NOW]
    email = EmailSender(SmtpConfig("127.0.0.1", port, sender="alerts@maxxit.test", starttls=False))
    alerts = Alerts(world, ChannelDispatcher(sessions, channel_text, email, None, lambda: clock[0]))
    ann = world.person("Ann", 1)
    uid = await user_id(world, ann)
    assert "/email you@example.com" in text_of(await ann.say("/email"))
    assert "not look like an email" in text_of(await ann.say("/email nope"))
    r = await ann.say("/email ann@example.com")
    assert "confirmation link to ann@example.com" in text_of(r)

    # unconfirmed: the alert goes to chat only; the confirmation email goes out
    assert await alerts.send(opened(uid, 1)) == 1
    assert len(alerts.chat) == 1 and len(inbox.messages) == 1
    rcpt, confirm = inbox.messages[0]
    assert rcpt == ["ann@example.com"] and "Confirm your email" in confirm["Subject"]
    link = re.search(r"(http://\S+/email/confirm\?t=(\S+))", confirm.get_content()).group(1)

    async with serve_app(make_app(extra=email_routes(world.bot.services))) as root:
        local = link.replace("http://localhost:8080", root)
        token = local.rsplit("t=", 1)[1]
        async with httpx.AsyncClient() as http:
            page = await http.get(local)  # a mail scanner opening the link changes nothing
            assert page.status_code == 200 and 'method="post"' in page.text
            async with sessions() as s:
                assert (
                    await s.execute(select(NotificationChannel))
                ).scalar_one().confirmed_at is None
            bad = await http.post(f"{root}/email/confirm", data={"t": "forged"})
            assert bad.status_code == 400
            ok = await http.post(f"{root}/email/confirm", data={"t": token})
            assert ok.status_code == 200 and "Email alerts are on" in ok.text
            again = await http.post(f"{root}/email/confirm", data={"t": token})
            assert again.status_code == 400  # a link works once

    assert await alerts.send(opened(uid, 2)) == 1
    rcpt, alert = inbox.messages[-1]
    assert rcpt == ["ann@example.com"] and alert["From"] == "alerts@maxxit.test"
    assert (
        alert["Subject"] == "Hawk opened LONG ETH on HYPERLIQUID: size 0.1 at 2000, 3x, stop 1940"
    )
    assert "You get this because you turned on email alerts" in alert.get_content()

    # the per-kind toggles: opened positions off for email, closed ones still on
    card = await ann.say("/email")
    assert "ann@example.com: on" in text_of(card)
    off = await ann.choose(card.replies[0], "Opened")
    assert "▫️ Opened" in [b.label for row in off.replies[0].buttons for b in row]
    before = len(inbox.messages)
    assert await alerts.send(opened(uid, 3), closed(uid, 3)) == 1
    assert len(inbox.messages) == before + 1 and len(alerts.chat) == 4  # chat got all
    assert "+$9.80" in inbox.messages[-1][1].get_content()
    # another user cannot press Ann's buttons
    eve = world.person("Eve", 9)
    toggle = next(b.data for row in card.replies[0].buttons for b in row if b.data)
    assert (await eve.press(toggle)).refused


@pytest.fixture
async def hooks() -> AsyncIterator[tuple[PublicSite, dict]]:
    state: dict = {"secret": None, "fail": False, "received": [], "attempts": 0}

    async def hook(request: Request) -> Response:
        state["attempts"] += 1
        body = await request.body()
        header = request.headers.get("x-maxxit-signature", "")
        fields = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(state["secret"].encode(), f"{fields['t']}.".encode() + body,
                            hashlib.sha256).hexdigest()  # fmt: skip
        if not hmac.compare_digest(expected, fields.get("v1", "")):
            return PlainTextResponse("bad signature", status_code=401)
        if state["fail"]:
            return PlainTextResponse("down", status_code=503)
        state["received"].append(json.loads(body))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    async with public_https(app) as site:
        site.dns["internal.example.com"] = ["10.0.0.7"]
        yield site, state


async def with_webhook(sessions, site: PublicSite, state: dict) -> tuple[World, int]:  # type: ignore[no-untyped-def]
    """Ann (with the vault on) adds the site's webhook; the receiver learns its secret."""
    world = await make_world(sessions)
    world.bot.services.safe_http = site.fetcher()
    world.bot.services.vault = VAULT
    ann = world.person("Ann", 1)
    uid = await user_id(world, ann)
    r = await ann.say(f"/webhook {site.url}/hook")
    state["secret"] = re.search(r"(whsec_[0-9a-f]+)", text_of(r)).group(1)
    return world, uid


async def test_webhooks_signed_retried_and_switched_off(sessions, hooks) -> None:
    site, state = hooks
    world, uid = await with_webhook(sessions, site, state)
    clock = [NOW]
    dispatcher = ChannelDispatcher(sessions, channel_text, None, WebhookSender(site.fetcher()),
                                   lambda: clock[0], disable_after=3,
                                   open_secret=WebhookSecrets(VAULT).open)  # fmt: skip
    alerts = Alerts(world, dispatcher)

    assert await alerts.send(opened(uid, 1)) == 1
    (got,) = state["received"]
    assert got["type"] == "position_opened" and got["data"]["market"] == "ETH"

    # the receiver is down: retried later with growing delays, delivered once it is back
    state["fail"] = True
    assert await alerts.send(closed(uid, 1)) == 0
    clock[0] += timedelta(seconds=10)
    assert await dispatcher.deliver_pending() == 0 and state["attempts"] == 2  # not due yet
    clock[0] += timedelta(seconds=25)
    assert await dispatcher.deliver_pending() == 0 and state["attempts"] == 3
    clock[0] += timedelta(seconds=45)
    assert await dispatcher.deliver_pending() == 0 and state["attempts"] == 3  # 60 s now
    state["fail"] = False
    clock[0] += timedelta(seconds=20)
    assert await dispatcher.deliver_pending() == 1
    assert [g["type"] for g in state["received"]] == ["position_opened", "position_closed"]

    # failing on and on: switched off after 3 failures in a row, and Ann is told in chat
    state["fail"] = True
    await alerts.send(opened(uid, 2))
    for _ in range(3):
        clock[0] += timedelta(hours=1)
        await dispatcher.deliver_pending()
    async with sessions() as s:
        channel = (await s.execute(select(NotificationChannel))).scalar_one()
        told = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.kind == "channel_disabled"))
        ).scalar_one()
    assert channel.disabled_at is not None and channel.failures == 3
    await alerts.outbox.deliver_pending()
    assert "kept failing (HTTP 503) and was switched off" in alerts.chat[-1]
    attempts = state["attempts"]
    clock[0] += timedelta(days=1)
    await alerts.send(closed(uid, 2))
    assert state["attempts"] == attempts  # nothing goes to a switched-off webhook
    assert told.user_id == uid


async def test_webhook_urls_must_be_https_to_public_addresses(sessions, hooks) -> None:
    site, state = hooks
    world = await make_world(sessions)
    world.bot.services.safe_http = site.fetcher()
    world.bot.services.vault = VAULT
    ann = world.person("Ann", 1)
    uid = await user_id(world, ann)
    for url in ("https://127.0.0.1/hook", "https://10.1.2.3/hook",
                "https://169.254.169.254/latest/meta-data/", "https://localhost/hook",
                "https://internal.example.com/hook", f"http://{site.name}/hook",
                "https://[::1]/hook"):  # fmt: skip
        r = await ann.say(f"/webhook {url}")
        assert "refused" in text_of(r), url
    async with sessions() as s:
        assert (await s.execute(select(NotificationChannel))).first() is None

    # accepted while public, then its name points inside: refused when it is sent
    r = await ann.say(f"/webhook {site.url}/hook")
    state["secret"] = re.search(r"(whsec_[0-9a-f]+)", text_of(r)).group(1)
    site.dns[site.name] = ["169.254.169.254"]
    dispatcher = ChannelDispatcher(sessions, channel_text, None, WebhookSender(site.fetcher()),
                                   open_secret=WebhookSecrets(VAULT).open)  # fmt: skip
    alerts = Alerts(world, dispatcher)
    assert await alerts.send(opened(uid, 1)) == 0
    async with sessions() as s:
        delivery = (await s.execute(select(ChannelDelivery))).scalar_one()
    assert delivery.status == "dead" and "private_address" in (delivery.error or "")
    assert state["attempts"] == 0


async def test_feed_urls_in_create_are_checked_like_webhooks(sessions, hooks) -> None:
    site, _ = hooks
    world = await make_world(sessions)
    world.bot.services.safe_http = site.fetcher()
    ann = world.person("Ann", 1)
    await ann.say("/create")
    asked = await ann.say("Desk")
    assert "research feed" in text_of(asked)
    for url in ("https://127.0.0.1/feed.xml", "https://10.0.0.2/feed", "https://localhost/x",
                "https://169.254.169.254/latest/", "https://internal.example.com/rss",
                "http://desk.example.com/rss"):  # fmt: skip
        r = await ann.say(f"@CryptoHawk {url}")
        assert "feed URL is refused" in text_of(r), url
    r = await ann.say(f"@CryptoHawk {site.url}/notes.atom")
    assert "Where should Desk trade?" in text_of(r)  # on to the next step
    for answer in ("hyperliquid", "100", "5", "3", "none", "none"):
        await ann.say(answer)
    await ann.say("ignore")
    summary = await ann.say("10")  # the creator's share
    assert f"{site.url}/notes.atom" in text_of(summary)
    assert "Desk is live" in text_of(await ann.choose(summary.replies[0], "Create"))
    async with sessions() as s:
        kinds = {(src.kind, src.handle) for src in (await s.execute(select(Source))).scalars()}
    assert ("rss", f"{site.url}/notes.atom") in kinds and ("x", "@CryptoHawk") in kinds
