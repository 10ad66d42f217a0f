"""The venue state behind the Hyperliquid stand-in (tests/peers/hyperliquid_api.py): accounts,
perp positions, orders and fills, and HL's order checks, with no I/O. Every amount is a Decimal;
the JSON renderers give the strings the real /info endpoint gives, in its shapes (see the
recordings in ../shared/peers/hyperliquid/).

Deliberate simplifications, so tests read them here rather than discover them:
- liquidity is unlimited at the mid unless a test sets it (`set_liquidity`): a crossing order
  fills at mid*(1 +- slippage) for a taker, at its own limit price for a resting order the mid
  walks through (`on_mid`). With liquidity set, a taker eats the given levels (one tick apart,
  the first at that price, each a separate fill) up to its limit; an IOC's rest is canceled;
- an IOC that filled in part reports orderStatus "canceled" (HL's wording for what happens to
  its rest is not recorded here; clients must find the fills either way); an order's `sz` is
  what is still open (HL freezes it at placement until the status changes);
- one margin model for cross and isolated (notional at the mark / leverage); an account whose
  value falls below its maintenance margin when a mid moves is liquidated whole at the mark
  (`liquidate_underwater`; HL may liquidate in part, and isolated positions on their own);
- funding is paid when a test calls `pay_funding` (HL: hourly), at the mid as the oracle price
  unless one is given; `cumFunding` counts what the user paid (positive = paid);
- fills are visible to /info at once unless a test sets `fills_delay_ms` (HL's info servers
  trail the block); userFillsByTime sees only the 10,000 most recent fills and answers at most
  2,000, oldest first from startTime; userFunding answers at most 500, oldest first;
- trigger (TP/SL) orders live in hyperliquid_triggers.py (what is modelled is said there); the
  book only keeps them among the account's orders and skips them when matching limits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from eth_utils import keccak

Json = dict[str, Any]

TAKER_FEE = Decimal("0.00045")  # HL's base tier: 0.045% taker, 0.015% maker
MAKER_FEE = Decimal("0.00015")
MIN_ORDER_VALUE = Decimal(10)
DEFAULT_LEVERAGE = 20  # what HL gives an asset the user never set leverage on (cross)
MAX_PERP_DECIMALS = 6  # price decimals allowed = 6 - szDecimals for perps
USD = Decimal("0.000001")  # USDC has 6 decimals on HyperCore
ZERO = Decimal(0)
PX = Decimal("1e-8")  # how finely a computed average price is written
FILLS_SHOWN = 2000  # userFills: the most recent 2,000; userFillsByTime: at most 2,000 a call
FILLS_KEPT = 10_000  # userFillsByTime reaches only the 10,000 most recent fills
FUNDING_SHOWN = 500  # HL: a time-ranged answer holds at most 500 elements

# Error statuses inside a 200 "ok" response, HL's wording. HL appends " asset=N" to the matching
# engine's refusals; the validation ones come back bare.
INVALID_PRICE = "Order has invalid price."
INVALID_SIZE = "Order has invalid size."
DUPLICATE_CLOID = "Duplicate cloid."  # HL's exact wording unknown; clients should not parse it
MIN_VALUE = "Order must have minimum value of $10."
NO_MARGIN = "Insufficient margin to place order."
REDUCE_ONLY = "Reduce only order would increase position."
IOC_NO_MATCH = "Order could not immediately match against any resting orders."
ALO_WOULD_MATCH = "Post only order would have immediately matched, bbo was {bbo}."
NOT_CANCELABLE = "Order was never placed, already canceled, or filled."
SWITCH_TYPE = "Cannot switch leverage type with open position."


def fmt(x: Decimal, quantum: Decimal | None = None) -> str:
    """HL's number strings: no exponent, no trailing zeros, but at least one decimal ("30135.0")."""
    if quantum is not None:
        x = x.quantize(quantum)
    text = f"{x.normalize():f}"
    if "." not in text:
        text += ".0"
    return "0.0" if text == "-0.0" else text


def decimals(x: Decimal) -> int:
    return max(0, -int(x.normalize().as_tuple().exponent))


def sig_figs(x: Decimal) -> int:
    return len(x.normalize().as_tuple().digits)


def price_ok(px: Decimal, sz_decimals: int) -> bool:
    """HL's tick rule: at most 5 significant figures and 6 - szDecimals decimals; an integer price
    is always allowed (123456 is valid though 12345.6 is not)."""
    if px <= 0:
        return False
    if px == px.to_integral_value():
        return True
    return sig_figs(px) <= 5 and decimals(px) <= MAX_PERP_DECIMALS - sz_decimals


