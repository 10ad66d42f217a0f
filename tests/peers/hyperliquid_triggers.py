"""Trigger (TP/SL) orders for the Hyperliquid stand-in, beside the book in hyperliquid_book.py:
placing them, firing them when the mark crosses them, modify (`modify`, `batchModify`), and
the position-tied ones (`positionTpsl`) that follow the position and go when it goes.

What is modelled, and where it is knowingly simpler than Hyperliquid:
- only market triggers (`isMarket: true`), only reduce-only: what a protective stop is. HL
  also has limit triggers and non-reduce-only stop entries; they are refused here by name;
- a trigger fires when the stand-in's mark (its mid, moved by `peer.set_mid`) reaches its
  price: a stop loss closing a long at mark <= triggerPx, a take profit at mark >= triggerPx
  (mirrored for a short). It then closes like HL's market TP/SL: a reduce-only taker fill at
  the mid moved against it by the peer's slippage; the order's own limit price only has to be
  valid (HL bounds a market TP/SL by 10% slippage, which unlimited liquidity never reaches);
- between firing and filling the order's status is "triggered"; it passes at once unless a
  test holds it there (`hold_triggered`);
- `positionTpsl`: the order covers the whole position whatever its size when it fires, shows
  the position's size while it rests, and is canceled when the position is closed; an `na`
  reduce-only trigger keeps its size and is canceled ("reduceOnlyCanceled") when the position
  it would reduce is gone, as HL does with the remaining TP/SL of a flat position;
- modify is HL's cancel-replace: the old order is canceled, the replacement gets a new oid and
  may keep the old cloid or carry a new one (a cloid ever used by another order is a duplicate).
  Wording of the refusals marked "approximate" is not HL's verbatim text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.peers.hyperliquid_book import (
    DUPLICATE_CLOID,
    INVALID_PRICE,
    INVALID_SIZE,
    REDUCE_ONLY,
    ZERO,
    Account,
    Book,
    Fill,
    Json,
    Order,
    fmt,
    price_ok,
    size_ok,
)

MODIFY_GONE = "Cannot modify canceled or filled order"  # wording approximate
ORDER_TYPES = {"sl": "Stop Market", "tp": "Take Profit Market"}


@dataclass
class TriggerOrder(Order):
    """A resting trigger: an Order the book keeps with the others (so orderStatus, cancel and
    historicalOrders see it), which the book's limit matching skips (`is_trigger`)."""

    trigger_px: Decimal = ZERO
    tpsl: str = "sl"
    position_tpsl: bool = False
    held_size: Decimal | None = None  # positionTpsl: the position's size, kept fresh by the desk

    @property
    def is_trigger(self) -> bool:
        return True

    def crossed_by(self, mark: Decimal) -> bool:
        # is_buy closes a short: its stop is above the mark, its take profit below
        below = (self.tpsl == "sl") != self.is_buy
        return mark <= self.trigger_px if below else mark >= self.trigger_px

    def condition(self) -> str:
        below = (self.tpsl == "sl") != self.is_buy
        return f"Price {'below' if below else 'above'} {fmt(self.trigger_px)}"

    def basic(self) -> Json:
        row = super().basic()
        if self.position_tpsl and self.held_size is not None:
            row["sz"] = fmt(self.held_size)
        return row

    def frontend(self) -> Json:
        return super().frontend() | {
            "triggerCondition": self.condition(),
            "isTrigger": True,
            "triggerPx": fmt(self.trigger_px),
            "isPositionTpsl": self.position_tpsl,
            "orderType": ORDER_TYPES[self.tpsl],
            "tif": None,
        }


