"""Manual approval: an open order held for the user's Confirm or Skip, and its expiry.

A decision is one conditional UPDATE (status still awaiting and not expired), so a double
press, two processes or a press racing the expiry sweep settle it exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import ApprovalExpired
from engine.notify import write_outbox
from storage.enums import OrderStatus
from storage.models import Agent, Deployment, Order, Signal

Verdict = Literal["go", "skipped", "expired", "not_found", "not_yours", "decided"]


@dataclass(frozen=True, slots=True)
class ApprovalOutcome:
    verdict: Verdict
    status: str | None = None  # the order's status after the decision
    error: str | None = None


async def decide(
    session: AsyncSession, order_id: int, user_id: int, approve: bool, now: datetime
) -> ApprovalOutcome:
    """Record the user's decision. `go` means the order is now pending and must be sent."""
    row = (
        await session.execute(
            select(Order.status, Order.expires_at, Order.error, Deployment.user_id)
            .join(Deployment, Deployment.id == Order.deployment_id)
            .where(Order.id == order_id)
        )
    ).one_or_none()
    if row is None:
        return ApprovalOutcome("not_found")
    status, expires_at, error, owner = row
    if owner != user_id:
        return ApprovalOutcome("not_yours")
    if status == OrderStatus.SKIPPED and error == "approval_expired":
        return ApprovalOutcome("expired", status)  # the sweep got there first
    if status != OrderStatus.AWAITING_APPROVAL:
        return ApprovalOutcome("decided", status)
    if expires_at is not None and expires_at <= now:
        await _expire(session, [order_id], now)
        return ApprovalOutcome("expired", OrderStatus.SKIPPED)
    new_status = OrderStatus.PENDING if approve else OrderStatus.SKIPPED
    done = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == OrderStatus.AWAITING_APPROVAL)
        .values(
            status=new_status,
            error=None if approve else "skipped_by_user",
            # the approval is the user's fresh intent: the stale-order clock restarts here
            created_at=now,
            updated_at=now,
        )
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return ApprovalOutcome("decided")
    return ApprovalOutcome("go" if approve else "skipped", new_status)


async def _expire(session: AsyncSession, order_ids: list[int], now: datetime) -> list[int]:
    rows = (
        await session.execute(
            update(Order)
            .where(Order.id.in_(order_ids), Order.status == OrderStatus.AWAITING_APPROVAL)
            .values(status=OrderStatus.SKIPPED, error="approval_expired", updated_at=now)
            .returning(Order.id)
        )
    ).all()
    expired = [r[0] for r in rows]
    if not expired:
        return []
    info = (
        await session.execute(
            select(Order.id, Deployment.user_id, Agent.name, Order.market, Order.side)
            .join(Deployment, Deployment.id == Order.deployment_id)
            .join(Signal, Signal.id == Order.signal_id)
            .join(Agent, Agent.id == Signal.agent_id)
            .where(Order.id.in_(expired))
        )
    ).all()
    await write_outbox(
        session,
        [ApprovalExpired(uid, oid, agent, market, side) for oid, uid, agent, market, side in info],
    )
    return expired


async def expire_due(session: AsyncSession, now: datetime) -> list[int]:
    """Skip every held order whose approval window has passed; the users are told."""
    due = (
        (
            await session.execute(
                select(Order.id).where(
                    Order.status == OrderStatus.AWAITING_APPROVAL, Order.expires_at <= now
                )
            )
        )
        .scalars()
        .all()
    )
    return await _expire(session, list(due), now) if due else []
