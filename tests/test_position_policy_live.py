"""The position policy on Hyperliquid (the stand-in, the unmodified SDK): a long, then a short
from the same agent, under `close` and `flip`, ends with our books equal to the account's one
net position; and /deploy refuses a second live agent on one account that would overwrite
the first one's leverage for a coin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from engine.ingest import IncomingPost
from storage.models import Agent, Order, Position
from tests.chat_helpers import text_of
from tests.hl_helpers import funded_trader
from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_pipeline import NOW, live_engine, seed
from tests.test_wallet_unlink import deploy, live_world


@pytest.fixture
async def peer():
    async with HyperliquidPeer(mids={"ETH": "2000", "BTC": "90000", "SOL": "150"}) as p:
        yield p


async def signed_books(sessions) -> dict[str, Decimal]:
    """Our open positions as the venue shows them: one signed size per market."""
    out: dict[str, Decimal] = {}
    async with sessions() as s:
        rows = await s.execute(
            select(Position.market, Position.side, Position.size).where(Position.status == "open")
        )
        for market, side, size in rows:
            out[market] = out.get(market, Decimal(0)) + (size if side == "long" else -size)
    return {m: v for m, v in out.items() if v != 0}


@pytest.mark.parametrize(("policy", "held"), [("close", {}), ("flip", {"ETH": Decimal("-0.15")})])
async def test_long_then_short_on_hyperliquid_ends_with_books_equal_to_the_venue(
    sessions, peer, policy: str, held: dict[str, Decimal]
) -> None:
    trader = await funded_trader(peer)
    await seed(sessions, [trader])
    async with sessions() as s, s.begin():
        await s.execute(update(Agent).values(position_policy=policy))
    engine, _, _ = await live_engine(sessions, peer, [trader], eth="2000")
    await engine.ingest(IncomingPost("x", "@hawk", "1", "Long $ETH now", NOW))
    await engine.ingest(IncomingPost("x", "@hawk", "2", "Short $ETH now", NOW))
    venue = {c: p.szi for c, p in peer.positions(trader.user.address).items() if p.szi != 0}
    assert venue == held == await signed_books(sessions)
    async with sessions() as s:
        orders = (
            await s.execute(
                select(Order.purpose, Order.side, Order.status, Order.reduce_only).order_by(
                    Order.id
                )
            )
        ).all()
        long = (await s.execute(select(Position).where(Position.side == "long"))).scalar_one()
    # the close was written (and sent) before the flip's open
    opened_short = ("open", "short", "filled", False)
    assert [tuple(o) for o in orders] == [
        ("open", "long", "filled", False),
        ("close", "long", "filled", True),
        opened_short if policy == "flip" else ("open", "short", "skipped", False),
    ]
    assert (long.status, long.close_reason) == ("closed", "opposite_signal")
    # the venue saw the close, then (flip) the open: never one order netting the long away
    at_venue = peer.orders(trader.user.address)
    assert [o.reduce_only for o in at_venue] == [False, True] + (
        [False] if policy == "flip" else []
    )


async def test_a_second_live_agent_at_another_leverage_on_one_account_is_refused(
    sessions, peer
) -> None:
    live = await live_world(sessions, peer)
    ann = live.ann
    await deploy(ann, "Live (Hyperliquid)", "Hawk")  # at 3x
    r = await ann.say("/deploy Owl")
    r = await ann.choose(r.replies[0], "Live (Hyperliquid)")
    await ann.say("100")
    await ann.say("2")
    r = await ann.choose(ann.last.replies[0], "Trade automatically")  # type: ignore[union-attr]
    assert "Market already held: Ignore" in text_of(r)  # the agent's policy, before deploying
    r = await ann.choose(r.replies[0], "Deploy")
    said = text_of(r)
    assert "Owl cannot run live on this account next to Hawk" in said, said
    assert "one leverage and margin mode per coin per account" in said
    assert "Deploy at 3x" in said
    # at the same leverage the two agents agree, and Owl goes live
    await deploy(ann, "Live (Hyperliquid)", "Owl")
