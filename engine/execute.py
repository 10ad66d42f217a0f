"""Execute: one open order per active deployment of the signal's agent, written (pending)
in one statement before any venue is called."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.client_ids import client_order_id
from engine.events import ApprovalRequested, Event, OrderFailed
from engine.markets import MarketInfo
from engine.sizing import SizeDecision, size_order
from storage.bulk import insert_ignore
from storage.enums import DeploymentStatus, OrderPurpose, OrderStatus
from storage.models import Agent, Deployment, Order, Signal, User


@dataclass(frozen=True, slots=True)
class DeploymentTerms:
    id: int
    user_id: int
    account: str
    collateral_usd: Decimal
    leverage: Decimal
    max_leverage: Decimal | None
    manual_approval: bool


def _limit(settings: dict[str, Any], key: str) -> Decimal | None:
    value = (settings or {}).get(key)
    return None if value in (None, "") else Decimal(str(value))


async def active_deployments(session: AsyncSession, agent_id: int) -> list[DeploymentTerms]:
    rows = await session.execute(
        select(
            Deployment.id,
            Deployment.user_id,
            Deployment.account,
            Deployment.collateral_usd,
            Deployment.leverage,
            Deployment.max_leverage,
            Deployment.manual_approval,
            User.settings,
        )
        .join(User, User.id == Deployment.user_id)
        .where(Deployment.agent_id == agent_id, Deployment.status == DeploymentStatus.ACTIVE)
        .order_by(Deployment.id)
    )
    out = []
    for did, uid, account, collateral, lev, dep_max, manual, settings in rows:
        # the user's personal limits (from /settings) cap every deployment they run
        user_max = _limit(settings, "max_leverage")
        caps = [c for c in (dep_max, user_max) if c is not None]
        max_collateral = _limit(settings, "max_collateral_usd")
        if max_collateral is not None:
            collateral = min(collateral, max_collateral)
        out.append(
            DeploymentTerms(did, uid, account, collateral, lev, min(caps) if caps else None, manual)
        )
    return out


async def write_open_orders(
    session: AsyncSession,
    signal: Signal,
    agent: Agent,
    venue: str,
    market: MarketInfo,
    price: Decimal,
    now: datetime,
    approval_ttl: timedelta,
    namespace: str,
) -> list[Event]:
    """Write the signal's open orders; returns alerts for orders that will not be sent now."""
    deployments = await active_deployments(session, agent.id)
    rows, events = [], []
    # thousands of deployments share a few (collateral, leverage, cap) terms: size each once
    sizes: dict[tuple[Decimal, Decimal, Decimal | None], SizeDecision] = {}
    for d in deployments:
        terms = (d.collateral_usd, d.leverage, d.max_leverage)
        sized = sizes.get(terms)
        if sized is None:
            sized = sizes[terms] = size_order(
                d.collateral_usd, price, market, d.leverage, agent.leverage, d.max_leverage
            )
        status = (
            OrderStatus.REJECTED
            if sized.rejected
            else OrderStatus.AWAITING_APPROVAL
            if d.manual_approval
            else OrderStatus.PENDING
        )
        rows.append(
            {
                "signal_id": signal.id,
                "deployment_id": d.id,
                "purpose": OrderPurpose.OPEN,
                "client_order_id": client_order_id(namespace, signal.id, d.id, OrderPurpose.OPEN),
                "venue": venue,
                "account": d.account,
                "market": signal.market,
                "side": signal.side,
                "reduce_only": False,
                "isolated_margin": bool(agent.isolated_margin),
                "max_slippage_bps": agent.max_slippage_bps,
                "size": sized.size,
                "leverage": sized.leverage,
                "collateral_usd": d.collateral_usd,
                "reference_price": price,
                "status": status,
                "error": sized.rejected,
                "expires_at": now + approval_ttl
                if status == OrderStatus.AWAITING_APPROVAL
                else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    await insert_ignore(session, Order, rows)
    if any(r["status"] != OrderStatus.PENDING for r in rows):
        by_dep = {d.id: d for d in deployments}
        held = await session.execute(
            select(
                Order.id,
                Order.deployment_id,
                Order.status,
                Order.error,
                Order.leverage,
                Order.collateral_usd,
            ).where(
                Order.signal_id == signal.id,
                Order.purpose == OrderPurpose.OPEN,
                Order.status.in_([OrderStatus.REJECTED, OrderStatus.AWAITING_APPROVAL]),
            )
        )
        for oid, did, status, error, lev, collateral in held:
            uid = by_dep[did].user_id if did in by_dep else None
            if uid is None:
                continue
            if status == OrderStatus.REJECTED:
                events.append(
                    OrderFailed(
                        uid,
                        oid,
                        agent.name,
                        signal.market,
                        signal.side,
                        OrderPurpose.OPEN,
                        error or "rejected",
                    )
                )
            else:
                events.append(
                    ApprovalRequested(
                        uid, oid, agent.name, signal.market, signal.side, lev, collateral
                    )
                )
    return events
