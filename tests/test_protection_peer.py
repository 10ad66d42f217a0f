"""Trigger (TP/SL) orders on the Hyperliquid stand-in, driven by the unmodified SDK: they rest
where HL shows them, fire when the mark crosses them, can be canceled and modified, and
`positionTpsl` ones follow the position."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import eth_account
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from tests.peers.hyperliquid_api import HyperliquidPeer
from tests.test_hyperliquid_peer import IOC, Sdk, Trader, call, statuses


def stop(px: float, tpsl: str = "sl") -> dict[str, Any]:
    return {"trigger": {"isMarket": True, "triggerPx": px, "tpsl": tpsl}}


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.close()


@pytest.fixture
async def peer() -> AsyncIterator[HyperliquidPeer]:
    async with HyperliquidPeer(slippage_bps=Decimal(10)) as p:  # takers 0.1% off the mid
        p.set_mid("ETH", "2000")
        yield p


@pytest.fixture
async def trader(peer: HyperliquidPeer, sdk: Sdk) -> Trader:
    account = eth_account.Account.create()
    peer.fund(account.address, Decimal(1000))
    owner = await sdk.exchange(account, peer.base_url)
    _, agent_key = await call(owner.approve_agent, "maxxit")
    agent = eth_account.Account.from_key(agent_key)
    exchange = await sdk.exchange(agent, peer.base_url, account_address=account.address)
    return Trader(account, agent, exchange, await sdk.info(peer.base_url))


async def long_eth(trader: Trader, size: float = 0.1) -> None:
    assert "filled" in statuses(await call(trader.exchange.order, "ETH", True, size, 2010, IOC))[0]


async def place(
    exchange: Exchange, px: float, tpsl: str, cloid: Cloid | None, size: float = 0.1, **kw: Any
) -> dict[str, Any]:
    order = {"coin": "ETH", "is_buy": False, "sz": size, "limit_px": round(px * 0.9),
             "order_type": stop(px, tpsl), "reduce_only": True, "cloid": cloid}  # fmt: skip
    return statuses(await call(exchange.bulk_orders, [order], **kw))[0]


async def open_triggers(info: Info, address: str) -> list[dict[str, Any]]:
    return [o for o in await call(info.frontend_open_orders, address) if o["isTrigger"]]


async def test_a_stop_rests_then_fires_when_the_mark_crosses_it(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    await long_eth(trader)
    sl, tp = Cloid.from_int(1), Cloid.from_int(2)
    placed = await place(trader.exchange, 1900, "sl", sl)
    assert placed == {"resting": {"oid": placed["resting"]["oid"], "cloid": str(sl)}}
    await place(trader.exchange, 2200, "tp", tp)
    rows = {o["orderType"]: o for o in await open_triggers(trader.info, trader.address)}
    assert rows["Stop Market"]["triggerPx"] == "1900.0"
    assert rows["Stop Market"]["triggerCondition"] == "Price below 1900.0"
    assert rows["Take Profit Market"]["triggerCondition"] == "Price above 2200.0"
    assert rows["Stop Market"]["reduceOnly"] is True and rows["Stop Market"]["tif"] is None
    assert len(await call(trader.info.open_orders, trader.address)) == 2
    status = await call(trader.info.query_order_by_cloid, trader.address, sl)
    assert status["order"]["status"] == "open" and status["order"]["order"]["isTrigger"] is True

    peer.set_mid("ETH", "1950")  # not yet
    assert len(await open_triggers(trader.info, trader.address)) == 2
    peer.set_mid("ETH", "1890")  # through the stop: a market close at 1890 less 0.1%
    assert peer.positions(trader.address) == {}
    fill = (await call(trader.info.user_fills, trader.address))[0]
    assert (fill["dir"], fill["px"], fill["sz"]) == ("Close Long", "1888.1", "0.1")
    assert fill["oid"] == placed["resting"]["oid"] and fill["cloid"] == str(sl)
    done = await call(trader.info.query_order_by_cloid, trader.address, sl)
    assert done["order"]["status"] == "filled"
    # the take profit of a flat position is gone with it
    left = await call(trader.info.query_order_by_cloid, trader.address, tp)
    assert left["order"]["status"] == "reduceOnlyCanceled"
    assert await open_triggers(trader.info, trader.address) == []


async def test_a_trigger_is_triggered_before_it_fills(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    await long_eth(trader)
    await place(trader.exchange, 1900, "sl", Cloid.from_int(3))
    peer.hold_triggers()
    peer.set_mid("ETH", "1850")
    status = await call(trader.info.query_order_by_cloid, trader.address, Cloid.from_int(3))
    assert status["order"]["status"] == "triggered"
    assert "ETH" in peer.positions(trader.address)
    peer.set_mid("ETH", "1800")
    [fill] = peer.release_triggers()
    assert fill.px == Decimal("1798.2") and peer.positions(trader.address) == {}


async def test_reduce_only_triggers_need_a_position(trader: Trader) -> None:
    placed = await place(trader.exchange, 1900, "sl", None)
    assert placed == {"error": "Reduce only order would increase position. asset=1"}


async def test_cancel_by_oid_and_by_cloid(peer: HyperliquidPeer, trader: Trader) -> None:
    await long_eth(trader)
    a = await place(trader.exchange, 1900, "sl", Cloid.from_int(4))
    await place(trader.exchange, 2200, "tp", Cloid.from_int(5))
    assert statuses(await call(trader.exchange.cancel, "ETH", a["resting"]["oid"])) == ["success"]
    result = await call(trader.exchange.cancel_by_cloid, "ETH", Cloid.from_int(5))
    assert statuses(result) == ["success"]
    assert await open_triggers(trader.info, trader.address) == []
    peer.set_mid("ETH", "1500")
    assert "ETH" in peer.positions(trader.address)  # nothing was left to fire


async def test_modify_replaces_the_stop_with_a_new_oid(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    await long_eth(trader)
    v1, v2 = Cloid.from_int(10), Cloid.from_int(11)
    first = (await place(trader.exchange, 1900, "sl", v1))["resting"]["oid"]
    result = await call(
        trader.exchange.modify_order, v1, "ETH", False, 0.1, 1773, stop(1970), True, v2
    )
    [status] = statuses(result)
    assert status["resting"]["oid"] != first and status["resting"]["cloid"] == str(v2)
    [row] = await open_triggers(trader.info, trader.address)
    assert (row["triggerPx"], row["cloid"]) == ("1970.0", str(v2))
    old = await call(trader.info.query_order_by_cloid, trader.address, v1)
    assert old["order"]["status"] == "canceled"
    # a modify of an order that is gone is refused; the cloid of another order is a duplicate
    gone = await call(trader.exchange.modify_order, v1, "ETH", False, 0.1, 1773, stop(1980), True)
    assert statuses(gone) == [{"error": "Cannot modify canceled or filled order"}]
    dup = await call(
        trader.exchange.modify_order, v2, "ETH", False, 0.1, 1773, stop(1980), True, v1
    )
    assert statuses(dup) == [{"error": "Duplicate cloid."}]
    peer.set_mid("ETH", "1960")  # above the old 1900, below the moved 1970: it fires
    assert peer.positions(trader.address) == {}


async def test_a_modify_may_keep_its_cloid(trader: Trader) -> None:
    await long_eth(trader)
    cloid = Cloid.from_int(12)
    await place(trader.exchange, 1900, "sl", cloid)
    result = await call(
        trader.exchange.modify_order, cloid, "ETH", False, 0.1, 1773, stop(1950), True, cloid
    )
    assert statuses(result)[0]["resting"]["cloid"] == str(cloid)
    status = await call(trader.info.query_order_by_cloid, trader.address, cloid)
    assert status["order"]["status"] == "open"
    assert status["order"]["order"]["triggerPx"] == "1950.0"


async def test_position_tpsl_follows_the_position(peer: HyperliquidPeer, trader: Trader) -> None:
    await long_eth(trader, 0.1)
    placed = await place(trader.exchange, 1900, "sl", Cloid.from_int(20), grouping="positionTpsl")
    assert "resting" in placed
    [row] = await open_triggers(trader.info, trader.address)
    assert row["isPositionTpsl"] is True and row["sz"] == "0.1"
    await long_eth(trader, 0.05)  # the position grows: so does what the stop closes
    [row] = await open_triggers(trader.info, trader.address)
    assert row["sz"] == "0.15"
    peer.set_mid("ETH", "1899")
    assert peer.positions(trader.address) == {}
    assert peer.fills(trader.address)[-1].sz == Decimal("0.15")


async def test_a_position_tpsl_is_canceled_when_the_position_closes(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    await long_eth(trader)
    cloid = Cloid.from_int(21)
    await place(trader.exchange, 1900, "sl", cloid, grouping="positionTpsl")
    peer.close_externally(trader.address, "ETH")
    status = await call(trader.info.query_order_by_cloid, trader.address, cloid)
    assert status["order"]["status"] == "canceled"
    assert await open_triggers(trader.info, trader.address) == []
