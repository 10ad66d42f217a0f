"""The stand-in's history endpoints as the unmodified SDK reads them: userFills keeps only the
2,000 most recent fills, userFillsByTime pages oldest first (and aggregateByTime merges one
taker's fills), userFunding answers in the recorded shape, and a thin book shows in l2Book."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from hyperliquid.info import Info

from tests.hl_helpers import funded_trader
from tests.peers.hyperliquid_api import HyperliquidPeer, recorded


@pytest.fixture
async def info(peer: HyperliquidPeer):
    client = await asyncio.to_thread(Info, peer.base_url, True)
    yield client
    client.session.close()


async def test_user_fills_by_time_and_the_last_2000(peer: HyperliquidPeer, info: Info) -> None:
    trader = await funded_trader(peer, usdc="100000")
    address = trader.user.address
    start = peer.now_ms()
    for _ in range(1001):
        peer.trade_directly(address, "BTC", True, "0.001")
        peer.trade_directly(address, "BTC", False, "0.001")
    every = peer.fills(address)
    recent = await asyncio.to_thread(info.user_fills, address)
    assert [f["tid"] for f in recent] == [f.tid for f in reversed(every[-2000:])]  # newest first
    page = await asyncio.to_thread(info.user_fills_by_time, address, start)
    assert [f["tid"] for f in page] == [f.tid for f in every[:2000]]  # oldest first, 2,000
    rest = await asyncio.to_thread(info.user_fills_by_time, address, page[-1]["time"])
    assert every[-1].tid == rest[-1]["tid"] and len(rest) < 2000  # paged by time
    none = await asyncio.to_thread(info.user_fills_by_time, address, start, start - 1)
    assert none == []


async def test_aggregate_by_time_merges_one_takers_fills(peer: HyperliquidPeer, info) -> None:
    trader = await funded_trader(peer)
    address = trader.user.address
    peer.set_liquidity("ETH", "0.01", "0.03")
    peer.trade_directly(address, "ETH", True, "0.04")
    start = peer.fills(address)[0].time
    split = await asyncio.to_thread(info.user_fills_by_time, address, start)
    merged = await asyncio.to_thread(info.user_fills_by_time, address, start, None, True)
    assert [f["sz"] for f in split] == ["0.01", "0.03"]
    assert [f["px"] for f in split] == ["2000.0", "2000.1"]
    [one] = merged
    assert (one["sz"], one["px"]) == ("0.04", "2000.075")
    assert Decimal(one["fee"]) == sum(Decimal(f["fee"]) for f in split)
    book = await asyncio.to_thread(info.l2_snapshot, "ETH")
    assert book["levels"][1] == []  # the asks were eaten
    assert [(lv["px"], lv["sz"]) for lv in book["levels"][0]] == [
        ("2000.0", "0.01"),
        ("1999.9", "0.03"),
    ]


async def test_user_funding_in_the_recorded_shape(peer: HyperliquidPeer, info: Info) -> None:
    trader = await funded_trader(peer)
    address = trader.user.address
    peer.trade_directly(address, "ETH", False, "0.1")  # a short
    at = int(time.time() * 1000)
    [paid] = peer.pay_funding("ETH", "0.0001", oracle_px="2001.5", at_ms=at)
    rows = await asyncio.to_thread(info.user_funding_history, address, at - 1)
    real = recorded("user_funding_history_with_end_time.json", "userFunding")[0]
    [row] = rows
    assert row.keys() == real.keys() and row["delta"].keys() == real["delta"].keys()
    assert row["delta"] == {
        "type": "funding",
        "coin": "ETH",
        "usdc": "0.020015",  # -(-0.1) * 2001.5 * 0.0001: the short received it
        "szi": "-0.1",
        "fundingRate": "0.0001",
        "nSamples": None,
    }
    assert row["time"] == at and row["hash"] == paid.hash
    assert await asyncio.to_thread(info.user_funding_history, address, at - 10, at - 1) == []
    ctx = await asyncio.to_thread(info.meta_and_asset_ctxs)
    eth = next(i for i, a in enumerate(ctx[0]["universe"]) if a["name"] == "ETH")
    assert ctx[1][eth]["funding"] == "0.0001"
