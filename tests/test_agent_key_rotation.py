"""`maxxit vault rotate-agent-key` against the Hyperliquid stand-in, with live positions whose
stops rest on the venue: the old key trades until the user approves the new one on the
connect page; then the new key replaces it here, Hyperliquid no longer accepts the old one,
the resting stops never left the venue, and the new key manages the positions."""

from __future__ import annotations

from hyperliquid.exchange import Exchange
from sqlalchemy import select

from bot.key_rotation import rotate_agent_key
from bot.settings import Settings
from engine.notify import Dispatcher
from storage.models import AgentKey, AgentKeyRotation, AuditLog, Position
from tests.chat_helpers import text_of
from tests.live_world import (
    Live,
    approve_on_page,
    create_agent,
    deploy_live,
    link_wallet,
    live_world,
    resting_triggers,
)
from tests.test_abuse_limits import Capture
from tests.test_hyperliquid_peer import call
from wallets import hyperliquid_agent
from wallets.vault import load_agent


async def _key(live: Live) -> AgentKey:
    async with live.world.sessions() as s:
        return (await s.execute(select(AgentKey))).scalar_one()


async def _stops(live: Live) -> dict[str, tuple[int, str]]:
    """coin -> (order id, trigger price) of what rests on the venue."""
    return {o["coin"]: (o["oid"], o["triggerPx"]) for o in await resting_triggers(live)}


def _settings(live: Live, db_url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        maxxit_master_key=live.master,  # type: ignore[arg-type]
        public_url=live.root,
    )


async def test_rotation_revokes_the_old_key_and_keeps_positions_protected(
    sessions, peer, db_url: str
) -> None:
    async with live_world(sessions, peer) as live:
        old_agent = await approve_on_page(live, await link_wallet(live))
        await create_agent(live.ann)
        assert "is deployed" in await deploy_live(live.ann)
        await live.world.post("@CryptoHawk", "Long $ETH, breakout", "p1")
        before = await _stops(live)
        assert list(before) == ["ETH"]
        old = await _key(live)
        async with sessions() as s:
            old_account = await load_agent(s, live.vault, old.user_id, "HYPERLIQUID")
        assert old_account is not None and old.address == old_agent

        # 1. the operator starts the rotation; the user is sent the approval link
        assert await rotate_agent_key(_settings(live, db_url), str(old.user_id), "hyperliquid") == 0
        capture = Capture()
        await Dispatcher(sessions, capture).deliver_pending()
        [asked] = [m for m in capture.got if m.kind == "agent_key_rotating"]
        new_agent = asked.payload["agent"]
        assert new_agent != old_agent and asked.payload["url"].startswith(live.root)
        token = asked.payload["url"].split("t=")[1].split("&")[0]

        # meanwhile the old key trades as before and the stop stays put
        assert [a.address for a in peer.agents(live.wallet.address)] == [old_agent.lower()]
        assert (await _key(live)).address == old_agent
        await live.world.post("@CryptoHawk", "Long $BTC too", "p2")
        during = await _stops(live)
        assert during["ETH"] == before["ETH"] and "BTC" in during
        assert set(peer.positions(live.wallet.address)) == {"ETH", "BTC"}

        # 2. the user approves the new key on the connect page
        assert await approve_on_page(live, token) == new_agent
        key = await _key(live)
        assert key.address == new_agent and key.approved_at is not None
        async with sessions() as s:
            loaded = await load_agent(s, live.vault, key.user_id, "HYPERLIQUID")
            rotation = (await s.execute(select(AgentKeyRotation))).scalar_one()
        assert loaded is not None and loaded.address == new_agent
        assert rotation.completed_at is not None

        # the old key is unapproved at the venue: Hyperliquid refuses what it signs
        assert [a.address for a in peer.agents(live.wallet.address)] == [new_agent.lower()]
        assert not await hyperliquid_agent.is_approved(
            peer.base_url, live.wallet.address, old_agent
        )
        old_exchange = await call(
            Exchange, old_account, peer.base_url, account_address=live.wallet.address
        )
        try:
            refused = await call(old_exchange.update_leverage, 3, "ETH")
        finally:
            old_exchange.session.close()
            old_exchange.info.session.close()
        assert refused["status"] == "err" and "does not exist" in refused["response"]

        # the stops never left the venue
        assert await _stops(live) == during
        # the link that approved it is spent
        again = await live.web.post("/api/hyperliquid/approval", json={"token": token})
        assert again.status_code == 403

        # 3. the new key manages the positions: a close from the chat goes through
        positions = await live.ann.say("/positions")
        eth = next(r for r in positions.replies[1:] if "ETH" in r.text)
        ask = await live.ann.choose(eth, "Close")
        closed = await live.ann.choose(ask.replies[0], "Yes, close")
        assert "closed by you" in text_of(closed)
        assert set(peer.positions(live.wallet.address)) == {"BTC"}
        after = await _stops(live)
        assert list(after) == ["BTC"] and after["BTC"] == during["BTC"]
        async with sessions() as s:
            statuses = {p.market: p.status for p in (await s.execute(select(Position))).scalars()}
            audit = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
        assert statuses == {"ETH": "closed", "BTC": "open"}
        rotated = [a for a in audit if a.action.startswith("rotate_agent_key")]
        assert [(a.action, a.transport) for a in rotated] == [
            ("rotate_agent_key_requested", "cli"),
            ("rotate_agent_key", "web"),
        ]
        assert rotated[1].details["old_agent"] == old_agent
        assert rotated[1].details["new_agent"] == new_agent


async def test_rotation_needs_an_approved_key_and_a_known_venue(
    sessions, peer, db_url: str, capsys
) -> None:
    async with live_world(sessions, peer) as live:
        await live.ann.say("/start")
        settings = _settings(live, db_url)
        assert await rotate_agent_key(settings, "1", "binance") == 2
        assert await rotate_agent_key(settings, "1", "ostium") == 2  # no Arbitrum node set
        assert await rotate_agent_key(settings, "999", "hyperliquid") == 1
        assert await rotate_agent_key(settings, "console:1", "hyperliquid") == 1
        err = capsys.readouterr().err
        assert "only HYPERLIQUID, OSTIUM" in err and "no user 999" in err
        assert "Ostium live trading is not configured" in err
        assert "nothing to rotate (no_agent)" in err
