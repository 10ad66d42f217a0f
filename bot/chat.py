"""`maxxit chat`: the same handlers as Telegram, in a terminal, for trying Maxxit without a
token. Buttons print as [1] [2] ... and are pressed by typing #1, #2; lines starting with
"!" drive a small market simulator (!price ETH 3100, !post @CryptoHawk Long $ETH)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.service import build_engine
from bot.settings import Settings
from engine.ingest import IncomingPost
from engine.notify import Delivery, Dispatcher, OutgoingMessage
from engine.prices import PriceBook, PriceTick
from engine.replay.runner import seed_agents
from engine.replay.scenario import Scenario, parse_scenario
from handlers.alerts import alert_with_picture
from handlers.base import Button, Reply, Request, Services
from handlers.router import Bot
from storage.db import create_engine, resolve_url, session_factory
from storage.migrate import upgrade
from storage.models import Agent
from storage.types import utcnow

PRESS = re.compile(r"^#(\d{1,3})$")
HELP = (
    "Type /start to begin. #N presses button N. "
    "!price MARKET VALUE and !post @handle text simulate the market. Ctrl-D quits."
)


class Screen:
    """Prints replies and remembers the last buttons shown, so #N can press one. A terminal
    shows no pictures: each is saved as a PNG in `pictures` and its path printed."""

    def __init__(self, write: Callable[[str], None], pictures: Path | None = None) -> None:
        self.write = write
        self.buttons: list[Button] = []
        self.pictures = pictures or Path("data") / "pictures"
        self.saved = 0

    def show(self, reply: Reply, prefix: str = "") -> None:
        self.write(prefix + reply.text)
        if reply.photo is not None:
            self.pictures.mkdir(parents=True, exist_ok=True)
            self.saved += 1
            path = self.pictures / f"{utcnow():%Y%m%d-%H%M%S}-{self.saved}.png"
            path.write_bytes(reply.photo)
            self.write(f"🖼 picture saved to {path}")
        labels = []
        for row in reply.buttons:
            for b in row:
                if b.data:
                    self.buttons.append(b)
                    labels.append(f"[{len(self.buttons)}] {b.label}")
                elif b.url:
                    labels.append(f"{b.label}: {b.url}")
        if labels:
            self.write("  ".join(labels))


class ScreenTransport:
    """Alerts for the person at the terminal, with their buttons."""

    name = "console"

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        reply = await alert_with_picture(message.kind, message.payload, message.language)
        self.screen.show(reply, "🔔 ")
        return Delivery("sent")


@cache
def demo_scenario() -> Scenario:
    text = resources.files("bot").joinpath("scenarios/demo.json").read_text("utf-8")
    return parse_scenario(text, "demo scenario")


async def seed_demo_agents(sessions: async_sessionmaker[AsyncSession]) -> int:
    """An empty database gets the demo scenario's agents, so the marketplace has something."""
    async with sessions() as s, s.begin():
        if (await s.execute(select(func.count()).select_from(Agent))).scalar_one():
            return 0
        # no creators: the demo users are the replay's, not people in this chat
        return len(await seed_agents(s, demo_scenario()))


def demo_prices() -> PriceBook:
    book = PriceBook()
    for p in demo_scenario().prices:
        if book.price(p.market) is None:
            book.update(PriceTick(utcnow(), p.market, p.price))
    return book


async def stdin_lines() -> AsyncIterator[str]:
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        yield line.rstrip("\n")


async def chat(
    settings: Settings,
    lines: AsyncIterator[str],
    write: Callable[[str], None] = print,
    language: str | None = None,
) -> None:
    url = resolve_url(settings.database_url, settings.data_dir)
    await upgrade(url)
    db = create_engine(url)
    sessions = session_factory(db)
    try:
        await seed_demo_agents(sessions)
        engine = build_engine(settings, sessions, demo_prices())
        await engine.start()
        bot = Bot(Services(sessions, engine))
        screen = Screen(write, Path(settings.data_dir) / "pictures")
        dispatcher = Dispatcher(sessions, ScreenTransport(screen))
        write(HELP)
        async for line in lines:
            text = line.strip()
            if not text:
                continue
            if text.startswith("!"):
                write(await simulate(engine, text))
            else:
                press = PRESS.match(text)
                if press:
                    index = int(press.group(1)) - 1
                    if not 0 <= index < len(screen.buttons):
                        write(f"There is no button #{index + 1}.")
                        continue
                    req = Request(
                        "console",
                        "local",
                        "local",
                        button=screen.buttons[index].data,
                        language_code=language,
                    )
                else:
                    req = Request("console", "local", "local", text=text, language_code=language)
                response = await bot.handle(req)
                if any(r.buttons for r in response.replies):
                    screen.buttons = []  # numbers refer to what this answer shows
                # an answer without buttons (an error, a notice) leaves the last ones pressable
                if response.notice:
                    write(f"({response.notice})")
                for reply in response.replies:
                    screen.show(reply)
            await engine.expire_approvals()
            await dispatcher.deliver_pending()
        await engine.checkpoint()
    finally:
        await db.dispose()


async def simulate(engine, text: str) -> str:  # type: ignore[no-untyped-def]
    parts = text[1:].split(maxsplit=2)
    if len(parts) == 3 and parts[0] == "price":
        try:
            value = Decimal(parts[2])
        except InvalidOperation:
            return "usage: !price MARKET VALUE"
        if not value.is_finite() or not Decimal("1e-12") <= value <= Decimal("1e12"):
            return "a price must be a positive number (up to 1e12)"
        listed = {m.upper(): m for v in engine.venues.values() for m in v.markets()}
        market = listed.get(parts[1].upper())
        if market is None:
            return f"{parts[1][:20]} is not listed on our venues"
        closed = await engine.on_price(PriceTick(utcnow(), market, value))
        # trailing stops moved by this price are saved and alerted now, as the service's
        # checkpoint does every few seconds
        await engine.checkpoint()
        return f"{market} = {value}" + (f"; closed: {closed}" if closed else "")
    if len(parts) == 3 and parts[0] == "post":
        handle = parts[1] if parts[1].startswith("@") else "@" + parts[1]
        post = IncomingPost("x", handle, f"chat-{utcnow().timestamp()}", parts[2], utcnow())
        outcome = await engine.ingest(post)
        c = outcome.classification
        if not c.is_signal:
            return f"post stored; not a signal ({c.reason})"
        return f"signal {c.side} {c.market}: " + (
            ", ".join(f"{s.agent} -> {s.venue or 'skipped'} ({s.reason})" for s in outcome.signals)
            or "no agent follows this source"
        )
    return "simulator: !price MARKET VALUE | !post @handle text"
