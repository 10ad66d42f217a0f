"""The Hyperliquid stand-in, driven by the unmodified hyperliquid-python-sdk over HTTP and
WebSocket. The SDK is synchronous, so every call runs in a thread while the peer serves in the
test's event loop."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import eth_account
import pytest
import requests
import websocket
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError, ServerError
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action
from hyperliquid.utils.types import Cloid

from tests.peers.hyperliquid_api import HyperliquidPeer, recorded

T = TypeVar("T")
IOC = {"limit": {"tif": "Ioc"}}
GTC = {"limit": {"tif": "Gtc"}}
# ETH at 2000 with 10 bps of slippage: takers buy at 2002 and sell at 1998.
SLIPPAGE_BPS = Decimal(10)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


@dataclass
class Trader:
    account: LocalAccount  # holds the funds; never signs orders
    agent: LocalAccount  # the API wallet the bot signs with
    exchange: Exchange  # signed by the agent, for the account
    info: Info

    @property
    def address(self) -> str:
        return self.account.address


class Sdk:
    """Makes the SDK's clients (their constructors already call /info) and closes their HTTP
    sessions after the test, so no keep-alive socket outlives it."""

    def __init__(self) -> None:
        self.made: list[Info | Exchange] = []

    async def info(self, base_url: str, skip_ws: bool = True) -> Info:
        info = await call(Info, base_url, skip_ws)
        self.made.append(info)
        return info

    async def exchange(self, wallet: LocalAccount, base_url: str, **kwargs: Any) -> Exchange:
        exchange = await call(Exchange, wallet, base_url, **kwargs)
        self.made += [exchange, exchange.info]
        return exchange

    def close(self) -> None:
        for client in self.made:
            client.session.close()


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    made = Sdk()
    yield made
    made.close()


@pytest.fixture
async def peer() -> AsyncIterator[HyperliquidPeer]:
    async with HyperliquidPeer(slippage_bps=SLIPPAGE_BPS) as p:
        p.set_mid("ETH", "2000")
        yield p


@pytest.fixture
async def trader(peer: HyperliquidPeer, sdk: Sdk) -> Trader:
    account = eth_account.Account.create()
    peer.fund(account.address, Decimal(1000))
    owner = await sdk.exchange(account, peer.base_url)
    result, agent_key = await call(owner.approve_agent, "maxxit")
    assert result == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(agent_key)
    exchange = await sdk.exchange(agent, peer.base_url, account_address=account.address)
    return Trader(account, agent, exchange, await sdk.info(peer.base_url))


def statuses(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert result["status"] == "ok", result
    return list(result["response"]["data"]["statuses"])


async def test_info_answers_in_the_recorded_shapes(peer: HyperliquidPeer, sdk: Sdk) -> None:
    info = await sdk.info(peer.base_url)
    assert await call(info.meta) == recorded("get_info.json", "meta")
    assert info.name_to_asset("BTC") == 0 and info.name_to_asset("ETH") == 1  # universe index
    mids = await call(info.all_mids)
    assert mids["BTC"] == "30135.0" and mids["ETH"] == "2000.0"
    state = await call(info.user_state, "0x" + "ab" * 20)  # a stranger: zeros, not an error
    real = recorded("get_user_state.json", "clearinghouseState")
    assert real.keys() <= state.keys() and state["assetPositions"] == []
    assert state["marginSummary"].keys() == real["marginSummary"].keys()
    book = await call(info.l2_snapshot, "ETH")
    assert book["levels"][0][0]["px"] == "1999.9" and book["levels"][1][0]["px"] == "2000.1"
    weights = [(r.type, r.weight) for r in peer.requests]
    assert weights == [("spotMeta", 20), ("meta", 20), ("meta", 20), ("allMids", 2),
                       ("clearinghouseState", 2), ("l2Book", 2)]  # fmt: skip


async def test_an_agent_trades_for_its_account(peer: HyperliquidPeer, trader: Trader) -> None:
    cloid = Cloid.from_int(7)
    result = await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC, cloid=cloid)
    [order] = peer.orders(trader.address)
    assert statuses(result) == [
        {"filled": {"totalSz": "0.1", "avgPx": "2002.0", "oid": order.oid, "cloid": str(cloid)}}
    ]
    assert peer.positions(trader.agent.address) == {}  # the agent holds nothing itself
    [row] = (await call(trader.info.user_state, trader.address))["assetPositions"]
    position = row["position"]
    assert (position["coin"], position["szi"], position["entryPx"]) == ("ETH", "0.1", "2002.0")
    assert position["leverage"] == {"type": "cross", "value": 20}
    assert position["unrealizedPnl"] == "-0.2"  # marked at the 2000 mid

    status = await call(trader.info.query_order_by_cloid, trader.address, cloid)
    assert status["status"] == "order" and status["order"]["status"] == "filled"
    assert status["order"]["order"]["cloid"] == str(cloid)
    assert status["order"]["order"]["origSz"] == "0.1"
    missing = await call(trader.info.query_order_by_cloid, trader.address, Cloid.from_int(8))
    assert missing == {"status": "unknownOid"}

    [fill] = await call(trader.info.user_fills, trader.address)
    assert [fill[k] for k in ("dir", "side", "px", "fee")] == [
        "Open Long",
        "B",
        "2002.0",
        "0.09009",
    ]
    assert fill["cloid"] == str(cloid) and fill["crossed"] is True and fill["feeToken"] == "USDC"

    again = await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC, cloid=cloid)
    assert statuses(again) == [{"error": "Duplicate cloid."}]
    assert peer.positions(trader.address)["ETH"].szi == Decimal("0.1")

    role = await call(trader.info.user_role, trader.agent.address)
    assert role == {"role": "agent", "data": {"user": trader.address.lower()}}
    [agent] = await call(trader.info.extra_agents, trader.address)
    assert (agent["name"], agent["address"]) == ("maxxit", trader.agent.address.lower())


async def test_who_may_sign(peer: HyperliquidPeer, trader: Trader, sdk: Sdk) -> None:
    stranger = eth_account.Account.create()
    exchange = await sdk.exchange(stranger, peer.base_url)
    result = await call(exchange.order, "ETH", True, 0.1, 2010, IOC)
    assert result == {
        "status": "err",
        "response": f"L1 error: User or API Wallet {stranger.address.lower()} does not exist.",
    }
    result, _ = await call(exchange.approve_agent)
    deposit_first = "Must deposit before performing actions. User: " + stranger.address.lower()
    assert result == {"status": "err", "response": deposit_first}

    # The SDK signs for mainnet only against https://api.hyperliquid.xyz: a mainnet peer
    # recovers someone else from its (testnet) signatures.
    async with HyperliquidPeer(is_mainnet=True) as mainnet:
        mainnet.fund(trader.address, Decimal(100))
        owner = await sdk.exchange(trader.account, mainnet.base_url)
        result = await call(owner.update_leverage, 10, "ETH")
        assert result["status"] == "err" and "does not exist" in result["response"]
        assert trader.address.lower() not in result["response"]

    # The account's own key may trade too; an expired agent may not.
    owner = await sdk.exchange(trader.account, peer.base_url)
    assert "filled" in statuses(await call(owner.order, "ETH", True, 0.01, 2010, IOC))[0]
    peer.expire_agent(trader.agent.address)
    result = await call(trader.exchange.order, "ETH", True, 0.01, 2010, IOC)
    assert (
        result["response"]
        == f"L1 error: User or API Wallet {trader.agent.address.lower()} does not exist."
    )


async def test_hl_hashes_its_own_serialization(peer: HyperliquidPeer, trader: Trader) -> None:
    """A price sent as "2010.0" is signed over those bytes, but HL re-serializes it as "2010"
    before hashing: the signature then names someone else."""
    action = {
        "type": "order",
        "grouping": "na",
        "orders": [{"a": 1, "b": True, "p": "2010.0", "s": "0.1", "r": False, "t": IOC}],
    }
    nonce = get_timestamp_ms()
    signature = sign_l1_action(trader.agent, action, None, nonce, None, False)
    body = {"action": action, "nonce": nonce, "signature": signature}
    result = await call(trader.exchange.post, "/exchange", body)
    assert result["status"] == "err" and "does not exist" in result["response"]
    assert trader.agent.address.lower() not in result["response"]


async def test_nonces(
    peer: HyperliquidPeer, trader: Trader, monkeypatch: pytest.MonkeyPatch
) -> None:
    nonce = get_timestamp_ms()
    monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: nonce)
    assert (await call(trader.exchange.update_leverage, 10, "ETH"))["status"] == "ok"
    result = await call(trader.exchange.update_leverage, 10, "ETH")
    assert result == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
    stale = nonce - 3 * 86_400_000
    monkeypatch.setattr("hyperliquid.exchange.get_timestamp_ms", lambda: stale)
    result = await call(trader.exchange.update_leverage, 10, "ETH")
    assert result["status"] == "err" and result["response"].startswith("Invalid nonce")


async def test_refusals_and_a_reduce_only_close(peer: HyperliquidPeer, trader: Trader) -> None:
    ex = trader.exchange
    assert "filled" in statuses(await call(ex.order, "ETH", True, 0.1, 2010, IOC))[0]
    refusals: list[tuple[str, float, float, bool]] = [  # message, size, limit price, reduce-only
        ("Reduce only order would increase position. asset=1", 0.1, 2010, True),
        ("Order has invalid price.", 0.1, 2002.123, False),  # ETH: 2 decimals at most
        ("Order has invalid size.", 0.00001, 2010, False),  # ETH: szDecimals 4
        ("Order must have minimum value of $10. asset=1", 0.001, 2010, False),
        ("Order could not immediately match against any resting orders. asset=1", 0.1, 1990,
         False),
        ("Insufficient margin to place order. asset=1", 10, 2010, False),
    ]  # fmt: skip
    for message, size, limit, reduce_only in refusals:  # one at a time: one nonce each
        result = await call(ex.order, "ETH", True, size, limit, IOC, reduce_only=reduce_only)
        assert statuses(result) == [{"error": message}]
    assert [o.status for o in peer.orders(trader.address)] == [
        "filled",
        "reduceOnlyRejected",
        "minTradeNtlRejected",
        "iocCancelRejected",
        "perpMarginRejected",
    ]  # the malformed ones never became orders

    close = await call(ex.market_close, "ETH")  # reads user_state and allMids, then reduce-only
    assert statuses(close)[0]["filled"]["avgPx"] == "1998.0"
    assert peer.positions(trader.address) == {}
    opened, closed = peer.fills(trader.address)
    assert closed.dir == "Close Long" and closed.start_position == Decimal("0.1")
    assert closed.closed_pnl == Decimal("-0.4")  # 0.1 x (1998 - 2002), fees apart
    state = await call(trader.info.user_state, trader.address)
    fees = opened.fee + closed.fee
    assert Decimal(state["marginSummary"]["accountValue"]) == Decimal(1000) - Decimal("0.4") - fees


async def test_resting_orders_fill_when_the_mid_crosses(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    [status] = statuses(await call(trader.exchange.order, "ETH", True, 0.1, 1990, GTC))
    oid = status["resting"]["oid"]
    [row] = await call(trader.info.open_orders, trader.address)
    assert (row["oid"], row["limitPx"], row["side"], row["sz"]) == (oid, "1990.0", "B", "0.1")
    peer.set_mid("ETH", "1989")
    assert await call(trader.info.open_orders, trader.address) == []
    [fill] = peer.fills(trader.address)
    assert (fill.px, fill.crossed, fill.fee) == (Decimal(1990), False, Decimal("0.029850"))
    [status] = statuses(await call(trader.exchange.order, "ETH", False, 0.1, 2100, GTC))
    cancel = await call(trader.exchange.cancel, "ETH", status["resting"]["oid"])
    assert cancel == {
        "status": "ok",
        "response": {"type": "cancel", "data": {"statuses": ["success"]}},
    }
    again = await call(trader.exchange.cancel, "ETH", status["resting"]["oid"])
    assert statuses(again) == [
        {"error": "Order was never placed, already canceled, or filled. asset=1"}
    ]


async def test_update_leverage(peer: HyperliquidPeer, trader: Trader) -> None:
    ok = {"status": "ok", "response": {"type": "default"}}
    assert await call(trader.exchange.update_leverage, 10, "ETH") == ok
    assert "filled" in statuses(await call(trader.exchange.order, "ETH", False, 0.5, 1990, IOC))[0]
    [row] = (await call(trader.info.user_state, trader.address))["assetPositions"]
    assert row["position"]["leverage"] == {"type": "cross", "value": 10}
    assert row["position"]["marginUsed"] == "100.0"  # 0.5 ETH at the 2000 mark / 10
    too_high = await call(trader.exchange.update_leverage, 51, "ETH")
    assert too_high["status"] == "err" and "max leverage for ETH is 50" in too_high["response"]
    switch = await call(trader.exchange.update_leverage, 10, "ETH", False)
    assert switch == {
        "status": "err",
        "response": "Cannot switch leverage type with open position.",
    }


async def test_close_externally_is_a_liquidation_fill(
    peer: HyperliquidPeer, trader: Trader
) -> None:
    await call(trader.exchange.order, "ETH", True, 0.2, 2010, IOC)
    fill = peer.close_externally(trader.address, "ETH", Decimal(1900), liquidation=True)
    assert peer.positions(trader.address) == {}
    [latest, _] = await call(trader.info.user_fills, trader.address)  # newest first
    assert latest["tid"] == fill.tid and latest["dir"] == "Close Long"
    assert latest["closedPnl"] == "-20.4"
    assert latest["liquidation"] == {
        "liquidatedUser": trader.address.lower(),
        "markPx": "1900.0",
        "method": "market",
    }


async def test_websocket_all_mids(peer: HyperliquidPeer, sdk: Sdk) -> None:
    info = await sdk.info(peer.base_url, skip_ws=False)  # starts the SDK's WebsocketManager thread
    try:
        got: queue.Queue[Any] = queue.Queue()
        await call(info.subscribe, {"type": "allMids"}, got.put)
        snapshot = await call(got.get, True, 5)
        assert snapshot["channel"] == "allMids" and snapshot["data"]["mids"]["ETH"] == "2000.0"
        peer.set_mid("ETH", "2100.5")
        pushed = await call(got.get, True, 5)
        assert pushed["data"]["mids"]["ETH"] == "2100.5"
        assert peer.subscriber_count("allMids") == 1
        await peer.drop_websockets()  # a feed now has to fall back to polling
        assert peer.subscriber_count("allMids") == 0
        assert info.ws_manager is not None
        await call(info.ws_manager.join, 5)  # the SDK's thread ends with the connection
        assert not info.ws_manager.is_alive()
    finally:
        await call(info.disconnect_websocket)  # in a thread: it waits for our close reply

    url = peer.base_url.replace("http", "ws") + "/ws"
    raw = await call(websocket.create_connection, url)
    try:
        assert await call(raw.recv) == "Websocket connection established."
        await call(raw.send, '{"method": "ping"}')
        assert await call(raw.recv) == '{"channel": "pong"}'
    finally:
        await call(raw.close)
    peer.ws_enabled = False
    with pytest.raises(websocket.WebSocketBadStatusException):
        await call(websocket.create_connection, url)


async def test_websocket_user_fills(peer: HyperliquidPeer, trader: Trader, sdk: Sdk) -> None:
    info = await sdk.info(peer.base_url, skip_ws=False)
    try:
        got: queue.Queue[Any] = queue.Queue()
        await call(info.subscribe, {"type": "userFills", "user": trader.address}, got.put)
        snapshot = await call(got.get, True, 5)
        assert snapshot["data"] == {"isSnapshot": True, "user": trader.address.lower(),
                                    "fills": []}  # fmt: skip
        await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC)
        pushed = await call(got.get, True, 5)
        [fill] = pushed["data"]["fills"]
        assert (fill["dir"], fill["px"]) == ("Open Long", "2002.0")
    finally:
        await call(info.disconnect_websocket)  # in a thread: it waits for our close reply


async def test_injected_failures(peer: HyperliquidPeer, trader: Trader) -> None:
    peer.fail_next("info:allMids", status=429)
    with pytest.raises(ClientError) as client_error:
        await call(trader.info.all_mids)
    assert (client_error.value.status_code, client_error.value.error_message) == (429, "null")
    peer.fail_next("order", status=502)
    with pytest.raises(ServerError) as server_error:
        await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC)
    assert server_error.value.status_code == 502
    assert peer.positions(trader.address) == {}  # refused before it reached the book

    rejection = {"status": "err", "response": "Too many open orders"}
    peer.fail_next("exchange", status=200, body=rejection)
    assert await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC) == rejection

    # Slow, then executed anyway: the client gave up, the venue did not.
    cloid = Cloid.from_int(99)
    peer.fail_next("order", status=200, delay=0.4)
    trader.exchange.timeout = 0.1
    with pytest.raises(requests.exceptions.ReadTimeout):
        await call(trader.exchange.order, "ETH", True, 0.1, 2010, IOC, cloid=cloid)
    status = await call(trader.info.query_order_by_cloid, trader.address, cloid)
    assert status["order"]["status"] == "filled"


async def test_ip_weight_budget(sdk: Sdk) -> None:
    now = [1000.0]
    async with HyperliquidPeer(clock=lambda: now[0]) as peer:
        stranger = eth_account.Account.create()
        exchange = await sdk.exchange(stranger, peer.base_url)  # spotMeta + meta: 40
        batch = [
            {
                "coin": "ETH",
                "is_buy": True,
                "sz": 0.1,
                "limit_px": 2010.0,
                "order_type": IOC,
                "reduce_only": False,
            }
        ] * 40
        await call(exchange.bulk_orders, batch)  # refused (a stranger) but still weighed
        assert peer.requests[-1].weight == 2  # 1 + floor(40 / 40)
        assert peer.weight_used() == 42
        while peer.weight_used() + 20 <= 1200:
            await call(exchange.info.meta)
        assert peer.weight_used() == 1182
        await call(exchange.info.all_mids)  # weight 2 still fits: 1184
        for _ in range(8):
            await call(exchange.info.all_mids)
        assert peer.weight_used() == 1200
        with pytest.raises(ClientError) as refused:
            await call(exchange.info.all_mids)
        assert (refused.value.status_code, refused.value.error_message) == (429, "null")
        assert (peer.requests[-1].status, peer.requests[-1].weight) == (429, 0)
        now[0] += 60  # a minute later the budget is back
        assert "ETH" in await call(exchange.info.all_mids)
