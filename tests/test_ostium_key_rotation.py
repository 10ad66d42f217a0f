"""`maxxit vault rotate-agent-key USER ostium` against the local Ostium (anvil, the mock
contracts, the keeper), with live trades whose stop loss rests on the trade on chain.

The user is told in the chat to send setDelegate(new key) from their wallet; the connect page
builds it. Throughout (asked, sent on chain but not yet seen by us, switched), a price through a
stop closes the trade (Ostium's automation, the keeper here) and the books follow. The switch
happens when the chain names the new key: the monitor's next stop move is signed with it, the
old key's delegatedAction reverts from then on. An order in flight under the old key at the
switch is adopted once, and one the old key never broadcast is sent once, by the new key."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from bot import web_wallet
from bot.key_rotation import rotate_agent_key
from bot.ostium_trading import signer_lookup
from bot.settings import Settings
from bot.web import make_app
from engine.ingest import IncomingPost
from engine.pipeline import Engine
from engine.prices import PriceBook, PriceTick
from engine.venues.ostium import OstiumVenue
from handlers import ostium_rotation as handlers_rotation
from handlers.alerts import render
from storage.models import (
    AgentKey,
    AgentKeyRotation,
    AuditLog,
    Order,
    OstiumRequest,
    OutboxMessage,
    Position,
    User,
)
from storage.types import utcnow
from tests.chat_helpers import make_world, text_of
from tests.ostium_helpers import Trader, contracts, funded_trader, sign_and_send
from tests.peers.ostium.chain import send
from tests.peers.ostium.peer import OstiumPeer
from tests.peers.telegram_api import serve_app
from tests.test_ostium_pipeline import E18, live_engine, seed, until
from wallets import key_rotation, ostium_delegation, ostium_rotation, siwe_link
from wallets.ostium_delegation import DelegationReader, UnsignedTx
from wallets.vault import MasterKey, Vault, ensure_agent_key, load_agent

VENUE = "OSTIUM"


@dataclass
class Live:
    trader: Trader  # trader.user: the user's own wallet; trader.agent is not used
    user_id: int
    vault: Vault
    master: str
    engine: Engine
    venue: OstiumVenue
    prices: PriceBook


async def _live(sessions, ostium: OstiumPeer, fill_wait: float = 5.0) -> Live:
    """A user whose linked wallet made the vault's Ostium key its delegate (and approved
    USDC), deployed live on a MULTI agent; the engine signs with keys from the vault."""
    trader = funded_trader(ostium, usdc="1000", delegated=False)
    await seed(sessions, [trader])
    master = base64.b64encode(os.urandom(32)).decode()
    vault = Vault(MasterKey.parse(master))
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, trader.user.address, 42161, datetime.now(UTC))
        agent = await ensure_agent_key(s, vault, user_id, VENUE)
    ostium.fund(agent, "0")  # gas money
    for tx in ostium_delegation.setup_txs(contracts(ostium), agent, Decimal(2000)):
        sign_and_send(ostium, trader.user, tx)
    engine, venue, prices = await live_engine(sessions, ostium, [], fill_wait=fill_wait)
    venue.signer_for = signer_lookup(sessions, vault, venue.delegate_of)
    for market in ("XAU", "SPX", "EURUSD"):
        prices.update(PriceTick(utcnow(), market, ostium.pair(market).price))
    return Live(trader, user_id, vault, master, engine, venue, prices)


def _settings(live: Live, ostium: OstiumPeer, db_url: str) -> Settings:
    a = ostium.addresses()
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        maxxit_master_key=live.master,  # type: ignore[arg-type]
        public_url="https://maxxit.example",
        ostium_rpc_url=ostium.rpc_url,
        ostium_contracts=",".join(f"{k}={v}" for k, v in a.items()),
    )


async def _post(live: Live, text: str, pid: str) -> None:
    await live.engine.ingest(IncomingPost("x", "@goldbug", pid, text, utcnow()))


async def _key(sessions) -> AgentKey:
    async with sessions() as s:
        return (await s.execute(select(AgentKey))).scalar_one()


async def _status(sessions) -> dict[str, tuple[str, str | None]]:
    async with sessions() as s:
        rows = (await s.execute(select(Position))).scalars().all()
    return {p.market: (str(p.status), p.close_reason and str(p.close_reason)) for p in rows}


async def _stop_closes(live: Live, ostium: OstiumPeer, market: str, price: str) -> None:
    """The price goes through the market's stop; Ostium's automation closes the trade and
    the books follow (reconciliation)."""
    ostium.set_price(market, price)

    async def gone() -> bool:
        return not [
            t
            for t in ostium.open_trades(live.trader.user.address)
            if t["pair"]["id"] == str(ostium.pair(market).id)
        ]

    await until(gone)
    assert await live.engine.reconcile(VENUE) == 1


def _signer_of_last(ostium: OstiumPeer, event: Any) -> str:
    """Who signed the transaction of the newest such event on the trading contract."""
    [*_, last] = event.get_logs(from_block=0)
    return str(ostium.w3.eth.get_transaction(last["transactionHash"])["from"])


def _old_key_acts(ostium: OstiumPeer, old: LocalAccount, trader: str, inner: str) -> int:
    trading = ostium.contracts.ostium
    return int(send(ostium.w3, old, trading.functions.delegatedAction(trader, inner))["status"])


async def _outbox(sessions, kind: str) -> list[OutboxMessage]:
    async with sessions() as s:
        rows = await s.execute(select(OutboxMessage).where(OutboxMessage.kind == kind))
        return list(rows.scalars())


async def test_rotation_on_ostium_keeps_every_trade_protected_and_revokes_the_old_key(
    sessions, ostium, db_url: str
) -> None:
    live = await _live(sessions, ostium)
    wallet = live.trader.user.address
    await _post(live, "Long $XAU now", "1")
    await _post(live, "Long $EURUSD now", "2")
    async with sessions() as s:
        old = await load_agent(s, live.vault, live.user_id, VENUE)
    assert old is not None and (await _key(sessions)).address == old.address
    assert {m: st for m, (st, _) in (await _status(sessions)).items()} == {
        "XAU": "open",
        "EURUSD": "open",
    }

    # 1. the operator starts the rotation; the user is told what to sign, and where
    assert await rotate_agent_key(_settings(live, ostium, db_url), str(live.user_id), "ostium") == 0
    [asked] = await _outbox(sessions, "agent_key_rotating")
    new_agent = asked.payload["agent"]
    assert new_agent != old.address and asked.payload["venue"] == VENUE
    told = render(asked.kind, asked.payload, "en")
    assert f"setDelegate({new_agent})" in told and "ost=1" in told
    token = asked.payload["url"].split("t=")[1].split("&")[0]
    ostium.fund(new_agent, "0")  # gas money, as the operator is reminded

    # meanwhile the old key trades as before, and a stop crossed closes its trade
    await _post(live, "Long the S&P 500 index, $SPX, now", "3")
    async with sessions() as s:
        signers = {r.signer for r in (await s.execute(select(OstiumRequest))).scalars()}
    assert signers == {old.address}
    await _stop_closes(live, ostium, "EURUSD", "1.04")

    # 2. the connect page builds the one transaction; the user's wallet sends it
    world = await make_world(sessions)
    services = world.bot.services
    services.vault = live.vault
    services.ostium = DelegationReader(ostium.rpc_url, contracts(ostium))
    app = make_app(extra=web_wallet.routes(services))
    async with serve_app(app) as root, httpx.AsyncClient(base_url=root) as web:
        page = (await web.post("/api/ostium/delegation", json={"token": token})).json()
        assert page["agent"] == new_agent and page["rotation"] is True
        assert [t["purpose"] for t in page["transactions"]] == ["ostium_set_delegate"]
        [tx] = page["transactions"]
        sign_and_send(ostium, live.trader.user, UnsignedTx(tx["to"], tx["data"]))
        trading = ostium.contracts.ostium
        assert trading.functions.delegations(wallet).call() == new_agent

        # mined, and nobody here has looked yet: the keeper still guards every trade
        assert (await _key(sessions)).address == old.address
        await _stop_closes(live, ostium, "SPX", "5600")

        # 3. the monitor moves the trailing stop: the venue sees the chain's new delegate,
        # the rotation is finished, and the move is signed with the new key
        ostium.set_price("XAU", "2050")
        await live.engine.on_price(PriceTick(utcnow(), "XAU", Decimal(2050)))
        await live.engine.checkpoint()
        [trade] = ostium.open_trades(wallet)
        assert Decimal(trade["stopLossPrice"]) / E18 == pytest.approx(Decimal("2029.5"))
        assert _signer_of_last(ostium, trading.events.SlUpdated) == new_agent
        key = await _key(sessions)
        assert key.address == new_agent
        async with sessions() as s:
            assert (await load_agent(s, live.vault, live.user_id, VENUE)).address == new_agent
            rotation = (await s.execute(select(AgentKeyRotation))).scalar_one()
        assert rotation.completed_at is not None

        # the page, asking after the switch, hears it is done; its link is spent then
        done = await web.post("/api/ostium/confirm", json={"token": token})
        assert done.json() == {"rotated": True}
        again = await web.post("/api/ostium/confirm", json={"token": token})
        assert again.status_code == 403

    # the old key can no longer act for the trader: its delegatedAction reverts
    update_sl = trading.encode_abi("updateSl", [2, 0, 1990 * 10**18])
    assert _old_key_acts(ostium, old, wallet, update_sl) == 0
    [trade] = ostium.open_trades(wallet)
    assert Decimal(trade["stopLossPrice"]) / E18 == pytest.approx(Decimal("2029.5"))

    # and the trade stays protected: through the trailing stop, the keeper closes it
    await _stop_closes(live, ostium, "XAU", "2025")
    assert await _status(sessions) == {
        "XAU": ("closed", "trailing_stop"),
        "EURUSD": ("closed", "stop_loss"),
        "SPX": ("closed", "stop_loss"),
    }

    # the user was told it is done; the rotation is on the record, no secret in it
    [finished] = await _outbox(sessions, "agent_key_rotated")
    text = render(finished.kind, finished.payload, "en")
    assert new_agent in text and old.address in text and "can no longer act" in text
    async with sessions() as s:
        audit = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
    rotated = [a for a in audit if a.action.startswith("rotate_agent_key")]
    assert [(a.action, a.transport, a.target) for a in rotated] == [
        ("rotate_agent_key_requested", "cli", "agent:OSTIUM"),
        ("rotate_agent_key", "chain", "agent:OSTIUM"),
    ]
    assert rotated[1].details == {
        "old_agent": old.address,
        "new_agent": new_agent,
        "account": wallet,
    }


async def _rotate_on_chain(sessions, live: Live, ostium: OstiumPeer) -> str:
    """The rotation asked for and the user's setDelegate(new) mined; not yet seen here."""
    async with sessions() as s, s.begin():
        started = await key_rotation.start(s, live.vault, live.user_id, VENUE, utcnow(), True)
    assert not isinstance(started, str)
    ostium.fund(started.new_address, "0")
    for tx in ostium_rotation.rotation_txs(contracts(ostium), started.new_address):
        sign_and_send(ostium, live.trader.user, tx)
    return started.new_address


