"""A local stand-in for the Hyperliquid API that the unmodified hyperliquid-python-sdk talks to
over HTTP (/info, /exchange) and WebSocket (/ws) on 127.0.0.1.

It recovers signers the way Hyperliquid does (EIP-712 "phantom agent" for L1 actions,
HyperliquidTransaction:* typed data for user-signed ones), authorises them against the accounts
and their approved agents, keeps HL's nonce rules, refuses what HL refuses (tick and lot size,
$10 minimum, margin, reduce-only, IOC without a match, duplicate cloid) with HL's wording,
charges HL's rate-limit weights against a 1200-a-minute IP budget, and lets a test inject 429s,
5xx, slow answers and venue rejections. A test can also thin the book (`set_liquidity`: IOCs
fill in part), change the fee rates, hide fresh fills from /info for a while, and pay funding
(`pay_funding`, served as userFunding). Positions, orders and fills live in hyperliquid_book.py.

Answers keep the shapes of the real ones recorded in ../shared/peers/hyperliquid/.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_account import Account as EthAccount
from eth_account.messages import encode_typed_data
from hyperliquid.utils.signing import (
    action_hash,
    construct_phantom_agent,
    l1_payload,
    user_signed_payload,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.peers.hyperliquid_book import (
    Account,
    Book,
    Fill,
    FundingDelta,
    Json,
    Order,
    Position,
    fmt,
    round_price,
)
from tests.peers.hyperliquid_triggers import TriggerDesk
from tests.peers.telegram_api import serve_app

# real responses recorded from Hyperliquid (copied from ../shared/peers/hyperliquid so that a
# clean clone runs on its own)
RECORDINGS = Path(__file__).resolve().parent / "recorded" / "hyperliquid"

IP_WEIGHT_LIMIT = 1200  # per rolling minute, /info and /exchange together
CHEAP_INFO = {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
              "exchangeStatus"}  # fmt: skip
# These also cost 1 per 20 items returned (candleSnapshot: per 60, not served here).
PER_ITEM_INFO = {"userFills", "userFillsByTime", "historicalOrders", "recentTrades",
                 "fundingHistory", "userFunding", "userTwapSliceFills"}  # fmt: skip
DAY_MS = 86_400_000
NONCES_KEPT = 100  # HL keeps the 100 highest nonces per signer
AGENT_VALIDITY_MS = 180 * DAY_MS  # assumption: how long an agent approved without valid_until lasts
INITIAL_REQUESTS = 10_000  # HL's per-address action allowance before volume earns more
# The typed-data fields HL verifies approveAgent against (the SDK inlines them in sign_agent).
APPROVE_AGENT_TYPES = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
# The SDK's Info() asks for spotMeta before anything else; a USDC-only spot side suffices.
SPOT_META: Json = {
    "tokens": [
        {
            "name": "USDC",
            "szDecimals": 8,
            "weiDecimals": 8,
            "index": 0,
            "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
            "isCanonical": True,
            "evmContract": None,
            "fullName": None,
        }
    ],
    "universe": [],
}
DESERIALIZE = "Failed to deserialize the JSON body into the target type"  # HL's 422 text
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_CLOID = re.compile(r"0x[0-9a-fA-F]{32}")
_VALID_UNTIL = re.compile(r"^(.*) valid_until (\d+)$")
_L1_ACTIONS = {"order", "cancel", "cancelByCloid", "updateLeverage", "modify", "batchModify"}
USER_INFO = {"clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders",
             "userFills", "userFillsByTime", "historicalOrders", "orderStatus", "extraAgents",
             "userRole", "userRateLimit", "userFunding"}  # fmt: skip


def recorded(name: str, request_type: str) -> Any:
    """The recorded real response to a request type, from tests/peers/recorded/hyperliquid."""
    data = json.loads((RECORDINGS / name).read_text())
    return next(i["response"] for i in data["interactions"] if i["request"]["type"] == request_type)


@dataclass
class Recorded:
    at: float  # the peer's clock (time.monotonic by default) when the request arrived
    path: str  # "/info" | "/exchange"
    type: str  # the info type or the action type
    payload: Any
    status: int
    weight: int  # what it cost of the IP budget; 0 when refused with 429
    response: Any = None


@dataclass
class Agent:
    address: str
    user: str
    name: str  # "" for the one unnamed agent a user may have
    valid_until: int  # ms


@dataclass
class _Failure:
    key: str
    status: int
    times: int
    body: Any
    delay: float

    @property
    def passes_through(self) -> bool:
        """200 without a body: the request is served for real, only answered `delay` late (a
        client timeout that the venue nevertheless executed)."""
        return self.status == 200 and self.body is None


@dataclass(eq=False)
class _WsClient:
    websocket: WebSocket
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)  # None: close
    subscriptions: dict[str, Json] = field(default_factory=dict)  # identifier -> subscription
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class _Refused(Exception):
    """A whole-request refusal: HTTP 200 {"status": "err", "response": <message>}."""


class _Unprocessable(Exception):
    """A body HL can't deserialize: HTTP 422 with a plain-text reason."""