def size_ok(sz: Decimal, sz_decimals: int) -> bool:
    return sz > 0 and decimals(sz) <= sz_decimals


def tick(px: Decimal, sz_decimals: int) -> Decimal:
    """The price step at px: the coarser of the 5-significant-figure and the decimals limits
    (never above 1, since integer prices are always valid)."""
    by_sig = min(Decimal(1), Decimal(1).scaleb(px.adjusted() - 4))
    by_decimals = Decimal(1).scaleb(-(MAX_PERP_DECIMALS - sz_decimals))
    return max(by_sig, by_decimals)


def round_price(px: Decimal, sz_decimals: int, rounding: str) -> Decimal:
    """A valid price near px; the rounding direction is the caller's (against the taker)."""
    return px.quantize(tick(px, sz_decimals), rounding=rounding).normalize()


@dataclass(frozen=True)
class Asset:
    index: int  # the SDK's asset id for a perp: its position in meta["universe"]
    name: str
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False


@dataclass
class Leverage:
    is_cross: bool
    value: int


@dataclass
class Position:
    coin: str
    szi: Decimal  # signed: > 0 long, < 0 short
    entry_px: Decimal
    leverage: Leverage
    # funding the user paid (positive) or received (negative), as HL's cumFunding counts it
    funding_since_open: Decimal = ZERO
    funding_since_change: Decimal = ZERO


@dataclass
class Order:
    oid: int
    asset: Asset
    is_buy: bool
    limit_px: Decimal
    orig_sz: Decimal
    sz: Decimal  # what is still open
    tif: str  # "Gtc" | "Ioc" | "Alo"
    reduce_only: bool
    cloid: str | None
    timestamp: int
    status: str = "open"  # HL's order statuses: open, filled, canceled, iocCancelRejected, ...
    status_timestamp: int = 0

    @property
    def coin(self) -> str:
        return self.asset.name

    @property
    def is_trigger(self) -> bool:  # TriggerOrder (hyperliquid_triggers.py) says True
        return False

    def basic(self) -> Json:  # an openOrders row
        return {
            "coin": self.coin,
            "limitPx": fmt(self.limit_px),
            "oid": self.oid,
            "side": "B" if self.is_buy else "A",
            "sz": fmt(self.sz),
            "timestamp": self.timestamp,
        }

    def frontend(self) -> Json:  # a frontendOpenOrders row, also the "order" of orderStatus
        return self.basic() | {
            "triggerCondition": "N/A",
            "isTrigger": False,
            "triggerPx": "0.0",
            "children": [],
            "isPositionTpsl": False,
            "reduceOnly": self.reduce_only,
            "orderType": "Limit",
            "origSz": fmt(self.orig_sz),
            "tif": self.tif,
            "cloid": self.cloid,
        }

    def with_status(self) -> Json:  # orderStatus / historicalOrders
        return {
            "order": self.frontend(),
            "status": self.status,
            "statusTimestamp": self.status_timestamp,
        }


@dataclass
class Fill:
    coin: str
    px: Decimal
    sz: Decimal
    is_buy: bool
    time: int
    start_position: Decimal
    dir: str  # "Open Long", "Close Short", "Long > Short", ...
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool  # True for the taker side
    fee: Decimal
    tid: int
    cloid: str | None = None
    liquidation: Json | None = None

    def wire(self) -> Json:
        out: Json = {
            "coin": self.coin,
            "px": fmt(self.px),
            "sz": fmt(self.sz),
            "side": "B" if self.is_buy else "A",
            "time": self.time,
            "startPosition": fmt(self.start_position),
            "dir": self.dir,
            "closedPnl": fmt(self.closed_pnl, USD),
            "hash": self.hash,
            "oid": self.oid,
            "crossed": self.crossed,
            "fee": fmt(self.fee, USD),
            "tid": self.tid,
            "feeToken": "USDC",
        }
        if self.cloid is not None:
            out["cloid"] = self.cloid
        if self.liquidation is not None:
            out["liquidation"] = self.liquidation
        return out


@dataclass
class FundingDelta:
    """One hourly funding payment to one position: `usdc` > 0 received, < 0 paid."""

    time: int
    coin: str
    usdc: Decimal
    szi: Decimal
    rate: Decimal
    hash: str

    def wire(self) -> Json:  # a userFunding row
        return {
            "time": self.time,
            "hash": self.hash,
            "delta": {
                "type": "funding",
                "coin": self.coin,
                "usdc": fmt(self.usdc, USD),
                "szi": fmt(self.szi),
                "fundingRate": fmt(self.rate),
                "nSamples": None,  # recorded as 3 when HL sampled 8-hourly; null since hourly
            },
        }