async def test_an_order_in_flight_under_the_old_key_is_adopted_once(sessions, ostium) -> None:
    live = await _live(sessions, ostium, fill_wait=0.2)
    ostium.keeper.hold = True  # the keeper is late: the open waits on chain
    await _post(live, "Long $XAU now", "1")
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        [request] = (await s.execute(select(OstiumRequest))).scalars().all()
    old_agent = (await _key(sessions)).address
    assert order.status == "pending" and request.signer == old_agent

    new_agent = await _rotate_on_chain(sessions, live, ostium)
    ostium.keeper.hold = False  # the keeper fills the old key's order after the switch
    await until(lambda: _open(ostium, live))
    restarted, venue, prices = await live_engine(sessions, ostium, [])
    venue.signer_for = signer_lookup(sessions, live.vault, venue.delegate_of)
    prices.update(PriceTick(utcnow(), "XAU", Decimal(2000)))
    await restarted.start()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        positions = (await s.execute(select(Position))).scalars().all()
    assert order.status == "filled" and len(positions) == 1
    # one order ever asked of Ostium, one trade; its stop set by the new key
    assert ostium.contracts.ostium.functions.orderCounter().call() == 1
    [trade] = ostium.open_trades(live.trader.user.address)
    assert Decimal(trade["stopLossPrice"]) / E18 == pytest.approx(Decimal(1940))
    assert _signer_of_last(ostium, ostium.contracts.ostium.events.SlUpdated) == new_agent
    assert (await _key(sessions)).address == new_agent