class HyperliquidPeer:
    """The Hyperliquid API on 127.0.0.1, as an async context manager in the running loop.

    Pass `base_url` to Info/Exchange. The SDK signs for mainnet only when its base_url is
    exactly https://api.hyperliquid.xyz, so against this peer it always signs as testnet: keep
    is_mainnet False unless the client under test signs by itself."""

    base_url: str

    def __init__(
        self,
        meta: Json | None = None,
        mids: dict[str, str] | None = None,
        slippage_bps: Decimal = Decimal(0),
        is_mainnet: bool = False,
        *,
        spot_meta: Json | None = None,
        weight_limit: int = IP_WEIGHT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.meta: Json = meta if meta is not None else recorded("get_info.json", "meta")
        mids = mids if mids is not None else recorded("get_all_mids.json", "allMids")
        self.book = Book(self.meta, {c: Decimal(px) for c, px in mids.items()}, slippage_bps)
        self.triggers = TriggerDesk(self.book)  # TP/SL orders: hyperliquid_triggers.py
        self.is_mainnet = is_mainnet
        self.spot_meta = spot_meta if spot_meta is not None else SPOT_META
        self.weight_limit = weight_limit
        self.clock = clock  # for the rate-limit window; tests may pass a fake one
        self.clock_skew_ms = 0  # added to the wall clock HL checks nonces against
        self.ws_enabled = True
        self.requests: list[Recorded] = []
        self.base_url = ""
        self._failures: list[_Failure] = []
        self._agents: dict[str, Agent] = {}
        self._nonces: dict[str, list[int]] = {}  # signer -> its highest nonces, ascending
        self._ws: set[_WsClient] = set()
        self._stack = contextlib.AsyncExitStack()
        self.app = Starlette(
            routes=[
                Route("/info", self._info_route, methods=["POST"]),
                Route("/exchange", self._exchange_route, methods=["POST"]),
                WebSocketRoute("/ws", self._ws_route),
            ]
        )

    async def __aenter__(self) -> HyperliquidPeer:
        self.base_url = await self._stack.enter_async_context(serve_app(self.app))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drop_websockets()
        await self._stack.aclose()

    # ---- what a test sets up --------------------------------------------------------------

    def now_ms(self) -> int:
        """HL's block time, which nonces and timestamps are checked against."""
        return int(time.time() * 1000) + self.clock_skew_ms

    def fund(self, address: str, usdc: Decimal | str | int) -> None:
        """A USDC deposit: the account exists from now on (HL ignores signers without funds)."""
        key = address.lower()
        acct = self.book.accounts.setdefault(key, Account(key))
        acct.deposited += _decimal(usdc)

    def set_mid(self, coin: str, px: str | Decimal) -> None:  # str, Decimal or int
        """Moves the mid: resting orders it crosses fill, allMids subscribers get the new mids."""
        if coin not in self.book.by_name:
            raise KeyError(f"{coin} is not in this peer's meta")
        self.book.mids[coin] = _decimal(px)
        self._fills_made(self.book.on_mid(coin, self.now_ms()))
        self._fills_made(self.triggers.on_mark(coin, self.now_ms()))  # the mark is the mid here
        self._fills_made(self.book.liquidate_underwater(self.now_ms()))
        self._push("allMids", {"channel": "allMids", "data": {"mids": self._mids()}})

    def set_liquidity(self, coin: str, *sizes: Decimal | str | int) -> None:
        """Finite liquidity for coin, both sides: a taker meets these resting sizes one tick
        apart (the first at the taker price), one fill each, and they are used up. An IOC fills
        what it meets within its limit and the rest is canceled (`filled` with a smaller
        totalSz; nothing met: HL's IOC refusal). No sizes: unlimited again."""
        if coin not in self.book.by_name:
            raise KeyError(f"{coin} is not in this peer's meta")
        for taker_buys in (True, False):
            if sizes:
                self.book.liquidity[(coin, taker_buys)] = [_decimal(x) for x in sizes]
            else:
                self.book.liquidity.pop((coin, taker_buys), None)

    def set_fees(self, taker: Decimal | str, maker: Decimal | str) -> None:
        """The account's fee rates (HL's tiers and discounts differ from the base 0.045%)."""
        self.book.taker_fee, self.book.maker_fee = _decimal(taker), _decimal(maker)

    def set_fills_delay(self, ms: int) -> None:
        """/info shows a fill only `ms` after it happened, as HL's info servers trail the
        block: an order can be "filled" in orderStatus before its fills are found."""
        self.book.fills_delay_ms = ms

    def set_funding_rate(self, coin: str, rate: Decimal | str) -> None:
        """The coin's current hourly funding rate, as metaAndAssetCtxs reports it (HL's
        `funding`: what the next hourly payment charges longs, shorts receive, if it holds);
        a `pay_funding` sets it too."""
        if coin not in self.book.by_name:
            raise KeyError(f"{coin} is not in this peer's meta")
        self.book.funding_rates[coin] = _decimal(rate)

    def pay_funding(
        self,
        coin: str,
        rate: Decimal | str,
        oracle_px: Decimal | str | None = None,
        at_ms: int | None = None,
    ) -> list[FundingDelta]:
        """One (hourly, on HL) funding payment to every open position in coin: each account's
        balance changes by -szi * oraclePx * rate USDC, and userFunding reports it."""
        px = None if oracle_px is None else _decimal(oracle_px)
        return self.book.pay_funding(
            coin, _decimal(rate), px, self.now_ms() if at_ms is None else at_ms
        )

    def trade_directly(
        self, address: str, coin: str, is_buy: bool, size: Decimal | str, times: int = 1
    ) -> list[Fill]:
        """`times` IOC orders placed for the account straight into the book, without HTTP or
        signing (the account's own trading elsewhere, e.g. to push older fills out of
        userFills' 2,000). Each one must fill; it raises otherwise."""
        acct, asset = self._account(address), self.book.by_name[coin]
        made = []
        for _ in range(times):
            # priced as a market order: 1% through the taker price, on a valid tick
            px = self.book.taker_px(asset, is_buy) * (
                Decimal("1.01") if is_buy else Decimal("0.99")
            )
            px = round_price(px, asset.sz_decimals, ROUND_FLOOR if is_buy else ROUND_CEILING)
            wire = {"a": asset.index, "b": is_buy, "p": fmt(px), "s": fmt(_decimal(size)),
                    "r": False, "t": {"limit": {"tif": "Ioc"}}}  # fmt: skip
            status, fills = self.book.place(acct, wire, self.now_ms())
            if not fills:
                raise AssertionError(f"peer: direct {coin} order did not fill: {status}")
            made += fills
        self._fills_made([(acct, f) for f in made])
        return made

    def fail_next(
        self,
        path_or_type: str,
        status: int = 500,
        times: int = 1,
        body: Any = None,
        delay: float = 0,
    ) -> None:
        """The next `times` requests matching `path_or_type` ("info", "exchange",
        "info:clearinghouseState", "order", "exchange:cancel", ...) answer `status` with `body`
        (default: HL's bare "null") after `delay` seconds. A dict body with status 200 is a venue
        rejection, e.g. {"status": "err", "response": "..."}. status=200 with no body serves the
        request for real and only delays the answer: the client times out, the order stands."""
        self._failures.append(_Failure(path_or_type.strip("/"), status, times, body, delay))

    def weight_used(self, window_s: float = 60.0) -> int:
        now = self.clock()
        return sum(r.weight for r in self.requests if now - r.at < window_s)

    async def drop_websockets(self) -> None:
        """Closes every WebSocket connection, as a venue restart or a network cut would."""
        clients = list(self._ws)
        for client in clients:
            client.queue.put_nowait(None)
        for client in clients:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.closed.wait(), 2)

    def subscriber_count(self, subscription_type: str) -> int:
        return sum(
            ident.split(":")[0] == subscription_type for c in self._ws for ident in c.subscriptions
        )

    def close_externally(
        self, address: str, coin: str, px: Decimal | None = None, *, liquidation: bool = False
    ) -> Fill:
        """The position closed outside the bot: by hand in HL's app, or (liquidation=True) by
        the liquidator, whose fill carries `liquidation` info. px defaults to the mid."""
        acct = self._account(address)
        fill = self.book.close_externally(acct, coin, px, liquidation, self.now_ms())
        self._fills_made([(acct, fill)])
        return fill

    # ---- trigger (TP/SL) orders: see hyperliquid_triggers.py ------------------------------

    def hold_triggers(self, hold: bool = True) -> None:
        """While held, a trigger the mark reaches stays "triggered" without filling."""
        self.triggers.hold_triggered = hold

    def release_triggers(self) -> list[Fill]:
        """Fills the triggers held at "triggered", at the current mark."""
        self.triggers.hold_triggered = False
        made = self.triggers.release_triggered(self.now_ms())
        self._fills_made(made)
        return [f for _, f in made]

    def expire_agent(self, agent_address: str) -> None:
        self._agents[agent_address.lower()].valid_until = self.now_ms() - 1

    # ---- what a test asserts on -------------------------------------------------------------

    def positions(self, address: str) -> dict[str, Position]:
        acct = self.book.account(address)
        return dict(acct.positions) if acct else {}

    def fills(self, address: str) -> list[Fill]:
        """Oldest first (the userFills endpoint answers newest first)."""
        acct = self.book.account(address)
        return list(acct.fills) if acct else []

    def orders(self, address: str) -> list[Order]:
        """Every order the account placed, rejected ones included, oldest first."""
        acct = self.book.account(address)
        return sorted(acct.orders.values(), key=lambda o: o.oid) if acct else []

    def agents(self, user: str) -> list[Agent]:
        return [a for a in self._agents.values() if a.user == user.lower()]

    def _account(self, address: str) -> Account:
        acct = self.book.account(address)
        if acct is None:
            raise KeyError(f"{address} was never funded")
        return acct

    # ---- HTTP ---------------------------------------------------------------------------

    async def _info_route(self, request: Request) -> Response:
        payload = await self._json(request)
        kind = payload.get("type", "") if isinstance(payload, dict) else ""
        kind = kind if isinstance(kind, str) else ""
        weight = 2 if kind in CHEAP_INFO else 60 if kind == "userRole" else 20
        return await self._serve("/info", kind, payload, weight, lambda: self._info(payload))

    async def _exchange_route(self, request: Request) -> Response:
        payload = await self._json(request)
        action = payload.get("action") if isinstance(payload, dict) else None
        kind = action.get("type", "") if isinstance(action, dict) else ""
        batch = next(
            (
                action[k]
                for k in ("orders", "cancels", "modifies")
                if isinstance(action, dict) and isinstance(action.get(k), list)
            ),
            [],
        )
        weight = 1 + len(batch) // 40
        return await self._serve(
            "/exchange", str(kind), payload, weight, lambda: self._exchange(payload)
        )

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    async def _serve(
        self,
        path: str,
        kind: str,
        payload: Any,
        weight: int,
        handle: Callable[[], tuple[int, Any, int]],
    ) -> Response:
        """Rate limit, injected failures, then the handler: (status, body, extra weight)."""
        at = self.clock()
        if self.weight_used() + weight > self.weight_limit:
            self.requests.append(Recorded(at, path, kind, payload, 429, 0, None))
            return _respond(429, None)
        failure = self._take_failure(path, kind)
        if failure is not None and not failure.passes_through:
            self.requests.append(
                Recorded(at, path, kind, payload, failure.status, weight, failure.body)
            )
            await asyncio.sleep(failure.delay)
            return _respond(failure.status, failure.body)
        status, body, extra = handle()
        self.requests.append(Recorded(at, path, kind, payload, status, weight + extra, body))
        if failure is not None:
            await asyncio.sleep(failure.delay)
        return _respond(status, body)

    def _take_failure(self, path: str, kind: str) -> _Failure | None:
        keys = {path.strip("/"), f"{path.strip('/')}:{kind}", kind}
        for failure in self._failures:
            if failure.key in keys:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    # ---- /info --------------------------------------------------------------------------

    def _info(self, payload: Any) -> tuple[int, Any, int]:
        try:
            body = self._info_body(payload)
        except _Unprocessable as exc:
            return 422, str(exc), 0
        kind = payload["type"]
        extra = len(body) // 20 if kind in PER_ITEM_INFO and isinstance(body, list) else 0
        return 200, body, extra

    def _info_body(self, p: Any) -> Any:
        if not isinstance(p, dict) or not isinstance(p.get("type"), str):
            raise _Unprocessable(f"{DESERIALIZE}: missing field `type`")
        kind, book, now = p["type"], self.book, self.now_ms()
        if p.get("dex") not in (None, ""):
            raise _Unprocessable(f"peer: perp dex {p['dex']!r} is not simulated")
        if kind == "meta":
            return self.meta
        if kind == "spotMeta":
            return self.spot_meta
        if kind == "metaAndAssetCtxs":
            return [self.meta, book.asset_ctxs()]
        if kind == "allMids":
            return self._mids()
        if kind == "l2Book":
            coin = p.get("coin")
            known = coin in book.by_name and coin in book.mids
            return book.l2_book(coin, now) if known else None  # HL answers null
        if kind not in USER_INFO:
            raise _Unprocessable(f"{DESERIALIZE}: unknown variant `{kind}`")
        user = _address(p.get("user"), "user")
        if kind == "clearinghouseState":
            return book.clearinghouse_state(user, now)
        if kind == "spotClearinghouseState":
            return {"balances": []}
        if kind in ("openOrders", "frontendOpenOrders"):
            return book.open_orders(user, frontend=kind == "frontendOpenOrders")
        if kind == "userFills":
            return book.user_fills(user, now)
        if kind in ("userFillsByTime", "userFunding"):
            start, end = p.get("startTime"), p.get("endTime")
            if not _is_int(start) or not (end is None or _is_int(end)):
                raise _Unprocessable(f"{DESERIALIZE}: startTime/endTime")
            if kind == "userFunding":
                return book.user_funding(user, start, end)
            aggregate = p.get("aggregateByTime")
            if aggregate is not None and not isinstance(aggregate, bool):
                raise _Unprocessable(f"{DESERIALIZE}: aggregateByTime")
            return book.user_fills_by_time(user, start, end, bool(aggregate), now)
        if kind == "historicalOrders":
            return book.historical_orders(user)
        if kind == "orderStatus":
            oid = p.get("oid")
            if isinstance(oid, str):
                oid = _cloid(oid)
            elif not _is_int(oid):
                raise _Unprocessable(f"{DESERIALIZE}: oid")
            return book.order_status(user, oid)
        if kind == "extraAgents":  # the named agents; the unnamed one is not "extra"
            return [
                {"name": a.name, "address": a.address, "validUntil": a.valid_until}
                for a in self.agents(user)
                if a.name and a.valid_until > now
            ]
        if kind == "userRole":
            agent = self._agents.get(user)
            if agent is not None and agent.valid_until > now:
                return {"role": "agent", "data": {"user": agent.user}}
            return {"role": "user" if user in book.accounts else "missing"}
        if kind == "userRateLimit":
            acct = book.account(user) or Account(user)
            return {
                "cumVlm": fmt(acct.volume),
                "nRequestsUsed": acct.n_actions,
                "nRequestsCap": INITIAL_REQUESTS + int(acct.volume),
            }
        raise _Unprocessable(f"{DESERIALIZE}: unknown variant `{kind}`")

    def _mids(self) -> dict[str, str]:
        return {coin: fmt(px) for coin, px in self.book.mids.items()}

    # ---- /exchange ----------------------------------------------------------------------

    def _exchange(self, payload: Any) -> tuple[int, Any, int]:
        try:
            return 200, self._act(payload), 0
        except _Refused as exc:
            return 200, {"status": "err", "response": str(exc)}, 0
        except _Unprocessable as exc:
            return 422, str(exc), 0

    def _act(self, payload: Any) -> Json:
        if not isinstance(payload, dict) or not isinstance(payload.get("action"), dict):
            raise _Unprocessable(f"{DESERIALIZE}: missing field `action`")
        action, nonce, sig = payload["action"], payload.get("nonce"), payload.get("signature")
        if not _is_int(nonce):
            raise _Unprocessable(f"{DESERIALIZE}: nonce")
        if not (isinstance(sig, dict) and {"r", "s", "v"} <= sig.keys()):
            raise _Unprocessable(f"{DESERIALIZE}: signature")
        vault, expires = payload.get("vaultAddress"), payload.get("expiresAfter")
        if vault is not None:
            vault = _address(vault, "vaultAddress")
        if expires is not None and not _is_int(expires):
            raise _Unprocessable(f"{DESERIALIZE}: expiresAfter")
        kind = action.get("type")
        if kind == "approveAgent":
            return self._approve_agent(action, nonce, sig, expires)
        if kind == "withdraw3":
            return self._withdraw(action, nonce, sig, expires)
        if kind not in _L1_ACTIONS:
            raise _Refused(f"peer: action type {kind!r} is not simulated")
        # HL deserializes the action into its own types and hashes *that*: keys in its order,
        # numbers without trailing zeros. A client that sends anything else signed a different
        # hash, and recovery names a stranger ("User or API Wallet 0x<random> does not exist").
        action = _canonical(action)
        now = self.now_ms()
        if expires is not None and expires < now:  # HL's wording unknown
            raise _Refused(f"Action expired: expiresAfter {expires} is before {now}")
        phantom = construct_phantom_agent(
            action_hash(action, vault, nonce, expires), self.is_mainnet
        )
        signer = _recover(l1_payload(phantom), sig)
        acct = self._authorised(signer, vault)
        self._use_nonce(signer, nonce)
        acct.n_actions += 1
        if kind == "order":
            grouping = action["grouping"]
            if grouping not in ("na", "positionTpsl"):
                raise _Refused(f"peer: grouping {grouping!r} is not simulated")
            statuses = []
            for wire in action["orders"]:
                if "trigger" in wire["t"]:
                    statuses.append(self.triggers.place(acct, wire, grouping, now))
                    continue
                if grouping != "na":  # HL's wording unknown
                    statuses.append({"error": "peer: positionTpsl takes trigger orders only"})
                    continue
                status, fills = self.book.place(acct, wire, now)
                statuses.append(status)
                self._fills_made([(acct, f) for f in fills])
            self._fills_made(self.triggers.on_mark_all(now))  # one already crossed fires now
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
        if kind in ("modify", "batchModify"):
            modifies = [action] if kind == "modify" else action["modifies"]
            statuses = [self.triggers.modify(acct, m["oid"], m["order"], now) for m in modifies]
            self._fills_made(self.triggers.on_mark_all(now))
            if kind == "modify":  # HL answers a single modify with "default"; wording approximate
                if "error" in statuses[0]:
                    raise _Refused(statuses[0]["error"])
                return {"status": "ok", "response": {"type": "default"}}
            return {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
        if kind in ("cancel", "cancelByCloid"):
            results = [
                self.book.cancel(acct, c["a"], c["o"], now)
                if kind == "cancel"
                else self.book.cancel(acct, c["asset"], acct.cloids.get(c["cloid"]), now)
                for c in action["cancels"]
            ]
            return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": results}}}
        error = self.book.update_leverage(
            acct, action["asset"], action["isCross"], action["leverage"]
        )
        if error is not None:
            raise _Refused(error)
        return {"status": "ok", "response": {"type": "default"}}

    def _authorised(self, signer: str, vault: str | None) -> Account:
        """The account an L1 action acts for: the vault/sub-account when given, else the signer
        or, for an agent, the user who approved it. Anyone else "does not exist" to HL, and so
        does an agent whose user has no funds left."""
        agent = self._agents.get(signer)
        if agent is not None and agent.valid_until > self.now_ms():
            user: str | None = agent.user
        else:
            user = signer if signer in self.book.accounts else None
        if user is None or user not in self.book.accounts:
            raise _Refused(f"L1 error: User or API Wallet {signer} does not exist.")
        if vault is not None and vault != user:  # sub-accounts/vaults are not simulated
            raise _Refused(f"peer: {user} may not act for vault {vault}")
        return self.book.accounts[user]

    def _use_nonce(self, signer: str, nonce: int) -> None:
        """HL's rule: within (now - 2 days, now + 1 day), never used by this signer, and above
        the smallest of the 100 highest it used."""
        now = self.now_ms()
        if not now - 2 * DAY_MS < nonce < now + DAY_MS:  # wording approximate
            raise _Refused(f"Invalid nonce: {nonce} is too far from the block time {now}")
        used = self._nonces.setdefault(signer, [])
        if nonce in used:
            raise _Refused(f"Invalid nonce: duplicate nonce {nonce}")
        if len(used) >= NONCES_KEPT and nonce < used[0]:
            raise _Refused(f"Invalid nonce: {nonce} is below the lowest of the recent nonces")
        bisect.insort(used, nonce)
        del used[:-NONCES_KEPT]

    def _approve_agent(self, action: Json, nonce: int, sig: Json, expires: int | None) -> Json:
        agent_address, name = action.get("agentAddress"), action.get("agentName", "")
        if not (
            isinstance(agent_address, str)
            and _ADDRESS.fullmatch(agent_address)
            and isinstance(name, str)
            and _is_int(action.get("nonce"))
            and isinstance(action.get("signatureChainId"), str)
        ):
            raise _Unprocessable(f"{DESERIALIZE}: approveAgent")
        if expires is not None:
            raise _Refused("expiresAfter is not supported on user-signed actions")
        if action["nonce"] != nonce:
            raise _Refused("Nonce mismatch")
        # The message is what the SDK signed: the SDK drops agentName from the body when it is
        # None, after signing it as "". hyperliquidChain is the server's own, so a request meant
        # for the other network recovers a stranger.
        message = dict(action, agentName=name, hyperliquidChain=self._chain())
        try:
            data = user_signed_payload(
                "HyperliquidTransaction:ApproveAgent", APPROVE_AGENT_TYPES, message
            )
        except ValueError as exc:
            raise _Unprocessable(f"{DESERIALIZE}: signatureChainId") from exc
        user = _recover(data, sig)
        if user not in self.book.accounts:
            raise _Refused(f"Must deposit before performing actions. User: {user}")
        self._use_nonce(user, nonce)
        valid_until = self.now_ms() + AGENT_VALIDITY_MS
        if match := _VALID_UNTIL.match(name):  # HL's way to set an expiry: "bot valid_until <ms>"
            name, valid_until = match[1], int(match[2])
        if len(name) > 16:  # wording approximate
            raise _Refused("Extra agent name must be at most 16 characters")
        # Approving under a name the user already gave (or a second unnamed agent) replaces it.
        for old in [a for a in self._agents.values() if a.user == user and a.name == name]:
            del self._agents[old.address]
        self._agents[agent_address.lower()] = Agent(agent_address.lower(), user, name, valid_until)
        self.book.accounts[user].n_actions += 1
        return {"status": "ok", "response": {"type": "default"}}

    def _withdraw(self, action: Json, nonce: int, sig: Json, expires: int | None) -> Json:
        """withdraw3 is user-signed ("HyperliquidTransaction:Withdraw" typed data): HL recovers
        the signer and withdraws from *that* address's account. An agent (API wallet) has no
        account of its own and is never looked up as its user's, so an agent key cannot
        withdraw: this is what makes "Maxxit's key can trade, never withdraw" true."""
        destination, amount, when = (action.get(k) for k in ("destination", "amount", "time"))
        if not (
            isinstance(destination, str)
            and _ADDRESS.fullmatch(destination)
            and isinstance(amount, str)
            and _is_int(when)
            and isinstance(action.get("signatureChainId"), str)
        ):
            raise _Unprocessable(f"{DESERIALIZE}: withdraw3")
        if expires is not None:
            raise _Refused("expiresAfter is not supported on user-signed actions")
        if when != nonce:
            raise _Refused("Nonce mismatch")
        message = dict(action, hyperliquidChain=self._chain())
        try:
            data = user_signed_payload(
                "HyperliquidTransaction:Withdraw",
                [
                    {"name": "hyperliquidChain", "type": "string"},
                    {"name": "destination", "type": "string"},
                    {"name": "amount", "type": "string"},
                    {"name": "time", "type": "uint64"},
                ],
                message,
            )
        except ValueError as exc:
            raise _Unprocessable(f"{DESERIALIZE}: signatureChainId") from exc
        signer = _recover(data, sig)
        acct = self.book.accounts.get(signer)
        if acct is None:  # an agent's signature lands here: it owns no account
            raise _Refused(f"Must deposit before performing actions. User: {signer}")
        self._use_nonce(signer, nonce)
        try:
            usd = Decimal(amount)
        except InvalidOperation as exc:
            raise _Unprocessable(f"{DESERIALIZE}: amount") from exc
        if not usd.is_finite():
            raise _Unprocessable(f"{DESERIALIZE}: amount")
        withdrawable = self.book.account_value(acct) - self.book.margin_used(acct)
        if not Decimal(0) < usd <= withdrawable:  # HL's wording approximate
            raise _Refused("Insufficient balance for withdrawal")
        acct.deposited -= usd
        acct.n_actions += 1
        return {"status": "ok", "response": {"type": "default"}}

    def _chain(self) -> str:
        return "Mainnet" if self.is_mainnet else "Testnet"

    def _fills_made(self, fills: list[tuple[Account, Fill]]) -> None:
        self.triggers.after_fills(fills, self.now_ms())  # position TP/SL follow the position
        for acct, fill in fills:
            self._push(
                f"userFills:{acct.address}",
                {
                    "channel": "userFills",
                    "data": {"user": acct.address, "fills": [fill.wire()]},
                },
            )

    # ---- WebSocket ----------------------------------------------------------------------

    async def _ws_route(self, websocket: WebSocket) -> None:
        if not self.ws_enabled:
            await websocket.close(code=1008)  # before accept(): uvicorn answers the upgrade 403
            return
        await websocket.accept()
        client = _WsClient(websocket)
        self._ws.add(client)
        sender = asyncio.create_task(self._ws_sender(client))
        client.queue.put_nowait("Websocket connection established.")  # the SDK skips this line
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                self._ws_message(client, message.get("text") or "")
        finally:
            self._ws.discard(client)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            client.closed.set()

    @staticmethod
    async def _ws_sender(client: _WsClient) -> None:
        """The one writer of a connection, so replies and pushes never interleave."""
        while (text := await client.queue.get()) is not None:
            try:
                await client.websocket.send_text(text)
            except Exception:  # the client went away; the reader sees the disconnect
                return
        with contextlib.suppress(Exception):
            await client.websocket.close()

    def _ws_message(self, client: _WsClient, text: str) -> None:
        def send(message: Json) -> None:
            client.queue.put_nowait(json.dumps(message))

        try:
            request = json.loads(text)
            method = request["method"]
        except (ValueError, KeyError, TypeError):
            send(
                {
                    "channel": "error",
                    "data": f"Error parsing JSON into valid websocket request: {text}",
                }
            )
            return
        if method == "ping":
            send({"channel": "pong"})
            return
        subscription = request.get("subscription")
        ident = _subscription_id(subscription)
        if method not in ("subscribe", "unsubscribe") or ident is None:
            send({"channel": "error", "data": f"Invalid subscription {json.dumps(subscription)}"})
            return
        if method == "subscribe" and ident in client.subscriptions:
            send({"channel": "error", "data": f"Already subscribed: {json.dumps(subscription)}"})
            return
        if method == "unsubscribe" and client.subscriptions.pop(ident, None) is None:
            send({"channel": "error", "data": f"Already unsubscribed: {json.dumps(subscription)}"})
            return
        send(
            {
                "channel": "subscriptionResponse",
                "data": {"method": method, "subscription": subscription},
            }
        )
        if method == "unsubscribe":
            return
        client.subscriptions[ident] = subscription
        # HL streams a snapshot right after subscribing: the mids, or the user's recent fills.
        if ident == "allMids":
            send({"channel": "allMids", "data": {"mids": self._mids()}})
        else:
            user = ident.split(":", 1)[1]
            send(
                {
                    "channel": "userFills",
                    "data": {
                        "isSnapshot": True,
                        "user": user,
                        "fills": self.book.user_fills(user, self.now_ms()),
                    },
                }
            )

    def _push(self, ident: str, message: Json) -> None:
        text = json.dumps(message)
        for client in self._ws:
            if ident in client.subscriptions:
                client.queue.put_nowait(text)


def _subscription_id(sub: Any) -> str | None:
    """The subscriptions served, keyed as the SDK's subscription_to_identifier keys them."""
    if not isinstance(sub, dict):
        return None
    if sub.get("type") == "allMids":
        return "allMids"
    user = sub.get("user")
    if sub.get("type") == "userFills" and isinstance(user, str) and _ADDRESS.fullmatch(user):
        return f"userFills:{user.lower()}"
    return None


def _respond(status: int, body: Any) -> Response:
    if status >= 400 and (body is None or isinstance(body, str)):
        # HL's errors are bare text; its 429 and 5xx bodies are literally "null".
        return Response("null" if body is None else body, status, media_type="text/plain")
    return JSONResponse(body, status)


def _decimal(x: Decimal | str | int) -> Decimal:
    if isinstance(x, float):  # a binary float would carry its rounding error into the state
        raise TypeError(f"pass a str or Decimal, not the float {x!r}")
    return Decimal(x)


def _recover(typed_data: Json, sig: Json) -> str:
    try:
        signable = encode_typed_data(full_message=typed_data)
        signer = EthAccount.recover_message(signable, vrs=(sig["v"], sig["r"], sig["s"]))
    except Exception as exc:  # malformed r/s/v: HL can't tell who signed
        raise _Refused(f"peer: could not recover the signer: {exc}") from exc
    return str(signer).lower()


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _address(x: Any, name: str) -> str:
    if not (isinstance(x, str) and _ADDRESS.fullmatch(x)):
        raise _Unprocessable(f"{DESERIALIZE}: {name}")
    return x.lower()


def _cloid(x: Any) -> str:
    """HL holds a cloid as 16 bytes and writes it back as lowercase hex."""
    if not (isinstance(x, str) and _CLOID.fullmatch(x)):
        raise _Unprocessable(f"{DESERIALIZE}: cloid must be 0x and 32 hex digits, got {x!r}")
    return x.lower()


def _number(x: Any, name: str) -> str:
    """A price or size: a decimal string, re-serialized without trailing zeros as HL does."""
    try:
        value = Decimal(x) if isinstance(x, str) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise _Unprocessable(f"{DESERIALIZE}: {name} must be a decimal string, got {x!r}")
    return f"{value.normalize():f}"


def _field(d: Any, key: str, check: Callable[[Any], bool]) -> Any:
    if not isinstance(d, dict) or key not in d or not check(d[key]):
        raise _Unprocessable(f"{DESERIALIZE}: field `{key}`")
    return d[key]


def _bool(x: Any) -> bool:
    return isinstance(x, bool)


def _order_wire(o: Any) -> Json:
    t = _field(o, "t", lambda t: isinstance(t, dict) and len(t) == 1)
    if "limit" in t:
        tif = _field(t["limit"], "tif", lambda x: x in ("Gtc", "Ioc", "Alo"))
        order_type: Json = {"limit": {"tif": tif}}
    else:
        trig = _field(t, "trigger", lambda x: isinstance(x, dict))
        order_type = {
            "trigger": {
                "isMarket": _field(trig, "isMarket", _bool),
                "triggerPx": _number(trig.get("triggerPx"), "triggerPx"),
                "tpsl": _field(trig, "tpsl", lambda x: x in ("tp", "sl")),
            }
        }
    wire: Json = {
        "a": _field(o, "a", _is_int),
        "b": _field(o, "b", _bool),
        "p": _number(o.get("p"), "p"),
        "s": _number(o.get("s"), "s"),
        "r": _field(o, "r", _bool),
        "t": order_type,
    }
    if o.get("c") is not None:
        wire["c"] = _cloid(o["c"])
    return wire


def _modify_target(x: Any) -> int | str:
    """A modify names its order by oid (a number) or by cloid (0x + 32 hex digits)."""
    return x if _is_int(x) else _cloid(x)


def _canonical(action: Json) -> Json:
    """The action as HL's types hold it, in their field order (the order the SDK sends)."""
    kind = action["type"]
    if kind == "order":
        orders = _field(action, "orders", lambda x: isinstance(x, list) and x)
        out: Json = {
            "type": "order",
            "orders": [_order_wire(o) for o in orders],
            "grouping": _field(action, "grouping", lambda g: isinstance(g, str | dict)),
        }
        if action.get("builder") is not None:
            builder = action["builder"]
            out["builder"] = {
                "b": _address(_field(builder, "b", lambda x: True), "builder"),
                "f": _field(builder, "f", _is_int),
            }
        return out
    if kind in ("cancel", "cancelByCloid"):
        cancels = _field(action, "cancels", lambda x: isinstance(x, list) and x)
        if kind == "cancel":
            rows = [{"a": _field(c, "a", _is_int), "o": _field(c, "o", _is_int)} for c in cancels]
        else:
            rows = [
                {"asset": _field(c, "asset", _is_int), "cloid": _cloid(c.get("cloid"))}
                for c in cancels
            ]
        return {"type": kind, "cancels": rows}
    if kind == "modify":
        return {"type": "modify", "oid": _modify_target(action.get("oid")),
                "order": _order_wire(action.get("order"))}  # fmt: skip
    if kind == "batchModify":
        modifies = _field(action, "modifies", lambda x: isinstance(x, list) and x)
        return {
            "type": "batchModify",
            "modifies": [
                {"oid": _modify_target(m.get("oid") if isinstance(m, dict) else None),
                 "order": _order_wire(_field(m, "order", lambda x: isinstance(x, dict)))}
                for m in modifies
            ],
        }  # fmt: skip
    return {
        "type": "updateLeverage",
        "asset": _field(action, "asset", _is_int),
        "isCross": _field(action, "isCross", _bool),
        "leverage": _field(action, "leverage", _is_int),
    }
