"""Record what the venues answered: filled opens become positions, filled closes end them
(with PnL and profit share: engine/filled_closes.py), refusals are kept with their reason;
all in one transaction, with the alerts written to the outbox in that same transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.classify.call_levels import levels_of
from engine.events import Event, OrderFailed, PositionOpened
from engine.filled_closes import record_closes
from engine.levels import RiskLevels, RiskParams
from engine.levels_from_call import CallLevels, initial_levels
from engine.orders import Outcome
from engine.venues.routed import mode_of
from storage.bulk import insert_ignore, settle_rows, update_by_id
from storage.enums import OrderPurpose, OrderStatus, PositionStatus
from storage.ids import among
from storage.models import (
    Agent,
    ClassificationRow,
    Deployment,
    Order,
    Position,
    Post,
    RoutingDecision,
    Signal,
)
from storage.types import quantize

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Recorded:
    events: list[Event] = field(default_factory=list)
    opened: list[tuple[int, str, RiskLevels]] = field(default_factory=list)  # id, market, levels
    closed: list[int] = field(default_factory=list)
    closed_owners: set[int] = field(default_factory=set)  # the users of `closed`
    # (signal, deployment) of positions whose close the venue refused or filled in part: they
    # stay open, and their close is retried
    refused_closes: list[tuple[int, int, str]] = field(default_factory=list)  # + reason
    # opens that waited for a close recorded here (position policy "flip"): pending now
    released_opens: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SignalInfo:
    agent_name: str
    params: RiskParams
    rationale: str = ""  # the LLM's one-sentence reason, shown in the alert
    route: tuple[str, str] = ("", "")  # MULTI by cost: (runner-up venue, saving in percent)
    call: CallLevels | None = None  # levels the call stated (engine/levels_from_call.py)


async def _signal_info(session: AsyncSession, signal_ids: set[int]) -> dict[int, SignalInfo]:
    rows = await session.execute(
        select(
            Signal.id,
            Agent,
            ClassificationRow.classifier,
            ClassificationRow.reason,
            RoutingDecision.reason,
            RoutingDecision.candidates,
            ClassificationRow.details,
        )
        .join(Agent, Agent.id == Signal.agent_id)
        .join(Post, Post.id == Signal.post_id)
        .outerjoin(ClassificationRow, ClassificationRow.post_id == Post.id)
        .outerjoin(RoutingDecision, RoutingDecision.signal_id == Signal.id)
        .where(Signal.id.in_(signal_ids))
    )
    out = {}
    for sid, agent, classifier, reason, route_reason, candidates, details in rows:
        out[sid] = SignalInfo(
            agent.name,
            RiskParams(
                agent.stop_loss_pct,
                agent.take_profit_pct,
                agent.trailing_activation_pct,
                agent.trailing_distance_pct,
            ),
            # an LLM reading, or a creator call with its rate (handlers/calls.py)
            (reason or "") if classifier in ("llm", "creator") else "",
            route_by_cost(route_reason, candidates),
            CallLevels.of(levels_of(details)),
        )
    return out


def route_by_cost(reason: str | None, candidates: list[dict[str, Any]] | None) -> tuple[str, str]:
    """(runner-up venue, saving in percent) of a MULTI decision taken by cost."""
    if reason != "cheapest" or not candidates:
        return ("", "")
    ranked = sorted(
        (c for c in candidates if c.get("eligible")), key=lambda c: Decimal(c["cost_pct"])
    )
    if len(ranked) < 2:
        return ("", "")
    return (ranked[1]["venue"], ranked[0].get("saving_pct", ""))


_STORED: dict[Decimal, Decimal] = {}


def q(value: Decimal) -> Decimal:
    """Money as stored (18 decimals), so events and rows agree to the last digit. Equal
    amounts give the same object: a fan-out's ten thousand fills at one price are quantized
    once, and the bulk write binds that object once (storage/types.py remembers by identity)."""
    stored = _STORED.get(value)
    if stored is None:
        if len(_STORED) >= 4096:
            _STORED.clear()
        stored = _STORED[value] = quantize(value)
    return stored


async def record(
    session: AsyncSession,
    outcomes: Sequence[Outcome],
    now: datetime,
    held_here: bool = False,
    written: bool = False,
) -> Recorded:
    """Record what the venues answered, once: each order leaves `pending` by one guarded
    update, and only the recorder that moved it goes on to positions, PnL and alerts. A second
    recorder of the same outcome (a replica that took over a lapsed claim, a retry) is a
    no-op. `held_here`: every order was written, or claimed under lock, in this very
    transaction (engine/immediate.py): no other recorder can move one before it commits, so
    the update needs no mark read back to know which it moved (all of them). `written`:
    the orders were inserted with their outcome already, by this transaction: no update."""
    done = Recorded()
    if not outcomes:
        return done

    pending = OrderStatus.PENDING
    # unknown outcome: the claim is handed back at once, and the next sweep looks it up
    unknown = {o.order.id for o in outcomes if o.fill is None and o.rejected is None}
    if written:
        outcomes = [o for o in outcomes if o.order.id not in unknown]
        return await _recorded(session, outcomes, now, done)
    await update_by_id(
        session,
        Order,
        [_order_update(o, now) for o in outcomes if o.order.id in unknown],
        only_if_status=pending,
    )
    settled = [o for o in outcomes if o.order.id not in unknown]
    updates = [_order_update(o, now) for o in settled]
    if held_here:
        await update_by_id(session, Order, updates, only_if_status=pending)
        outcomes = settled
    else:
        moved = set(await settle_rows(session, Order, updates, pending, "settled_by"))
        outcomes = [o for o in settled if o.order.id in moved]
    return await _recorded(session, outcomes, now, done)


async def _recorded(
    session: AsyncSession, outcomes: Sequence[Outcome], now: datetime, done: Recorded
) -> Recorded:
    """What the orders that left `pending` (`outcomes`) make: positions, refusals."""
    if not outcomes:
        return done
    info = await _signal_info(session, {o.order.signal_id for o in outcomes})
    deployment_ids = {o.order.deployment_id for o in outcomes}
    of_these = among(session, Deployment.id, deployment_ids)
    users: dict[int, int] = dict(
        (await session.execute(select(Deployment.id, Deployment.user_id).where(of_these))).all()
    )
    for o in outcomes:
        if o.rejected is not None:
            od = o.order
            if od.purpose == OrderPurpose.CLOSE:
                done.refused_closes.append(
                    (od.signal_id, od.deployment_id, od.close_reason or "manual")
                )
            done.events.append(
                OrderFailed(
                    users[od.deployment_id],
                    od.id,
                    info[od.signal_id].agent_name,
                    od.market,
                    od.side,
                    od.purpose,
                    o.rejected,
                )
            )
    opens = [o for o in outcomes if o.fill and o.order.purpose == OrderPurpose.OPEN]
    closes = [o for o in outcomes if o.fill and o.order.purpose == OrderPurpose.CLOSE]
    if opens:
        await _open_positions(session, opens, info, users, now, done)
    if closes:
        await record_closes(session, closes, info, users, now, done)
    return done


def _order_update(o: Outcome, now: datetime) -> dict[str, Any]:
    if o.fill is not None:
        f = o.fill
        return {
            "id": o.order.id,
            "status": OrderStatus.FILLED,
            "lease_until": None,
            "fill_price": q(f.price),
            "filled_size": f.size,
            "fee": q(f.fee),
            "venue_order_id": f.venue_order_id,
            "error": None,
            "updated_at": now,
        }
    if o.rejected is not None:
        return {
            "id": o.order.id,
            "status": OrderStatus.REJECTED,
            "lease_until": None,
            "error": o.rejected,
            "updated_at": now,
        }
    # a transient error: the order stays pending and is looked up by the next sweep
    return {"id": o.order.id, "error": o.error, "lease_until": now, "updated_at": now}


def _optional(value: Decimal | None) -> Decimal | None:
    return None if value is None else q(value)


@dataclass(frozen=True, slots=True)
class _SharedOpen:
    """What every follower of a signal opening at one entry shares."""

    info: SignalInfo
    levels: RiskLevels
    stop: Decimal
    take_profit: Decimal | None
    activation: Decimal | None
    used: str  # which levels came from the call, as the alert says it
    refused: str
    call_entry: Decimal | None
    call_entry_to: Decimal | None

    @classmethod
    def of(cls, side: str, entry: Decimal, info: SignalInfo) -> _SharedOpen:
        decided = initial_levels(side, entry, info.params, info.call)
        lv = decided.levels
        # the entry the call stated, when the levels were set from it
        call = info.call if "entry" in decided.used else None
        return cls(
            info,
            lv,
            q(lv.stop),
            _optional(lv.take_profit),
            _optional(lv.activation),
            ",".join(decided.used),
            ",".join(decided.refused),
            _optional(call.entry) if call is not None else None,
            _optional(call.entry_to) if call is not None else None,
        )


async def _open_positions(
    session: AsyncSession,
    opens: list[Outcome],
    info: dict[int, SignalInfo],
    users: dict[int, int],
    now: datetime,
    done: Recorded,
) -> None:
    rows, shared_of_rows = [], []
    # a fan-out fills thousands of orders at one price: what the followers of a signal
    # share at one entry (levels, their stored values, the alert's parts) is worked out once
    memo: dict[tuple[str, Decimal, int], _SharedOpen] = {}
    for o in opens:
        od, f = o.order, o.fill
        assert f is not None
        entry = q(f.price)
        key = (od.side, entry, od.signal_id)
        shared = memo.get(key)
        if shared is None:
            shared = memo[key] = _SharedOpen.of(od.side, entry, info[od.signal_id])
        shared_of_rows.append(shared)
        rows.append(
            {
                "deployment_id": od.deployment_id,
                "signal_id": od.signal_id,
                "open_order_id": od.id,
                "venue": od.venue,
                "account": od.account,
                "market": od.market,
                "side": od.side,
                "size": f.size,
                "leverage": od.leverage,
                "entry_price": entry,
                "open_fee": q(f.fee),
                "stop_price": shared.stop,
                "take_profit_price": shared.take_profit,
                "trailing_activation_price": shared.activation,
                "trailing_distance_pct": shared.levels.distance,
                "trailing_active": False,
                "peak_price": entry,
                "status": PositionStatus.OPEN,
                "opened_at": now,
                "created_at": now,
            }
        )
    # the open order moved to filled in this transaction, so no other recorder writes these
    # positions; the unique keys would turn a second writer into a no-op all the same
    ids = await insert_ignore(session, Position, rows, returning="open_order_id") or {}
    unseen = [r["open_order_id"] for r in rows if r["open_order_id"] not in ids]
    if unseen:  # not returned by the INSERT (a small write), or written before
        found = select(Position.open_order_id, Position.id).where(
            Position.open_order_id.in_(unseen)
        )
        ids.update((await session.execute(found)).all())
    collateral: dict[tuple[Decimal, Decimal, Decimal], Decimal] = {}
    for r, shared in zip(rows, shared_of_rows, strict=True):
        pid = ids[r["open_order_id"]]
        size, entry, leverage = r["size"], r["entry_price"], r["leverage"]
        terms = (size, entry, leverage)
        posted = collateral.get(terms)
        if posted is None:
            posted = collateral[terms] = (size * entry / leverage).quantize(Decimal("0.01"))
        done.opened.append((pid, r["market"], shared.levels))
        done.events.append(
            PositionOpened(
                users[r["deployment_id"]],
                pid,
                shared.info.agent_name,
                r["venue"],
                r["market"],
                r["side"],
                size,
                entry,
                leverage,
                posted,
                r["stop_price"],
                r["take_profit_price"],
                shared.info.rationale,
                *shared.info.route,
                shared.call_entry,
                shared.used,
                shared.refused,
                mode_of(r["account"]),
                shared.call_entry_to,
            )
        )
