"""An in-process chat world for handler tests: a migrated database, the engine on paper
venues with controllable prices and clock, and people who send messages and press buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.classify.rules import RulesClassifier
from engine.ingest import IncomingPost
from engine.markets import default_markets
from engine.pipeline import Engine, EngineConfig
from engine.prices import PriceBook, PriceTick
from engine.venues.paper import PaperVenue
from handlers.base import Reply, Request, Response, Services
from handlers.router import Bot

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)
PRICES = {"ETH": "2000", "BTC": "90000", "SOL": "150", "XAU": "2400"}


@dataclass
class World:
    bot: Bot
    engine: Engine
    sessions: async_sessionmaker[AsyncSession]
    clock: list[datetime]
    people: dict[str, Person] = field(default_factory=dict)

    def person(self, name: str, uid: int, language: str | None = "en") -> Person:
        p = Person(self, name, str(uid), language)
        self.people[name] = p
        return p

    async def price(self, market: str, value: str) -> int:
        return await self.engine.on_price(PriceTick(self.clock[0], market, Decimal(value)))

    async def post(self, handle: str, text: str, pid: str) -> None:
        await self.engine.ingest(IncomingPost("x", handle, pid, text, self.clock[0]))

    def advance(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)


@dataclass
class Person:
    world: World
    name: str
    uid: str
    language: str | None
    last: Response | None = None
    seen: list[str] = field(default_factory=list)  # every text the bot showed this person

    async def say(self, text: str) -> Response:
        req = Request(
            "console",
            self.uid,
            self.uid,
            text=text,
            language_code=self.language,
            display_name=self.name,
        )
        return self._saw(await self.world.bot.handle(req))

    async def press(self, data: str) -> Response:
        req = Request(
            "console",
            self.uid,
            self.uid,
            button=data,
            language_code=self.language,
            display_name=self.name,
        )
        return self._saw(await self.world.bot.handle(req))

    def _saw(self, response: Response) -> Response:
        self.last = response
        self.seen += [r.text for r in response.replies] + [response.notice or ""]
        return response

    async def choose(self, reply: Reply, label: str) -> Response:
        """Press the button with this label (substring) on a reply."""
        for row in reply.buttons:
            for b in row:
                if label in b.label and b.data:
                    return await self.press(b.data)
        labels = [b.label for row in reply.buttons for b in row]
        raise AssertionError(f"no button {label!r} in {labels}")


def text_of(response: Response) -> str:
    return "\n---\n".join(r.text for r in response.replies)


async def make_world(sessions: async_sessionmaker[AsyncSession]) -> World:
    clock = [NOW]
    prices = PriceBook()
    for market, value in PRICES.items():
        prices.update(PriceTick(NOW, market, Decimal(value)))
    venues = {n: PaperVenue(n, m, prices) for n, m in default_markets().items()}
    engine = Engine(
        sessions, venues, prices, RulesClassifier(), EngineConfig(), clock=lambda: clock[0]
    )
    await engine.start()
    bot = Bot(Services(sessions, engine, clock=lambda: clock[0]))
    return World(bot, engine, sessions, clock)


def sign_text(message: str, account) -> str:  # type: ignore[no-untyped-def]
    """What a wallet's "sign message" (personal_sign) returns for this text."""
    from eth_account.messages import encode_defunct

    return account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()


async def step(user, text: str, expect: str):  # type: ignore[no-untyped-def]
    """A Telegram user (tests/peers/telegram_api.SimUser) sends text; the bot's answer."""
    after = user.sent
    await user.send(text)
    return await user.wait_for(expect, after=after)