@dataclass
class Account:
    address: str  # lowercase, as HL echoes addresses
    deposited: Decimal = ZERO
    realized: Decimal = ZERO  # closed PnL, fees not included
    fees: Decimal = ZERO
    funding: Decimal = ZERO  # net funding received (negative: paid)
    volume: Decimal = ZERO  # traded notional; HL grants one request per 1 USDC of it
    n_actions: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, Leverage] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    cloids: dict[str, int] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    fundings: list[FundingDelta] = field(default_factory=list)
    funding_all_time: dict[str, Decimal] = field(default_factory=dict)  # coin -> paid


class Book:
    def __init__(self, meta: Json, mids: dict[str, Decimal], slippage_bps: Decimal) -> None:
        self.assets = [
            Asset(index=i, name=u["name"], sz_decimals=int(u["szDecimals"]),
                  max_leverage=int(u["maxLeverage"]), only_isolated=bool(u.get("onlyIsolated")))
            for i, u in enumerate(meta["universe"])
        ]  # fmt: skip
        self.by_name = {a.name: a for a in self.assets}
        self.mids = dict(mids)
        self.slippage = slippage_bps / Decimal(10_000)
        self.accounts: dict[str, Account] = {}
        self.taker_fee, self.maker_fee = TAKER_FEE, MAKER_FEE
        # (coin, taker buys) -> resting sizes a taker meets, one tick apart; absent: unlimited
        self.liquidity: dict[tuple[str, bool], list[Decimal]] = {}
        self.fills_delay_ms = 0  # how long a fill stays invisible to /info
        self.funding_rates: dict[str, Decimal] = {}  # the last rate paid, for assetCtxs
        # Real oids and tids are large, growing integers; start high so nobody mistakes an index.
        self._oids = itertools.count(40_000_000_000)
        self._tids = itertools.count(900_000_000_000_000)

    # ---- reading the state ----------------------------------------------------------------

    def account(self, address: str) -> Account | None:
        return self.accounts.get(address.lower())

    def mid(self, coin: str) -> Decimal:
        return self.mids[coin]

    def bbo(self, asset: Asset) -> tuple[Decimal, Decimal]:
        """One tick either side of the mid: the synthetic book's best bid and ask."""
        mid = self.mid(asset.name)
        step = tick(mid, asset.sz_decimals)
        bid = (mid / step).to_integral_value(ROUND_CEILING) * step - step
        ask = (mid / step).to_integral_value(ROUND_FLOOR) * step + step
        return bid.normalize(), ask.normalize()

    def taker_px(self, asset: Asset, is_buy: bool) -> Decimal:
        """Where a crossing order fills: the mid moved against the taker by the slippage, on a
        valid tick (rounded against the taker too)."""
        mid = self.mid(asset.name)
        if is_buy:
            return round_price(mid * (1 + self.slippage), asset.sz_decimals, ROUND_CEILING)
        return round_price(mid * (1 - self.slippage), asset.sz_decimals, ROUND_FLOOR)

    def account_value(self, acct: Account) -> Decimal:
        upnl = sum((p.szi * (self.mid(p.coin) - p.entry_px) for p in acct.positions.values()), ZERO)
        return acct.deposited + acct.realized - acct.fees + acct.funding + upnl

    def margin_used(self, acct: Account) -> Decimal:
        """Positions at the mark plus the margin resting orders hold, as HL reserves it."""
        used = sum(
            (abs(p.szi) * self.mid(p.coin) / p.leverage.value for p in acct.positions.values()),
            ZERO,
        )
        for o in acct.orders.values():
            if o.status == "open" and not o.reduce_only:
                used += o.sz * o.limit_px / self._leverage(acct, o.asset).value
        return used

    def _leverage(self, acct: Account, asset: Asset) -> Leverage:
        if asset.name in acct.leverage:
            return acct.leverage[asset.name]
        return Leverage(not asset.only_isolated, min(DEFAULT_LEVERAGE, asset.max_leverage))

    # ---- actions ------------------------------------------------------------------------

    def place(self, acct: Account, wire: Json, now_ms: int) -> tuple[Json, list[Fill]]:
        """One order of an `order` action, already canonical (see hyperliquid_api._canonical).
        Returns its status entry and the fills it made."""
        if not 0 <= wire["a"] < len(self.assets):
            return {"error": f"Invalid asset: {wire['a']}"}, []  # wording approximate
        asset = self.assets[wire["a"]]
        if asset.name not in self.mids:
            return {"error": f"peer: {asset.name} has no mid; call set_mid first"}, []
        if "trigger" in wire["t"]:
            return {"error": "peer: trigger (TP/SL) orders are not simulated"}, []
        px, sz, tif = Decimal(wire["p"]), Decimal(wire["s"]), wire["t"]["limit"]["tif"]
        if not price_ok(px, asset.sz_decimals):
            return {"error": INVALID_PRICE}, []
        if not size_ok(sz, asset.sz_decimals):
            return {"error": INVALID_SIZE}, []
        cloid = wire.get("c")
        if cloid is not None and cloid in acct.cloids:
            return {"error": DUPLICATE_CLOID}, []
        order = Order(
            oid=next(self._oids), asset=asset, is_buy=wire["b"], limit_px=px, orig_sz=sz, sz=sz,
            tif=tif, reduce_only=wire["r"], cloid=cloid, timestamp=now_ms,
            status_timestamp=now_ms,
        )  # fmt: skip
        acct.orders[order.oid] = order
        if cloid is not None:
            acct.cloids[cloid] = order.oid
        refusal = self._refusal(acct, order)
        if refusal is not None:
            return self._reject(order, *refusal, now_ms), []
        fill_px = self.taker_px(asset, order.is_buy)
        crosses = fill_px <= px if order.is_buy else fill_px >= px
        if tif == "Alo" and crosses:
            bid, ask = self.bbo(asset)
            msg = ALO_WOULD_MATCH.format(bbo=f"{fmt(bid)}@{fmt(ask)}")
            return self._reject(order, "badAloPxRejected", msg, now_ms), []
        fills = self._take(acct, order, fill_px, now_ms) if crosses else []
        if fills:
            size = sum((f.sz for f in fills), ZERO)
            avg = sum((f.px * f.sz for f in fills), ZERO) / size
            if order.sz > 0 and tif == "Ioc":  # the book ran out: HL cancels an IOC's rest
                order.status, order.status_timestamp, order.sz = "canceled", now_ms, ZERO
            filled: Json = {"totalSz": fmt(size), "avgPx": fmt(avg, PX), "oid": order.oid}
            return {"filled": filled | self._cloid(order)}, fills
        if tif == "Ioc":
            return self._reject(order, "iocCancelRejected", IOC_NO_MATCH, now_ms), []
        return {"resting": {"oid": order.oid} | self._cloid(order)}, []

    def _take(self, acct: Account, order: Order, px: Decimal, now_ms: int) -> list[Fill]:
        """A taker against the book: everything at px when liquidity is unlimited, else the
        set levels in turn (one fill each, one tick apart) while they are within its limit."""
        levels = self.liquidity.get((order.coin, order.is_buy))
        if levels is None:
            return [self._execute(acct, order, px, order.sz, crossed=True, now_ms=now_ms)]
        step, fills = tick(px, order.asset.sz_decimals), []
        for i, available in enumerate(levels):
            level_px = px + step * i if order.is_buy else px - step * i
            beyond = level_px > order.limit_px if order.is_buy else level_px < order.limit_px
            if order.sz == 0 or beyond or level_px <= 0:
                break
            size = min(available, order.sz)
            if size > 0:
                levels[i] -= size
                fills.append(
                    self._execute(acct, order, level_px, size, crossed=True, now_ms=now_ms)
                )
        return fills

    @staticmethod
    def _cloid(order: Order) -> Json:
        return {} if order.cloid is None else {"cloid": order.cloid}

    def _reject(self, order: Order, status: str, message: str, now_ms: int) -> Json:
        # Rejected orders keep their oid and cloid (historicalOrders shows them, e.g. with
        # "iocCancelRejected"), so a reused cloid is a duplicate even after a rejection.
        order.status, order.status_timestamp, order.sz = status, now_ms, ZERO
        return {"error": f"{message} asset={order.asset.index}"}

    def _refusal(self, acct: Account, order: Order) -> tuple[str, str] | None:
        """HL's pre-trade checks, in its order: reduce-only, minimum value, margin."""
        pos = acct.positions.get(order.coin)
        szi = pos.szi if pos else ZERO
        reducing = szi != 0 and (szi > 0) != order.is_buy
        if order.reduce_only:
            if not reducing:
                return "reduceOnlyRejected", REDUCE_ONLY
            # A reduce-only order never flips: HL shrinks what it may fill to the position.
            order.sz = min(order.sz, abs(szi))
            return None  # closing is exempt from the $10 minimum and frees margin
        if order.sz * order.limit_px < MIN_ORDER_VALUE:
            return "minTradeNtlRejected", MIN_VALUE
        growth = order.sz - abs(szi) if reducing else order.sz
        if growth > 0:
            need = growth * order.limit_px / self._leverage(acct, order.asset).value
            if need > self.account_value(acct) - self.margin_used(acct) + self._own(acct, order):
                return "perpMarginRejected", NO_MARGIN
        return None

    def _own(self, acct: Account, order: Order) -> Decimal:
        """The order being checked is already in `acct.orders` as open: don't count it twice."""
        if order.reduce_only:
            return ZERO
        return order.sz * order.limit_px / self._leverage(acct, order.asset).value

    def _execute(
        self,
        acct: Account,
        order: Order,
        px: Decimal,
        sz: Decimal,
        *,
        crossed: bool,
        now_ms: int,
        liquidation: Json | None = None,
    ) -> Fill:
        coin = order.coin
        pos = acct.positions.get(coin)
        szi = pos.szi if pos else ZERO
        entry = pos.entry_px if pos else ZERO
        delta = sz if order.is_buy else -sz
        new = szi + delta
        long_before = szi > 0
        if szi == 0 or (szi > 0) == order.is_buy:
            direction = "Open Long" if order.is_buy else "Open Short"
            closed = ZERO
        elif abs(delta) <= abs(szi):
            direction = "Close Long" if long_before else "Close Short"
            closed = sz
        else:
            direction = "Long > Short" if long_before else "Short > Long"
            closed = abs(szi)
        closed_pnl = closed * (px - entry) * (1 if long_before else -1) if closed else ZERO
        closed_pnl = closed_pnl.quantize(USD)  # booked as reported: in whole USDC units
        if new == 0:
            del acct.positions[coin]
        elif pos is None:
            acct.positions[coin] = Position(coin, new, px, self._leverage(acct, order.asset))
        elif closed == 0:  # adding: entry becomes the size-weighted average
            pos.entry_px = (abs(szi) * entry + sz * px) / abs(new)
            pos.szi = new
        else:  # reducing keeps the entry; flipping starts a new one at the fill
            pos.entry_px = px if (new > 0) != long_before else entry
            pos.szi = new
        if new != 0 and pos is not None:  # HL's cumFunding: sinceOpen restarts on a flip
            pos.funding_since_change = ZERO
            if (new > 0) != long_before:
                pos.funding_since_open = ZERO
        # the fee charged is the fee reported: rounded to USDC's 6 decimals once, here
        fee = (sz * px * (self.taker_fee if crossed else self.maker_fee)).quantize(USD)
        acct.realized += closed_pnl
        acct.fees += fee
        acct.volume += sz * px
        order.sz -= sz
        if order.sz == 0:
            order.status, order.status_timestamp = "filled", now_ms
        tid = next(self._tids)
        fill = Fill(
            coin=coin, px=px, sz=sz, is_buy=order.is_buy, time=now_ms, start_position=szi,
            dir=direction, closed_pnl=closed_pnl, oid=order.oid, crossed=crossed, fee=fee, tid=tid,
            hash="0x" + keccak(f"{order.oid}:{tid}".encode()).hex(),  # stands in for the tx hash
            cloid=order.cloid, liquidation=liquidation,
        )  # fmt: skip
        acct.fills.append(fill)
        return fill

    def cancel(self, acct: Account, asset: int, oid: int | None, now_ms: int) -> Json | str:
        order = acct.orders.get(oid) if oid is not None else None
        if order is None or order.status != "open" or order.asset.index != asset:
            return {"error": f"{NOT_CANCELABLE} asset={asset}"}
        order.status, order.status_timestamp = "canceled", now_ms
        return "success"

    def update_leverage(self, acct: Account, asset_id: int, is_cross: bool, lev: int) -> str | None:
        """None when applied, else the whole-request error text (HL answers these with "err")."""
        if not 0 <= asset_id < len(self.assets):
            return f"Invalid asset: {asset_id}"
        asset = self.assets[asset_id]
        if not 1 <= lev <= asset.max_leverage:  # HL's exact wording unknown
            return (
                f"Invalid leverage value: {lev} (max leverage for {asset.name} is "
                f"{asset.max_leverage})"
            )
        if is_cross and asset.only_isolated:
            return f"Cross margin is not allowed for {asset.name}."
        pos = acct.positions.get(asset.name)
        if pos is not None and pos.leverage.is_cross != is_cross:
            return SWITCH_TYPE
        acct.leverage[asset.name] = Leverage(is_cross, lev)
        if pos is not None:
            pos.leverage = acct.leverage[asset.name]
        return None

    def on_mid(self, coin: str, now_ms: int) -> list[tuple[Account, Fill]]:
        """The mid moved: resting orders it walked through fill at their limit, as makers."""
        mid, out = self.mid(coin), []
        for acct in self.accounts.values():
            for order in list(acct.orders.values()):
                if order.status != "open" or order.coin != coin or order.is_trigger:
                    continue
                if not (mid <= order.limit_px if order.is_buy else mid >= order.limit_px):
                    continue
                if order.reduce_only and self._refusal(acct, order) is not None:
                    order.status, order.status_timestamp = "reduceOnlyCanceled", now_ms
                    continue
                fill = self._execute(
                    acct, order, order.limit_px, order.sz, crossed=False, now_ms=now_ms
                )
                out.append((acct, fill))
        return out

    def close_externally(
        self, acct: Account, coin: str, px: Decimal | None, liquidation: bool, now_ms: int
    ) -> Fill:
        """The position closed outside the bot (HL's app, or the liquidator): one fill at px."""
        pos = acct.positions.get(coin)
        if pos is None:
            raise KeyError(f"{acct.address} has no {coin} position to close")
        px = self.mid(coin) if px is None else px
        size = abs(pos.szi)
        order = Order(
            oid=next(self._oids), asset=self.by_name[coin], is_buy=pos.szi < 0, limit_px=px,
            orig_sz=size, sz=size, tif="Ioc", reduce_only=True, cloid=None, timestamp=now_ms,
        )  # fmt: skip
        liq = None
        if liquidation:
            liq = {"liquidatedUser": acct.address, "markPx": fmt(px), "method": "market"}
        else:
            acct.orders[order.oid] = order  # a manual close is an order the user placed
        return self._execute(acct, order, px, size, crossed=True, now_ms=now_ms, liquidation=liq)

    def liquidate_underwater(self, now_ms: int) -> list[tuple[Account, Fill]]:
        """HL's liquidator, simplified: an account whose value fell below its maintenance
        margin (each position's notional at the mark times 1 / (2 * the asset's maxLeverage))
        has its positions closed at the mark, each fill carrying `liquidation` info."""
        out = []
        for acct in list(self.accounts.values()):
            if not acct.positions:
                continue
            maintenance = sum(
                (
                    abs(p.szi) * self.mid(p.coin) / (2 * self.by_name[p.coin].max_leverage)
                    for p in acct.positions.values()
                ),
                ZERO,
            )
            if self.account_value(acct) < maintenance:
                for coin in list(acct.positions):
                    out.append((acct, self.close_externally(acct, coin, None, True, now_ms)))
        return out

    def pay_funding(
        self, coin: str, rate: Decimal, oracle_px: Decimal | None, now_ms: int
    ) -> list[FundingDelta]:
        """One funding payment to every open position in coin: -szi * oraclePx * rate USDC
        (longs pay a positive rate, shorts receive it), rounded to USDC's 6 decimals and
        booked to the account's balance exactly as userFunding reports it."""
        px = self.mid(coin) if oracle_px is None else oracle_px
        self.funding_rates[coin] = rate
        paid = []
        for acct in self.accounts.values():
            pos = acct.positions.get(coin)
            if pos is None:
                continue
            usdc = (-pos.szi * px * rate).quantize(USD)
            acct.funding += usdc
            pos.funding_since_open -= usdc
            pos.funding_since_change -= usdc
            acct.funding_all_time[coin] = acct.funding_all_time.get(coin, ZERO) - usdc
            digest = keccak(f"funding:{acct.address}:{coin}:{now_ms}".encode()).hex()
            delta = FundingDelta(now_ms, coin, usdc, pos.szi, rate, "0x" + digest)
            acct.fundings.append(delta)
            paid.append(delta)
        return paid

    # ---- /info renderers ----------------------------------------------------------------

    def clearinghouse_state(self, address: str, now_ms: int) -> Json:
        acct = self.account(address) or Account(address.lower())
        rows, ntl, margin, maint, signed_ntl = [], ZERO, ZERO, ZERO, ZERO
        cross_ntl = cross_margin = ZERO
        value = self.account_value(acct)
        for pos in acct.positions.values():
            asset, mark = self.by_name[pos.coin], self.mid(pos.coin)
            pos_value = abs(pos.szi) * mark
            upnl = pos.szi * (mark - pos.entry_px)
            pos_margin = pos_value / pos.leverage.value
            ntl, margin = ntl + pos_value, margin + pos_margin
            signed_ntl += pos.szi * mark
            maint += pos_value / (2 * asset.max_leverage)  # HL: half the initial at max leverage
            if pos.leverage.is_cross:
                cross_ntl, cross_margin = cross_ntl + pos_value, cross_margin + pos_margin
            lev: Json = {
                "type": "cross" if pos.leverage.is_cross else "isolated",
                "value": pos.leverage.value,
            }
            if not pos.leverage.is_cross:
                lev["rawUsd"] = fmt(pos_margin - pos.szi * pos.entry_px, USD)
            rows.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": pos.coin,
                        "szi": fmt(pos.szi),
                        "leverage": lev,
                        "entryPx": fmt(pos.entry_px, Decimal("1e-8")),
                        "positionValue": fmt(pos_value, USD),
                        "unrealizedPnl": fmt(upnl, USD),
                        "returnOnEquity": fmt(
                            upnl * pos.leverage.value / (abs(pos.szi) * pos.entry_px),
                            Decimal("1e-8"),
                        ),
                        "liquidationPx": self._liquidation_px(pos, value),
                        "marginUsed": fmt(pos_margin, USD),
                        "maxLeverage": asset.max_leverage,
                        "cumFunding": {
                            "allTime": fmt(acct.funding_all_time.get(pos.coin, ZERO), USD),
                            "sinceOpen": fmt(pos.funding_since_open, USD),
                            "sinceChange": fmt(pos.funding_since_change, USD),
                        },
                    },
                }
            )

        def summary(n: Decimal, m: Decimal) -> Json:
            return {
                "accountValue": fmt(value, USD),
                "totalNtlPos": fmt(n, USD),
                "totalRawUsd": fmt(value - signed_ntl, USD),
                "totalMarginUsed": fmt(m, USD),
            }

        return {
            "marginSummary": summary(ntl, margin),
            "crossMarginSummary": summary(cross_ntl, cross_margin),
            "crossMaintenanceMarginUsed": fmt(maint, USD),
            "withdrawable": fmt(max(ZERO, value - self.margin_used(acct)), USD),
            "assetPositions": rows,
            "time": now_ms,
        }

    def _liquidation_px(self, pos: Position, value: Decimal) -> str | None:
        """Where this position alone would bring the account to maintenance margin, the rest
        held at today's marks; None when no positive price does (HL answers null then)."""
        mmr = Decimal(1) / (2 * self.by_name[pos.coin].max_leverage)
        rest = value - pos.szi * (self.mid(pos.coin) - pos.entry_px)  # value without this upnl
        denom = pos.szi - abs(pos.szi) * mmr
        if denom == 0:
            return None
        px = (pos.szi * pos.entry_px - rest) / denom
        return fmt(px, Decimal("1e-8")) if px > 0 else None

    def order_status(self, address: str, oid: int | str) -> Json:
        acct = self.account(address)
        if acct is not None:
            key = acct.cloids.get(oid) if isinstance(oid, str) else oid
            order = acct.orders.get(key) if key is not None else None
            if order is not None:
                return {"status": "order", "order": order.with_status()}
        return {"status": "unknownOid"}

    def open_orders(self, address: str, frontend: bool) -> list[Json]:
        acct = self.account(address)
        rows = [o for o in (acct.orders.values() if acct else ()) if o.status == "open"]
        rows.sort(key=lambda o: o.oid, reverse=True)  # newest first, as HL lists them
        return [o.frontend() if frontend else o.basic() for o in rows]

    def historical_orders(self, address: str) -> list[Json]:
        acct = self.account(address)
        rows = sorted(acct.orders.values() if acct else (), key=lambda o: o.oid, reverse=True)
        return [o.with_status() for o in rows]

    def _visible(self, address: str, now_ms: int) -> list[Fill]:
        acct = self.account(address)
        fills = list(acct.fills) if acct else []
        if self.fills_delay_ms:
            fills = [f for f in fills if f.time <= now_ms - self.fills_delay_ms]
        return fills

    def user_fills(self, address: str, now_ms: int) -> list[Json]:
        """userFills: the 2,000 most recent fills, newest first; older ones are not here."""
        return [f.wire() for f in reversed(self._visible(address, now_ms)[-FILLS_SHOWN:])]

    def user_fills_by_time(
        self, address: str, start: int, end: int | None, aggregate: bool, now_ms: int
    ) -> list[Json]:
        """userFillsByTime: fills in [start, end] among the 10,000 most recent, oldest first,
        at most 2,000 (the next page starts at the last one's time). `aggregate` merges the
        fills one crossing order made in one match into one row, as aggregateByTime does."""
        fills = self._visible(address, now_ms)[-FILLS_KEPT:]
        rows = [f for f in fills if start <= f.time and (end is None or f.time <= end)]
        if aggregate:
            return [_merged(group) for group in _taker_groups(rows)][:FILLS_SHOWN]
        return [f.wire() for f in rows[:FILLS_SHOWN]]

    def user_funding(self, address: str, start: int, end: int | None) -> list[Json]:
        acct = self.account(address)
        rows = [
            d
            for d in (acct.fundings if acct else ())
            if start <= d.time and (end is None or d.time <= end)
        ]
        return [d.wire() for d in rows[:FUNDING_SHOWN]]

    def l2_book(self, coin: str, now_ms: int, depth: int = 5) -> Json:
        """A synthetic book around the mid: `depth` levels a side, one tick apart, deep enough
        that nobody runs out (fills here don't consume it)."""
        asset = self.by_name[coin]
        if (coin, True) in self.liquidity:
            return self._finite_book(asset, now_ms)
        bid, ask = self.bbo(asset)
        step = tick(self.mid(coin), asset.sz_decimals)
        lot = Decimal(1).scaleb(-asset.sz_decimals)
        size = fmt((Decimal(1_000_000) / self.mid(coin)).quantize(lot, ROUND_FLOOR))  # ~$1M a level

        def level(px: Decimal) -> Json:
            return {"px": fmt(px), "sz": size, "n": 1}

        bids = [level(bid - i * step) for i in range(depth) if bid - i * step > 0]
        asks = [level(ask + i * step) for i in range(depth)]
        return {"coin": coin, "time": now_ms, "levels": [bids, asks]}

    def _finite_book(self, asset: Asset, now_ms: int) -> Json:
        """The levels a test set with `set_liquidity`, where a taker meets them."""
        sides = []
        for taker_buys in (False, True):  # bids (what a seller meets), then asks
            px = self.taker_px(asset, taker_buys)
            step = tick(px, asset.sz_decimals)
            levels = self.liquidity[(asset.name, taker_buys)]
            sides.append(
                [
                    {
                        "px": fmt(px + step * i if taker_buys else px - step * i),
                        "sz": fmt(sz),
                        "n": 1,
                    }
                    for i, sz in enumerate(levels)
                    if sz > 0
                ]
            )
        return {"coin": asset.name, "time": now_ms, "levels": sides}

    def asset_ctxs(self) -> list[Json]:
        out = []
        for a in self.assets:
            mid = fmt(self.mids[a.name]) if a.name in self.mids else None
            out.append(
                {
                    "funding": fmt(self.funding_rates.get(a.name, ZERO)),
                    "openInterest": "0.0",
                    "prevDayPx": mid,
                    "dayNtlVlm": "0.0",
                    "premium": "0.0",
                    "oraclePx": mid,
                    "markPx": mid,
                    "midPx": mid,
                    "impactPxs": [mid, mid] if mid else None,
                    "dayBaseVlm": "0.0",
                }
            )
        return out


def _taker_groups(fills: list[Fill]) -> list[list[Fill]]:
    """Consecutive fills of one crossing order in one match (same oid and time) together."""
    groups: list[list[Fill]] = []
    for f in fills:
        last = groups[-1][-1] if groups else None
        if last is not None and f.crossed and (last.oid, last.time) == (f.oid, f.time):
            groups[-1].append(f)
        else:
            groups.append([f])
    return groups


def _merged(group: list[Fill]) -> Json:
    if len(group) == 1:
        return group[0].wire()
    size = sum((f.sz for f in group), ZERO)
    return group[0].wire() | {
        "px": fmt(sum((f.px * f.sz for f in group), ZERO) / size, PX),
        "sz": fmt(size),
        "closedPnl": fmt(sum((f.closed_pnl for f in group), ZERO), USD),
        "fee": fmt(sum((f.fee for f in group), ZERO), USD),
    }
