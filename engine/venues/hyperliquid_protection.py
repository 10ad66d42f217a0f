"""Protective orders resting on Hyperliquid: reduce-only stop-loss and take-profit trigger
orders that close a live position even while Maxxit is down.

Each is a market trigger (`{"trigger": {"isMarket": true, "triggerPx", "tpsl"}}`), reduce-only,
grouped `positionTpsl` by default: it covers the whole position whatever its size when it fires
(a partial fill or an add does not leave part of it unprotected) and Hyperliquid cancels it when
the position is gone. Its limit price is the trigger moved 10% against the close, the bound the
Hyperliquid app gives a market TP/SL.

Trigger prices are rounded to Hyperliquid's tick toward the market (a long's stop up, its take
profit down): the position is closed a tick early rather than a tick late.

Client order ids: each version of a trigger has its own cloid (the caller derives it from the
position, the kind and a version counter). A stop move is a `batchModify` that names the
resting order by its current cloid and gives the replacement the next version's cloid.
Hyperliquid implements modify as cancel-replace (the replacement gets a new oid) and lets the
replacement keep the old cloid, but a fresh one makes a lost answer decidable: one `orderStatus`
on the new cloid says whether the move happened (open) or not (unknownOid), where a kept cloid
would leave the old and the new order under one name. Never reusing a cloid also keeps clear of
Hyperliquid's duplicate-cloid refusal after a rejected placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hyperliquid.utils.types import Cloid

from engine.venues.base import Fill, OrderLookup, OrderState, VenueRejected
from engine.venues.hyperliquid import HyperliquidVenue, VenuePosition
from engine.venues.hyperliquid_errors import reason_for
from engine.venues.hyperliquid_rules import round_price, round_size

TRIGGER_SLIPPAGE = Decimal("0.10")
STOP, TAKE_PROFIT = "sl", "tp"
MODIFY_GONE = "cannot modify canceled or filled order"


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    kind: str  # "sl" | "tp"
    price: Decimal  # as asked; rounded to the tick when sent
    cloid: str


@dataclass(frozen=True, slots=True)
class ProtectionOrder:
    kind: str
    cloid: str
    trigger_price: Decimal  # as sent (rounded)
    venue_order_id: str | None  # None when refused
    error: str | None = None
    reason: str | None = None  # our reason code for a refusal (hyperliquid_errors)


@dataclass(frozen=True, slots=True)
class ProtectionOrders:
    stop: ProtectionOrder | None
    take_profit: ProtectionOrder | None


@dataclass(frozen=True, slots=True)
class RestingTrigger:
    market: str
    kind: str
    cloid: str | None
    venue_order_id: str
    trigger_price: Decimal
    size: Decimal
    closes: str  # the side of the position it closes: "long" | "short"
    position_tpsl: bool


class HyperliquidProtection:
    """Uses the venue's signing, limiter and market table; holds no state of its own."""

    def __init__(self, venue: HyperliquidVenue, grouping: str = "positionTpsl") -> None:
        self.venue = venue
        self.name = venue.name
        self.grouping = grouping

    # -- prices ---------------------------------------------------------------------------

    def _sz_decimals(self, market: str) -> int:
        info = self.venue.markets().get(market)
        if info is None:
            raise VenueRejected("not_listed", f"{market} is not listed on Hyperliquid")
        return info.size_decimals

    def trigger_price(self, market: str, side: str, kind: str, price: Decimal) -> Decimal:
        """The valid trigger price nearest `price` on the market's side of it."""
        up = (kind == STOP) == (side == "long")  # a long's stop and a short's take profit
        return round_price(price, self._sz_decimals(market), up)

    def _wire(
        self, market: str, side: str, size: Decimal, spec: TriggerSpec
    ) -> tuple[dict[str, Any], Decimal]:
        decimals = self._sz_decimals(market)
        trigger = self.trigger_price(market, side, spec.kind, spec.price)
        is_buy = side == "short"  # the close trades against the position
        bound = trigger * (1 + TRIGGER_SLIPPAGE if is_buy else 1 - TRIGGER_SLIPPAGE)
        order = {
            "coin": market,
            "is_buy": is_buy,
            "sz": float(round_size(size, decimals)),
            "limit_px": float(round_price(bound, decimals, is_buy)),
            "order_type": {
                "trigger": {"isMarket": True, "triggerPx": float(trigger), "tpsl": spec.kind}
            },
            "reduce_only": True,
            "cloid": Cloid.from_str(spec.cloid),
        }
        return order, trigger

    # -- actions --------------------------------------------------------------------------

    async def place_triggers(
        self, account: str, market: str, side: str, size: Decimal, specs: list[TriggerSpec]
    ) -> list[ProtectionOrder]:
        """One signed action for all of a position's triggers; one result per spec."""
        exchange = await self.venue._exchange(account)
        wires = [self._wire(market, side, size, spec) for spec in specs]
        result = await self.venue._signed(
            exchange, exchange.bulk_orders, [w for w, _ in wires], None, self.grouping
        )
        statuses = _statuses(result)
        return [
            _outcome(spec, trigger, status)
            for spec, (_, trigger), status in zip(specs, wires, statuses, strict=True)
        ]

    async def place_protection(
        self,
        account: str,
        market: str,
        side: str,
        size: Decimal,
        stop_px: Decimal | None,
        take_profit_px: Decimal | None,
        cloids: dict[str, str],
    ) -> ProtectionOrders:
        """The stop (and take profit when set) of one position; `cloids` by kind."""
        specs = []
        if stop_px is not None:
            specs.append(TriggerSpec(STOP, stop_px, cloids[STOP]))
        if take_profit_px is not None:
            specs.append(TriggerSpec(TAKE_PROFIT, take_profit_px, cloids[TAKE_PROFIT]))
        placed = {o.kind: o for o in await self.place_triggers(account, market, side, size, specs)}
        return ProtectionOrders(placed.get(STOP), placed.get(TAKE_PROFIT))

    async def move_stop(
        self,
        account: str,
        market: str,
        side: str,
        size: Decimal,
        new_stop_px: Decimal,
        cloid: str,
        new_cloid: str,
        kind: str = STOP,
    ) -> ProtectionOrder:
        """Modify the resting trigger named by `cloid` to `new_stop_px`, renamed `new_cloid`.
        A refusal because the order is gone (fired, canceled) has reason "protection_gone"."""
        exchange = await self.venue._exchange(account)
        spec = TriggerSpec(kind, new_stop_px, new_cloid)
        order, trigger = self._wire(market, side, size, spec)
        modify = {"oid": Cloid.from_str(cloid), "order": order}
        result = await self.venue._signed(exchange, exchange.bulk_modify_orders_new, [modify])
        [status] = _statuses(result)
        outcome = _outcome(spec, trigger, status)
        if outcome.error and MODIFY_GONE in outcome.error.lower():
            return ProtectionOrder(kind, new_cloid, trigger, None, outcome.error, "protection_gone")
        return outcome

    async def cancel_protection(self, account: str, market: str, cloids: list[str]) -> list[bool]:
        """Cancel by cloid; False for one that was no longer resting (fired or gone)."""
        if not cloids:
            return []
        exchange = await self.venue._exchange(account)
        requests = [{"coin": market, "cloid": Cloid.from_str(c)} for c in cloids]
        result = await self.venue._signed(exchange, exchange.bulk_cancel_by_cloid, requests)
        return [s == "success" for s in _statuses(result)]

    # -- reads ----------------------------------------------------------------------------

    async def resting_triggers(self, account: str) -> list[RestingTrigger]:
        rows = await self.venue.info("frontendOpenOrders", {"user": account})
        return [
            RestingTrigger(
                market=r["coin"],
                kind=STOP if r["orderType"].startswith("Stop") else TAKE_PROFIT,
                cloid=r.get("cloid"),
                venue_order_id=str(r["oid"]),
                trigger_price=Decimal(r["triggerPx"]),
                size=Decimal(r["sz"]),
                closes="short" if r["side"] == "B" else "long",
                position_tpsl=bool(r.get("isPositionTpsl")),
            )
            for r in rows
            if r.get("isTrigger")
        ]

    async def positions(self, account: str) -> list[VenuePosition]:
        return await self.venue.positions(account)

    async def look_up_trigger(self, account: str, cloid: str) -> OrderLookup:
        """What became of a trigger: OPEN (resting or triggered), FILLED with its fill (found by
        time from the order's own timestamp, not among the latest 2000 fills), CANCELED, or
        UNKNOWN (never reached Hyperliquid)."""
        answer = await self.venue.info("orderStatus", {"user": account, "oid": cloid})
        if answer.get("status") != "order":
            return OrderLookup(OrderState.UNKNOWN)
        order, status = answer["order"]["order"], answer["order"]["status"]
        if status in ("open", "triggered"):
            return OrderLookup(OrderState.OPEN, detail=status)
        if status != "filled":
            return OrderLookup(OrderState.CANCELED, detail=status)
        oid = order["oid"]
        found = await self.venue.info(
            "userFillsByTime", {"user": account, "startTime": int(order["timestamp"])}
        )
        fills = [f for f in found if f["oid"] == oid]
        if not fills:
            return OrderLookup(OrderState.FILLED_FILLS_PENDING, detail=status)
        size = sum((Decimal(f["sz"]) for f in fills), Decimal(0))
        price = sum((Decimal(f["px"]) * Decimal(f["sz"]) for f in fills), Decimal(0)) / size
        fee = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
        at = datetime.fromtimestamp(max(int(f["time"]) for f in fills) / 1000, UTC)
        return OrderLookup(OrderState.FILLED, Fill(cloid, price, size, fee, str(oid), at), status)


def _statuses(result: dict[str, Any]) -> list[Any]:
    if result.get("status") != "ok":
        text = str(result.get("response"))
        raise VenueRejected(reason_for(text), text)
    return list(result["response"]["data"]["statuses"])


def _outcome(spec: TriggerSpec, trigger: Decimal, status: Any) -> ProtectionOrder:
    if isinstance(status, dict) and "resting" in status:
        return ProtectionOrder(spec.kind, spec.cloid, trigger, str(status["resting"]["oid"]))
    if isinstance(status, dict) and "filled" in status:  # fired at once: HL took it as a close
        return ProtectionOrder(spec.kind, spec.cloid, trigger, str(status["filled"]["oid"]))
    text = status.get("error", str(status)) if isinstance(status, dict) else str(status)
    return ProtectionOrder(spec.kind, spec.cloid, trigger, None, text, reason_for(text))
