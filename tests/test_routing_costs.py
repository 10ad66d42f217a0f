"""MULTI's cost estimate counts Hyperliquid's funding (metaAndAssetCtxs, per hour, over the
agent's typical holding time, signed by the side) and crossing its book for this size (l2Book:
spread and price impact), both read from the stand-in before routing. Funding high or low
flips the venue; the stored decision keeps every candidate's cost parts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

import engine.signal_writing as engine_signal_writing
from engine.ingest import IncomingPost
from storage.models import RoutingDecision
from storage.types import utcnow
from tests.test_ostium_routing import both_venues

PARTS = ("fees_pct", "holding_pct", "spread_pct", "impact_pct")


async def _route(sessions, peer, ostium, text: str, funding: str, liquidity=()):
    # Ostium: 0.2 % to open, nothing to close, no rollover on ETH; Hyperliquid 0.045 % twice
    engine, _ = await both_venues(sessions, peer, ostium, ostium_taker_fee_p=200_000)
    peer.set_funding_rate("ETH", funding)
    if liquidity:
        peer.set_liquidity("ETH", *liquidity)
    outcome = await engine.ingest(IncomingPost("x", "@both", "1", text, utcnow()))
    async with sessions() as s:
        decision = (await s.execute(select(RoutingDecision))).scalar_one()
    return [sig.venue for sig in outcome.signals], {c["venue"]: c for c in decision.candidates}


def _adds_up(c: dict) -> None:
    assert sum(Decimal(c[p]) for p in PARTS) == Decimal(c["cost_pct"])


@pytest.mark.parametrize(
    ("funding", "venue", "hl_holding"),
    [
        ("0.0000125", "HYPERLIQUID", "0.0300"),  # HL's usual 0.00125 %/h: 24 h = 0.03 %
        ("0.0001", "OSTIUM", "0.2400"),  # 0.01 %/h: a day of funding beats Ostium's fee
    ],
)
async def test_a_long_goes_where_funding_leaves_it_cheaper(
    sessions, peer, ostium, funding, venue, hl_holding
) -> None:
    venues, candidates = await _route(sessions, peer, ostium, "Long $ETH now", funding)
    assert venues == [venue]
    hl, os_ = candidates["HYPERLIQUID"], candidates["OSTIUM"]
    # no history: a day's holding; funding from metaAndAssetCtxs, the spread from l2Book
    assert hl["holding_hours"] == "24.00" and hl["holding_pct"] == hl_holding
    assert hl["fees_pct"] == "0.0900" and Decimal(hl["spread_pct"]) > 0
    assert hl["impact_pct"] == "0.0000"  # ~$1M a level: $500 moves nothing
    assert (os_["fees_pct"], os_["holding_pct"]) == ("0.2000", "0.0000")
    for c in (hl, os_):
        _adds_up(c)


async def test_a_short_is_paid_the_funding_a_long_would_pay(sessions, peer, ostium) -> None:
    venues, candidates = await _route(sessions, peer, ostium, "Short $ETH now", "0.0001")
    assert venues == ["HYPERLIQUID"]
    assert candidates["HYPERLIQUID"]["holding_pct"] == "-0.2400"
    _adds_up(candidates["HYPERLIQUID"])


async def test_a_thin_book_costs_its_price_impact(sessions, peer, ostium) -> None:
    # 0.05 ETH a level: $500 (0.25 ETH) walks five levels each way
    thin = ["0.05"] * 5 + ["10"]
    venues, candidates = await _route(sessions, peer, ostium, "Long $ETH now", "0", thin)
    hl = candidates["HYPERLIQUID"]
    assert Decimal(hl["impact_pct"]) > 0
    _adds_up(hl)
    assert venues == ["HYPERLIQUID" if Decimal(hl["cost_pct"]) < Decimal("0.2") else "OSTIUM"]


async def test_a_book_that_cannot_take_the_size_is_not_eligible(sessions, peer, ostium) -> None:
    venues, candidates = await _route(sessions, peer, ostium, "Long $ETH now", "0", ["0.01"])
    assert venues == ["OSTIUM"]
    assert candidates["HYPERLIQUID"]["why"] == "book_too_thin"


async def test_a_signal_resumed_after_a_crash_is_routed_on_costs_read_then(
    sessions, peer, ostium, monkeypatch
) -> None:
    """A MULTI signal made but not routed when its process died is routed by the next life
    (or the stalled fan-out sweep) on the venues' costs read at that time, as `ingest` reads
    them, not on whatever the venue objects last held."""
    engine, _ = await both_venues(sessions, peer, ostium, ostium_taker_fee_p=200_000)
    peer.set_funding_rate("ETH", "0.0000125")  # cheap funding: Hyperliquid, if read now

    async def died_before_routing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("killed before routing")

    monkeypatch.setattr(engine_signal_writing, "route_and_write_orders", died_before_routing)
    with pytest.raises(RuntimeError):
        await engine.ingest(IncomingPost("x", "@both", "1", "Long $ETH now", utcnow()))
    monkeypatch.undo()
    peer.set_funding_rate("ETH", "0.0001")  # by the restart, a day of funding beats Ostium
    await engine.start()
    async with sessions() as s:
        decision = (await s.execute(select(RoutingDecision))).scalar_one()
    assert decision.venue == "OSTIUM"
    assert decision_holding(decision) == "0.2400"


def decision_holding(decision: RoutingDecision) -> str:
    return {c["venue"]: c for c in decision.candidates}["HYPERLIQUID"]["holding_pct"]