class TriggerDesk:
    """The trigger side of one Book: the API routes trigger orders, modifies and mark moves
    here; fills go through the book's own `_execute`, so positions, fees and userFills are
    one story."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.hold_triggered = False  # a test may watch the "triggered" status in between

    # ---- placing ------------------------------------------------------------------------

    def place(
        self, acct: Account, wire: Json, grouping: Any, now_ms: int, replacing: Order | None = None
    ) -> Json:
        """One trigger of an `order` action, or the replacement of a modify (`replacing`, which
        is canceled only once the replacement passed its checks). Returns its status entry."""
        book = self.book
        if not 0 <= wire["a"] < len(book.assets):
            return {"error": f"Invalid asset: {wire['a']}"}
        asset = book.assets[wire["a"]]
        if asset.name not in book.mids:
            return {"error": f"peer: {asset.name} has no mid; call set_mid first"}
        trig = wire["t"]["trigger"]
        if not trig["isMarket"]:
            return {"error": "peer: limit trigger orders are not simulated"}
        if not wire["r"]:
            return {"error": "peer: only reduce-only trigger orders are simulated"}
        position_tpsl = grouping == "positionTpsl"
        if grouping not in ("na", "positionTpsl"):
            return {"error": f"peer: grouping {grouping!r} is not simulated"}
        px, sz, trigger_px = Decimal(wire["p"]), Decimal(wire["s"]), Decimal(trig["triggerPx"])
        if not (price_ok(px, asset.sz_decimals) and price_ok(trigger_px, asset.sz_decimals)):
            return {"error": INVALID_PRICE}
        if not (size_ok(sz, asset.sz_decimals) or (position_tpsl and sz == 0)):
            return {"error": INVALID_SIZE}
        cloid = wire.get("c")
        kept = replacing.cloid if replacing is not None else None
        if cloid is not None and cloid in acct.cloids and cloid != kept:
            return {"error": DUPLICATE_CLOID}
        szi = self._szi(acct, asset.name)
        reduces = szi != 0 and (szi > 0) != wire["b"]
        if not reduces and replacing is not None:
            return {"error": f"{REDUCE_ONLY} asset={asset.index}"}
        if replacing is not None:
            replacing.status, replacing.status_timestamp = "canceled", now_ms
        order = TriggerOrder(
            oid=next(book._oids), asset=asset, is_buy=wire["b"], limit_px=px, orig_sz=sz, sz=sz,
            tif="Gtc", reduce_only=True, cloid=cloid, timestamp=now_ms, status_timestamp=now_ms,
            trigger_px=trigger_px, tpsl=trig["tpsl"], position_tpsl=position_tpsl,
        )  # fmt: skip
        acct.orders[order.oid] = order
        if cloid is not None:
            acct.cloids[cloid] = order.oid
        if not reduces:  # rejected, but seen: its cloid is used (as the book does)
            order.status, order.status_timestamp, order.sz = "reduceOnlyRejected", now_ms, ZERO
            return {"error": f"{REDUCE_ONLY} asset={asset.index}"}
        self._follow(order, szi)
        return {"resting": {"oid": order.oid} | ({"cloid": cloid} if cloid else {})}

    def modify(self, acct: Account, target: int | str, wire: Json, now_ms: int) -> Json:
        """HL's cancel-replace. The target is an oid or a cloid; it must still be open. A
        replacement that fails its checks leaves the old order resting."""
        oid = acct.cloids.get(target) if isinstance(target, str) else target
        old = acct.orders.get(oid) if oid is not None else None
        if old is None or old.status != "open":
            return {"error": MODIFY_GONE}
        if "trigger" not in wire["t"]:
            return {"error": "peer: modifying into a limit order is not simulated"}
        grouping = "positionTpsl" if getattr(old, "position_tpsl", False) else "na"
        return self.place(acct, wire, grouping, now_ms, replacing=old)

    # ---- the mark moves -----------------------------------------------------------------

    def on_mark(self, coin: str, now_ms: int) -> list[tuple[Account, Fill]]:
        """Fires every open trigger of `coin` the mark reached, oldest first."""
        mark, out = self.book.mid(coin), []
        for acct in self.book.accounts.values():
            for order in sorted(self._triggers(acct, coin, "open"), key=lambda o: o.oid):
                if order.status == "open" and order.crossed_by(mark):
                    order.status, order.status_timestamp = "triggered", now_ms
                    if not self.hold_triggered:
                        out += self._fire(acct, order, now_ms)
        return out

    def on_mark_all(self, now_ms: int) -> list[tuple[Account, Fill]]:
        """After placing or modifying: a trigger placed already through its price fires at the
        current mark, as HL's would on its next mark update."""
        accounts = self.book.accounts.values()
        coins = {o.coin for a in accounts for o in self._triggers(a, None, "open")}
        return [f for coin in sorted(coins) for f in self.on_mark(coin, now_ms)]

    def release_triggered(self, now_ms: int) -> list[tuple[Account, Fill]]:
        """Fills the triggers held at "triggered" (see `hold_triggered`)."""
        out = []
        for acct in self.book.accounts.values():
            for order in self._triggers(acct, None, "triggered"):
                out += self._fire(acct, order, now_ms)
        return out

    def _fire(self, acct: Account, order: TriggerOrder, now_ms: int) -> list[tuple[Account, Fill]]:
        szi = self._szi(acct, order.coin)
        if szi == 0 or (szi > 0) == order.is_buy:
            order.status, order.status_timestamp, order.sz = "reduceOnlyCanceled", now_ms, ZERO
            return []
        order.sz = abs(szi) if order.position_tpsl else min(order.sz, abs(szi))
        px = self.book.taker_px(order.asset, order.is_buy)
        fill = self.book._execute(acct, order, px, order.sz, crossed=True, now_ms=now_ms)
        out = [(acct, fill)]
        self.after_fills(out, now_ms)
        return out

    def after_fills(self, fills: list[tuple[Account, Fill]], now_ms: int) -> None:
        """A fill changed a position: position triggers follow its size, and the triggers of a
        position that is gone are canceled."""
        for acct in {id(a): a for a, _ in fills}.values():
            for order in self._triggers(acct, None, "open"):
                szi = self._szi(acct, order.coin)
                if szi == 0 or (szi > 0) == order.is_buy:
                    status = "canceled" if order.position_tpsl else "reduceOnlyCanceled"
                    order.status, order.status_timestamp, order.sz = status, now_ms, ZERO
                else:
                    self._follow(order, szi)

    # ---- helpers ------------------------------------------------------------------------

    @staticmethod
    def _triggers(acct: Account, coin: str | None, status: str) -> list[TriggerOrder]:
        return [
            o
            for o in list(acct.orders.values())
            if isinstance(o, TriggerOrder) and o.status == status and coin in (None, o.coin)
        ]

    @staticmethod
    def _szi(acct: Account, coin: str) -> Decimal:
        pos = acct.positions.get(coin)
        return pos.szi if pos else ZERO

    @staticmethod
    def _follow(order: TriggerOrder, szi: Decimal) -> None:
        if order.position_tpsl:
            order.held_size = abs(szi)