async def _open(ostium: OstiumPeer, live: Live) -> bool:
    return bool(ostium.open_trades(live.trader.user.address))


async def test_an_order_the_old_key_never_broadcast_is_sent_once_by_the_new_key(
    sessions, ostium, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await _live(sessions, ostium)
    journal = live.venue.journal
    written = journal.write

    async def crash_after_the_journal(request: Any) -> None:
        await written(request)
        raise RuntimeError("the process died before the transaction went out")

    monkeypatch.setattr(journal, "write", crash_after_the_journal)
    await _post(live, "Long $XAU now", "1")
    monkeypatch.undo()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        [request] = (await s.execute(select(OstiumRequest))).scalars().all()
    old_agent = (await _key(sessions)).address
    # the journal may hold the signed transaction's hash (it is written before the
    # broadcast); nothing reached Ostium
    assert order.status == "pending" and request.signer == old_agent
    assert ostium.contracts.ostium.functions.orderCounter().call() == 0
    async with sessions() as s:
        old = await load_agent(s, live.vault, live.user_id, VENUE)
    assert old is not None

    new_agent = await _rotate_on_chain(sessions, live, ostium)
    await live.engine.resume_pending()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        [request] = (await s.execute(select(OstiumRequest))).scalars().all()
    assert order.status == "filled" and request.signer == new_agent
    assert len(ostium.open_trades(live.trader.user.address)) == 1
    assert ostium.contracts.ostium.functions.orderCounter().call() == 1

    # had the old key's transaction gone out late after all, Ostium refuses it
    trading = ostium.contracts.ostium
    trade = (100 * 10**6, 2000 * 10**18, 0, 0, old.address, 500, 2, 0, True, False)
    inner = trading.encode_abi("openTrade", [trade, ("0x" + "0" * 40, 0), 0, 200])
    assert _old_key_acts(ostium, old, live.trader.user.address, inner) == 0
    assert len(ostium.open_trades(live.trader.user.address)) == 1


@dataclass
class Asked:
    """A chat user whose wallet delegates to the vault's key, and a rotation asked for."""

    world: Any
    services: Any
    trader: Trader
    user_id: int
    old_agent: str
    new_agent: str


async def rotation_asked(sessions, ostium: OstiumPeer) -> Asked:
    world = await make_world(sessions)
    services = world.bot.services
    services.vault = Vault(MasterKey.parse(base64.b64encode(os.urandom(32)).decode()))
    services.ostium = DelegationReader(ostium.rpc_url, contracts(ostium))
    trader = funded_trader(ostium, usdc="500", delegated=False)
    await world.person("Ann", 1).say("/start")
    async with sessions() as s, s.begin():
        user_id = (await s.execute(select(User.id))).scalar_one()
        await siwe_link._link(s, user_id, trader.user.address, 42161, datetime.now(UTC))
        old_agent = await ensure_agent_key(s, services.vault, user_id, VENUE)
    for tx in ostium_delegation.setup_txs(contracts(ostium), old_agent, Decimal(500)):
        sign_and_send(ostium, trader.user, tx)
    async with sessions() as s, s.begin():
        started = await key_rotation.start(s, services.vault, user_id, VENUE, utcnow(), True)
    assert not isinstance(started, str)
    return Asked(world, services, trader, user_id, old_agent, started.new_address)


async def test_wallet_shows_the_rotation_and_finishes_it_once_the_chain_switched(
    sessions, ostium
) -> None:
    asked = await rotation_asked(sessions, ostium)
    ann = asked.world.person("Ann", 1)  # the user who said /start
    trader, user_id, new_agent = asked.trader, asked.user_id, asked.new_agent

    # asked, not yet sent: /wallet says what to send, with the connect page's link
    pending = text_of(await ann.say("/wallet"))
    assert f"Send setDelegate({new_agent}) from your wallet" in pending and "ost=1" in pending

    for tx in ostium_rotation.rotation_txs(contracts(ostium), new_agent):
        sign_and_send(ostium, trader.user, tx)
    done = text_of(await ann.say("/wallet"))
    assert f"Maxxit's key {new_agent} trades for you" in done
    assert (await _key(sessions)).address == new_agent
    # the scheduled check and a second replica's finish find it done: one switch, one record
    assert await handlers_rotation.switch_all(sessions, utcnow, venue_delegate(ostium)) == 0
    async with sessions() as s:
        rotation_id = (await s.execute(select(AgentKeyRotation.id))).scalar_one()
    again = await handlers_rotation.finish(sessions, utcnow(), rotation_id, user_id, "x", "chain")
    assert again is None
    async with sessions() as s:
        audit = (
            (await s.execute(select(AuditLog).where(AuditLog.action == "rotate_agent_key")))
            .scalars()
            .all()
        )
    assert [(a.transport, a.details["new_agent"]) for a in audit] == [("console", new_agent)]
    assert len(await _outbox(sessions, "agent_key_rotated")) == 1


async def test_the_scheduled_check_finishes_a_rotation_signed_later(sessions, ostium) -> None:
    live = await _live(sessions, ostium)
    new_agent = await _rotate_on_chain(sessions, live, ostium)
    delegate_of = venue_delegate(ostium)
    assert await handlers_rotation.switch_all(sessions, utcnow, delegate_of) == 1
    assert await handlers_rotation.switch_all(sessions, utcnow, delegate_of) == 0
    assert (await _key(sessions)).address == new_agent
    async with sessions() as s:
        [row] = (
            (await s.execute(select(AuditLog).where(AuditLog.action == "rotate_agent_key")))
            .scalars()
            .all()
        )
    assert row.transport == "chain" and row.details["new_agent"] == new_agent


def venue_delegate(ostium: OstiumPeer):  # type: ignore[no-untyped-def]
    """The trading contract's delegate of a trader, as the venue reads it."""
    reader = DelegationReader(ostium.rpc_url, contracts(ostium))

    async def delegate_of(trader: str) -> str | None:
        return (await reader.state(trader)).delegate

    return delegate_of


async def test_an_open_the_switch_reverted_is_sent_again_by_the_new_key(
    sessions, ostium, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's setDelegate(new key) is mined just before the old key's open: that
    transaction reverts (it can never fill), and the order goes out again, once, under the
    new key; the user is not told it failed."""
    live = await _live(sessions, ostium)
    send = live.venue._send
    rotated: list[str] = []

    async def switch_just_before(signer: Any, call: Any, journal: Any = None) -> Any:
        if not rotated:
            rotated.append(await _rotate_on_chain(sessions, live, ostium))
        return await send(signer, call, journal)

    monkeypatch.setattr(live.venue, "_send", switch_just_before)
    old_agent = (await _key(sessions)).address
    await _post(live, "Long $XAU now", "1")
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
    assert order.status == "pending" and order.error == "key_rotated"

    await live.engine.resume_pending()
    async with sessions() as s:
        order = (await s.execute(select(Order))).scalar_one()
        [request] = (await s.execute(select(OstiumRequest))).scalars().all()
        positions = (await s.execute(select(Position))).scalars().all()
    [new_agent] = rotated
    assert new_agent != old_agent
    assert order.status == "filled" and len(positions) == 1
    assert request.signer == new_agent
    # the reverted transaction made no order: one order ever reached Ostium, one trade
    assert ostium.contracts.ostium.functions.orderCounter().call() == 1
    assert len(ostium.open_trades(live.trader.user.address)) == 1
