"""/unlink never strands live positions. Their closes are signed with the agent key found
through the linked wallet (bot/live_trading.signer_lookup, used here unmodified against the
Hyperliquid stand-in), so /unlink offers to close them first and keeps the wallet linked until
they are closed. Paper positions do not hold it up."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from bot.live_trading import signer_lookup
from engine.venues.hyperliquid import HyperliquidConfig, HyperliquidVenue
from engine.venues.routed import AccountRoutedVenue
from storage.models import Deployment, Order, Position, User, Wallet
from tests.chat_helpers import Person, World, make_world, text_of
from tests.hl_helpers import approve
from tests.peers.hyperliquid_api import HyperliquidPeer
from wallets import siwe_link
from wallets.vault import MasterKey, Vault, ensure_agent_key, load_agent


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000", "SOL": "150"}) as p:
        yield p


@dataclass
class Live:
    world: World
    ann: Person
    wallet: LocalAccount  # Ann's own wallet: Maxxit never holds this key
    user_id: int


async def _user_id(sessions, name: str) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return (await s.execute(select(User.id).where(User.display_name == name))).scalar_one()


async def live_world(sessions, peer: HyperliquidPeer) -> Live:  # type: ignore[no-untyped-def]
    """Ann has linked her wallet, approved Maxxit's agent key on Hyperliquid with it, and made
    two agents (Hawk, Owl) that follow @CryptoHawk, to deploy live or on paper."""
    world = await make_world(sessions)
    vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services = world.bot.services
    services.vault, services.hyperliquid_url = vault, peer.base_url
    live = HyperliquidVenue(
        HyperliquidConfig(base_url=peer.base_url, timeout=3),
        signer_lookup(sessions, vault),
        prices=world.engine.prices,
    )
    await live.refresh_markets()
    world.engine.venues["HYPERLIQUID"] = AccountRoutedVenue(
        world.engine.venues["HYPERLIQUID"], live
    )
    wallet = Account.create()
    peer.fund(wallet.address, Decimal(5000))
    ann = world.person("Ann", 1)
    await ann.say("/start")
    user_id = await _user_id(sessions, "Ann")
    async with sessions() as s, s.begin():
        await siwe_link._link(s, user_id, wallet.address, 42161, datetime.now(UTC))
        await ensure_agent_key(s, vault, user_id, "HYPERLIQUID")
    async with sessions() as s:
        agent = await load_agent(s, vault, user_id, "HYPERLIQUID")
    assert agent is not None
    await approve(peer, wallet, agent)  # what the connect page has her wallet sign
    await ann.choose((await ann.say("/wallet")).replies[0], "Check approval")

    for name in ("Hawk", "Owl"):  # two agents on the same source: one live, one on paper
        await ann.say("/create")
        for answer in (
            name,
            "@CryptoHawk",
            "HYPERLIQUID",
            "100",
            "5",
            "3",
            "none",
            "none",
            "ignore",
            "10",
        ):
            await ann.say(answer)
        await ann.choose(ann.last.replies[0], "Create")  # type: ignore[union-attr]
    return Live(world, ann, wallet, user_id)


async def deploy(ann: Person, mode: str, agent: str = "Hawk") -> None:
    r = await ann.say(f"/deploy {agent}")
    r = await ann.choose(r.replies[0], mode)
    await ann.say("100")
    await ann.say("3")
    r = await ann.choose(ann.last.replies[0], "Trade automatically")  # type: ignore[union-attr]
    r = await ann.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r), text_of(r)


async def open_positions(sessions, mode: str) -> list[Position]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return list(
            (
                await s.execute(
                    select(Position)
                    .join(Deployment, Deployment.id == Position.deployment_id)
                    .where(Deployment.mode == mode, Position.status == "open")
                )
            ).scalars()
        )


async def linked(sessions, user_id: int) -> Wallet | None:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return await siwe_link.linked_wallet(s, user_id)


def labels(reply) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for row in reply.buttons for b in row]


async def test_unlink_with_a_live_position_closes_it_then_unlinks(sessions, peer) -> None:
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Live (Hyperliquid)")
    await deploy(t.ann, "Paper", "Owl")
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    [pos] = await open_positions(sessions, "live")
    assert len(await open_positions(sessions, "paper")) == 1
    assert peer.positions(t.wallet.address)["ETH"].szi == pos.size > 0

    ask = await t.ann.say("/unlink")
    text = text_of(ask)
    assert "still has 1 open live position:" in text
    assert f"• ETH LONG {pos.size.normalize():f} (Hawk)" in text
    assert labels(ask.replies[0]) == ["Close all and unlink", "Keep wallet linked"]
    assert await linked(sessions, t.user_id) is not None  # asking changes nothing

    # someone else in the chat cannot press Ann's buttons
    bob = t.world.person("Bob", 2)
    await bob.say("/start")
    for label in ("Close all and unlink", "Keep wallet linked"):
        refused = await bob.choose(ask.replies[0], label)
        assert refused.refused and not refused.replies
    assert peer.positions(t.wallet.address)["ETH"].szi == pos.size
    assert await linked(sessions, t.user_id) is not None

    done = await t.ann.choose(ask.replies[0], "Close all and unlink")
    text = text_of(done)
    assert "Closed: 1 position." in text
    assert f"Wallet {t.wallet.address} is unlinked." in text
    assert "Paused: 1 live deployment." in text
    # the close reached Hyperliquid, signed with Ann's agent key while the wallet was linked
    assert "ETH" not in peer.positions(t.wallet.address)
    closes = [o for o in peer.orders(t.wallet.address) if o.reduce_only]
    assert len(closes) == 1
    async with sessions() as s:
        closed = await s.get_one(Position, pos.id)
        close_order = (await s.execute(select(Order).where(Order.purpose == "close"))).scalar_one()
    assert closed.status == "closed" and closed.close_reason == "manual"
    assert close_order.status == "filled" and close_order.account == t.wallet.address
    assert await linked(sessions, t.user_id) is None
    assert "No wallet is linked" in text_of(await t.ann.say("/wallet"))
    # the paper position was not touched
    assert len(await open_positions(sessions, "paper")) == 1


async def test_a_refused_close_keeps_the_wallet_linked_and_closable(sessions, peer) -> None:
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Live (Hyperliquid)")
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    [pos] = await open_positions(sessions, "live")

    ask = await t.ann.say("/unlink")
    peer.fail_next("order", status=200, body={"status": "err", "response": "Exchange halted"})
    answer = await t.ann.choose(ask.replies[0], "Close all and unlink")
    text = text_of(answer)
    assert "Not closed yet: 1 open live position, so" in text
    assert f"{t.wallet.address} stays linked" in text
    assert "Paused: 1 live deployment." in text
    assert labels(answer.replies[0]) == ["Close all and unlink", "Keep wallet linked"]
    assert await linked(sessions, t.user_id) is not None
    assert peer.positions(t.wallet.address)["ETH"].szi == pos.size

    # an old "Yes, unlink" (button data from before) asks again instead of unlinking
    again = await t.ann.press("wuy")
    assert "still has 1 open live position:" in text_of(again)
    assert await linked(sessions, t.user_id) is not None

    # the close still works: the agent key is still found through the linked wallet
    retry = await t.ann.choose(answer.replies[0], "Close all and unlink")
    assert "is unlinked" in text_of(retry)
    assert "ETH" not in peer.positions(t.wallet.address)
    assert await linked(sessions, t.user_id) is None


async def test_keep_wallet_linked_changes_nothing(sessions, peer) -> None:
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Live (Hyperliquid)")
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    ask = await t.ann.say("/unlink")
    kept = await t.ann.choose(ask.replies[0], "Keep wallet linked")
    assert "Your wallet stays linked." in text_of(kept)
    assert await linked(sessions, t.user_id) is not None
    assert len(await open_positions(sessions, "live")) == 1
    async with sessions() as s:
        assert (await s.execute(select(Deployment.status))).scalar_one() == "active"


async def test_with_only_paper_positions_unlink_works_as_before(sessions, peer) -> None:
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Paper", "Owl")
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    assert len(await open_positions(sessions, "paper")) == 1

    ask = await t.ann.say("/unlink")
    assert f"Unlink {t.wallet.address}?" in text_of(ask)
    assert labels(ask.replies[0]) == ["Yes, unlink", "Keep it"]
    bob = t.world.person("Bob", 2)
    await bob.say("/start")
    assert (await bob.choose(ask.replies[0], "Yes, unlink")).refused
    assert await linked(sessions, t.user_id) is not None

    done = await t.ann.choose(ask.replies[0], "Yes, unlink")
    assert f"Wallet {t.wallet.address} is unlinked." in text_of(done)
    assert await linked(sessions, t.user_id) is None
    assert len(await open_positions(sessions, "paper")) == 1  # paper goes on without a wallet


async def test_a_position_opened_after_the_question_is_not_stranded(sessions, peer) -> None:
    """Asked with nothing open, answered Yes after a live trade opened: it lists it instead."""
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Live (Hyperliquid)")
    ask = await t.ann.say("/unlink")
    assert labels(ask.replies[0]) == ["Yes, unlink", "Keep it"]
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    answer = await t.ann.choose(ask.replies[0], "Yes, unlink")
    assert "still has 1 open live position:" in text_of(answer)
    assert await linked(sessions, t.user_id) is not None


async def test_linking_another_wallet_waits_for_live_positions_too(sessions, peer) -> None:
    """A new /link replaces the linked wallet: with live positions open it is refused."""
    t = await live_world(sessions, peer)
    await deploy(t.ann, "Live (Hyperliquid)")
    await t.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
    refused = text_of(await t.ann.say("/link"))
    assert "has 1 open live position," in refused and "/unlink" in refused
    assert "connect?t=" not in refused
    await t.ann.choose((await t.ann.say("/unlink")).replies[0], "Close all and unlink")
    assert "connect?t=" in text_of(await t.ann.say("/link"))
