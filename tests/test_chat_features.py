"""Each chat feature as a user sees it: marketplace paging and deep links, deployments,
/call, /settings (language, alerts, limits incl. the daily loss pause), /history, /pnl."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from engine.notify import Delivery, Dispatcher, OutgoingMessage
from handlers.i18n import t
from storage.models import Agent, Deployment, Position, User
from tests.chat_helpers import Person, World, make_world, text_of


class Capture:
    """A transport that keeps what it is given."""

    name = "capture"

    def __init__(self) -> None:
        self.got: list[OutgoingMessage] = []

    async def deliver(self, message: OutgoingMessage) -> Delivery:
        self.got.append(message)
        return Delivery("sent")


@pytest.fixture
async def world(sessions) -> World:
    return await make_world(sessions)


async def make_agent(who: Person, name: str, sources: str = "@CryptoHawk", tp: str = "none"):
    await who.say("/create")
    await who.say(name)
    await who.say(sources)
    await who.say("HYPERLIQUID")
    await who.say("100")
    await who.say("5")
    await who.say("3")
    await who.say("none")
    await who.say(tp)
    await who.say("ignore")  # a market already held: skip the call
    summary = await who.say("10")  # the creator's share of followers' live profits
    assert "Create it?" in text_of(summary), text_of(summary)
    await who.choose(summary.replies[0], "Create")


async def deploy(who: Person, agent: str, collateral: str = "100", leverage: str = "2") -> None:
    await who.say(f"/deploy {agent}")
    await who.say(collateral)
    await who.say(leverage)
    r = await who.say("Trade automatically")
    r = await who.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r), text_of(r)


async def test_marketplace_pages_with_deep_links(world: World) -> None:
    ann = world.person("Ann", 1)
    for i in range(7):
        await make_agent(ann, f"Agent{i}", sources=f"@src{i}")
    # Agent3 has a follower whose paper trade won; she closed it herself: that is her trade,
    # not the agent's, so Agent3 has no record yet; with no agent ranked, followers lead
    await deploy(ann, "Agent3")
    await world.post("@src3", "Long $ETH", "x1")
    await world.price("ETH", "2100")
    pos = (await ann.say("/positions")).replies[1]
    await ann.choose((await ann.choose(pos, "Close")).replies[0], "Yes, close")

    page1 = await ann.say("/agents")
    text = text_of(page1)
    assert "page 1 of 2" in text and text.index("Agent3") < text.index("Agent0")
    agent3 = text.split("Agent3 - ")[1].split("\n\n")[0]
    assert "Followers: 1" in agent3 and "Paper" not in agent3
    assert "Not ranked yet: live trades 0 of 10" in agent3
    labels = [b.label for row in page1.replies[0].buttons for b in row]
    assert labels.count("Details") == 5 and "Next »" in labels and "« Prev" not in labels
    page2 = await ann.choose(page1.replies[0], "Next »")
    assert page2.replies[0].edit and "page 2 of 2" in text_of(page2)
    assert "« Prev" in [b.label for row in page2.replies[0].buttons for b in row]

    async with world.sessions() as s:
        agent_id = (await s.execute(select(Agent.id).where(Agent.name == "Agent5"))).scalar_one()
    bob = world.person("Bob", 2)
    r = await bob.say(f"/start agent_{agent_id}")
    assert len(r.replies) == 2 and "Agent5" in r.replies[1].text
    assert "Risk:" in r.replies[1].text and "stop loss 3%" in r.replies[1].text
    r = await bob.say("/start agent_999999")
    assert "No agent" in text_of(r)


async def test_referral_link_records_who_invited_whom_once(world: World) -> None:
    ann = world.person("Ann", 1)
    r = await ann.say("/start")
    code = text_of(r).split("start=ref_")[1].split()[0]
    bob = world.person("Bob", 2)
    assert "invitation" in text_of(await bob.say(f"/start ref_{code}"))
    await bob.say("/start ref_bogus")
    await ann.say(f"/start ref_{code}")  # inviting yourself does nothing
    async with world.sessions() as s:
        users = {u.display_name: u for u in (await s.execute(select(User))).scalars()}
    assert users["Bob"].referred_by_id == users["Ann"].id
    assert users["Ann"].referred_by_id is None


async def test_deployments_pause_resume_stop_only_by_their_owner(world: World) -> None:
    ann, eve = world.person("Ann", 1), world.person("Eve", 2)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    assert "already run Hawk (#1)" in text_of(await ann.say("/deploy Hawk"))
    listing = await ann.say("/deployments")
    card = listing.replies[1]
    assert "active" in card.text
    dep_id = card.buttons[0][0].data.split(":")[1]
    assert (await eve.press(f"dpp:{dep_id}")).refused
    paused = await ann.choose(card, "Pause")
    assert "paused" in paused.replies[0].text
    await world.post("@CryptoHawk", "Long $ETH", "p1")  # a paused deployment takes no trade
    assert "no open positions" in text_of(await ann.say("/positions"))
    resumed = await ann.choose(paused.replies[0], "Resume")
    assert "active" in resumed.replies[0].text
    ask = await ann.choose(resumed.replies[0], "Stop")
    assert "for good" in text_of(ask)
    assert (await eve.press(f"dpx:{dep_id}")).refused
    stopped = await ann.choose(ask.replies[0], "Yes, stop it")
    assert "Stopped" in text_of(stopped)
    assert "no deployments" in text_of(await ann.say("/deployments"))
    await deploy(ann, "Hawk")  # a stopped deployment can be replaced by a new one


async def test_creator_call_trades_for_followers_and_checks_its_input(world: World) -> None:
    ann, bob = world.person("Ann", 1), world.person("Bob", 2)
    await make_agent(ann, "Hawk")
    await deploy(bob, "Hawk", collateral="50")
    assert "Only an agent's creator" in text_of(await bob.say("/call ETH long"))
    assert "/call <TICKER>" in text_of(await ann.say("/call"))
    assert "long or short" in text_of(await ann.say("/call ETH sideways"))
    assert "not listed" in text_of(await ann.say("/call NOPE long"))
    r = await ann.say("/call $eth long breakout above 2k")
    assert "Call posted: LONG ETH" in text_of(r) and "HYPERLIQUID" in text_of(r)
    positions = text_of(await bob.say("/positions"))
    assert "LONG ETH" in positions and "Hawk" in positions


async def test_settings_language_alerts_and_limits(world: World) -> None:
    ann = world.person("Ann", 1)
    view = await ann.say("/settings")
    assert "Language: English" in text_of(view)
    es = await ann.choose(view.replies[0], "Español")
    assert es.replies[0].edit and "Idioma" in text_of(es)
    assert text_of(await ann.say("/help")) == t("es", "help.text")
    view = await ann.choose(es.replies[0], "English")
    # alerts: "Opened" is on by default; switch it off
    view = await ann.choose(view.replies[0], "✅ Opened")
    assert "▫️ Opened" in text_of(view)
    # a limit: wrong input first, then a value, then confirm
    ask = await ann.choose(view.replies[0], "Max leverage")
    assert "now no limit" in text_of(ask)
    assert "between 1x and 50x" in text_of(await ann.say("500"))
    confirm = await ann.say("4")
    assert "Set Max leverage to 4x?" in text_of(confirm)
    saved = await ann.choose(confirm.replies[0], "Save")
    assert "Max leverage: 4x" in text_of(saved)
    async with world.sessions() as s:
        user = (await s.execute(select(User))).scalar_one()
    assert (
        user.settings["max_leverage"] == "4" and user.settings["alerts"]["position_opened"] is False
    )

    # muted alert kinds are not delivered; others are
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk", leverage="5")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    assert [m.kind for m in capture.got] == []  # position_opened muted
    async with world.sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.leverage == 4  # the personal cap applied over the deployment's 5x


async def test_daily_loss_limit_pauses_every_deployment_and_says_so(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk", collateral="100", leverage="5")
    view = await ann.say("/settings")
    await ann.choose(view.replies[0], "Daily loss limit")
    confirm = await ann.say("$10")
    await ann.choose(confirm.replies[0], "Save")
    await world.post("@CryptoHawk", "Long $ETH", "p1")
    await world.price("ETH", "1900")  # through the 3% stop: about -$15
    async with world.sessions() as s:
        dep = (await s.execute(select(Deployment))).scalar_one()
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.status == "closed" and pos.realized_pnl < Decimal(-10)
    assert dep.status == "paused"
    capture = Capture()
    await Dispatcher(world.sessions, capture).deliver_pending()
    assert "deployments_paused" in [m.kind for m in capture.got]
    text = text_of(await ann.say("/pnl"))
    assert "realized -$" in text and "paused" in text
    history = text_of(await ann.say("/history"))
    assert "stop loss" in history and "1 in all" in history


async def test_wizard_back_cancel_and_restart_safe_state(world: World) -> None:
    ann = world.person("Ann", 1)
    await ann.say("/create")
    await ann.say("Hawk")
    venue = await ann.say("@CryptoHawk")
    back = await ann.choose(venue.replies[0], "Back")
    assert "Which X accounts" in text_of(back) and back.replies[0].edit
    venue = await ann.say("@MacroMia")
    # a fresh Bot (another process, or after a restart) continues the same wizard
    from handlers.base import Services
    from handlers.router import Bot

    world.bot = Bot(Services(world.sessions, world.engine, clock=lambda: world.clock[0]))
    r = await ann.choose(venue.replies[0], "OSTIUM")
    assert "collateral per trade" in text_of(r)
    old = venue.replies[0].buttons[0][0].data
    cancelled = await ann.choose(r.replies[0], "Cancel")
    assert "Nothing was saved" in text_of(cancelled)
    assert (await ann.press(old)).refused  # a button of the finished wizard
    assert "/help" in text_of(await ann.say("250"))  # no wizard is waiting any more
    assert "nothing to cancel" in text_of(await ann.say("/cancel"))
    async with world.sessions() as s:
        assert (await s.execute(select(Agent))).first() is None


async def test_history_pages_newest_first(world: World) -> None:
    ann = world.person("Ann", 1)
    await make_agent(ann, "Hawk")
    await deploy(ann, "Hawk")
    for i in range(12):
        await world.post("@CryptoHawk", "Long $ETH", f"p{i}")
        world.advance(60)
        positions = await ann.say("/positions")
        await ann.choose((await ann.choose(positions.replies[1], "Close")).replies[0], "Yes, close")
    first = await ann.say("/history")
    assert "12 in all, page 1 of 2" in text_of(first)
    ids = [line.split()[0] for line in text_of(first).splitlines()[1:] if line.startswith("#")]
    assert len(ids) == 10 and ids == sorted(ids, key=lambda x: -int(x[1:]))
    second = await ann.choose(first.replies[0], "Next »")
    assert "page 2 of 2" in text_of(second) and second.replies[0].edit
    assert text_of(second).count("#") == 2
