"""Paid agents: a Checkout link to subscribe, and Stripe's webhook events turning the
subscription (and the user's deployment of the agent) on and off.

- Each event acts once: its id goes into `processed_events` in the transaction that applies
  it; a second delivery (Stripe retries for days and sends duplicates) changes nothing.
- Out of order: a subscription event's snapshot is applied only if it is newer (Stripe's
  `created`) than the state already applied; events that do not carry the subscription
  (Checkout completed, invoice paid or failed) read it back from Stripe, which is the newest
  truth, so a late `invoice.paid` cannot revive a subscription canceled since.
- Paid (active, trialing): the user's unpaid deployment of the agent becomes active. Lapsed
  (past_due after a failed renewal, unpaid, canceled): active or paused deployments of the
  agent become `unpaid` (no trades; the user's Resume cannot undo it) and the user is told.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.billing_events import SubscriptionActive, SubscriptionLapsed
from engine.events import Event
from engine.notify import write_outbox
from engine.stripe_gateway import StripeGateway, usd
from storage.bulk import insert_ignore
from storage.enums import DeploymentStatus
from storage.models import (
    Agent,
    AgentPrice,
    Deployment,
    ProcessedEvent,
    Subscription,
    SubscriptionPayment,
)
from storage.types import utcnow

log = logging.getLogger(__name__)

PROVIDER = "stripe"
TOLERANCE_SECONDS = 300  # Stripe's own default: a signature older than 5 minutes is refused
PAID = frozenset({"active", "trialing"})
LAPSED = frozenset({"past_due", "unpaid", "canceled", "incomplete_expired", "paused"})
HANDLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)


async def monthly_price(session: AsyncSession, agent_id: int) -> Decimal | None:
    """What following the agent costs a month; None when it is free."""
    price = await session.get(AgentPrice, agent_id)
    return price.monthly_usd if price is not None and price.monthly_usd > 0 else None


async def is_paid(session: AsyncSession, user_id: int, agent_id: int) -> bool:
    found = await session.execute(
        select(Subscription.id).where(
            Subscription.user_id == user_id,
            Subscription.agent_id == agent_id,
            Subscription.status.in_(PAID),
        )
    )
    return found.first() is not None


async def set_price(session: AsyncSession, agent_id: int, monthly_usd: Decimal) -> None:
    """The creator's price (0: free). Stripe's Price is made when someone first pays it."""
    row = await session.get(AgentPrice, agent_id)
    if row is None:
        session.add(AgentPrice(agent_id=agent_id, monthly_usd=monthly_usd))
    else:
        row.monthly_usd = monthly_usd


def _period_end(sub: dict[str, Any]) -> datetime | None:
    # since 2025 Stripe keeps the period on the subscription's items
    items = (sub.get("items") or {}).get("data") or []
    end = sub.get("current_period_end") or (items[0].get("current_period_end") if items else None)
    return datetime.fromtimestamp(int(end), UTC) if end else None


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription") or invoice.get("subscription")


class Subscriptions:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: StripeGateway,
        webhook_secret: str,
        public_url: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.gateway = gateway
        self.webhook_secret = webhook_secret
        self.public_url = public_url.rstrip("/")
        self.clock = clock

    # -- subscribing ------------------------------------------------------------------------

    async def checkout_url(self, user_id: int, agent_id: int) -> str:
        """A Stripe Checkout page where the user subscribes to the agent."""
        async with self.sessions() as s:
            agent = await s.get_one(Agent, agent_id)
            price = await s.get_one(AgentPrice, agent_id)
            customer = (
                await s.execute(
                    select(Subscription.provider_customer_id)
                    .where(
                        Subscription.user_id == user_id,
                        Subscription.provider_customer_id.is_not(None),
                    )
                    .limit(1)
                )
            ).scalar()
        if price.stripe_price_id is None or price.stripe_price_usd != price.monthly_usd:
            product, price_id = await self.gateway.monthly_price(
                agent_id, agent.name, price.stripe_product_id, price.monthly_usd
            )
            async with self.sessions() as s, s.begin():
                await s.execute(
                    update(AgentPrice)
                    .where(AgentPrice.agent_id == agent_id)
                    .values(
                        stripe_product_id=product,
                        stripe_price_id=price_id,
                        stripe_price_usd=price.monthly_usd,
                    )
                )
        else:
            price_id = price.stripe_price_id
        customer = customer or await self.gateway.customer(user_id)
        async with self.sessions() as s, s.begin():
            row = Subscription(
                user_id=user_id,
                agent_id=agent_id,
                plan=price_id,
                status="pending",
                provider_customer_id=customer,
                state_at=0,
            )
            s.add(row)
            await s.flush()
            row_id = row.id
        link = await self.gateway.checkout(
            price_id=price_id,
            customer_id=customer,
            subscription_row=row_id,
            user_id=user_id,
            agent_id=agent_id,
            success_url=f"{self.public_url}/billing/done",
            cancel_url=f"{self.public_url}/billing/cancelled",
        )
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(Subscription)
                .where(Subscription.id == row_id)
                .values(checkout_session_id=link.session_id)
            )
        return link.url

    # -- webhook events -----------------------------------------------------------------------

    def verify(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """The event, if Stripe signed exactly these bytes within the last 5 minutes; raises
        stripe.SignatureVerificationError (or ValueError for a body that is not an event)."""
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature_header, self.webhook_secret, TOLERANCE_SECONDS
        )
        event = json.loads(payload)
        if not isinstance(event, dict) or event.get("object") != "event" or "id" not in event:
            raise ValueError("not a Stripe event")
        return event

    async def handle(self, event: dict[str, Any]) -> str:
        """Apply one verified event: "applied", "duplicate" or "ignored"."""
        event_id, kind = str(event["id"]), str(event.get("type", ""))
        if await self._seen(event_id):
            return "duplicate"
        obj = (event.get("data") or {}).get("object") or {}
        created = int(event.get("created") or 0)
        snapshot: dict[str, Any] | None = None
        fresh = False  # read back from Stripe now, rather than the event's copy
        if kind not in HANDLED:
            pass  # recorded below, so a redelivery is not even looked at
        elif kind.startswith("customer.subscription."):
            snapshot = obj
        elif kind == "checkout.session.completed" and obj.get("subscription"):
            snapshot, fresh = await self.gateway.subscription(str(obj["subscription"])), True
        elif kind.startswith("invoice.") and _invoice_subscription(obj):
            snapshot = await self.gateway.subscription(str(_invoice_subscription(obj)))
            fresh = True
        async with self.sessions() as s, s.begin():
            if not await self._record(s, event_id):
                return "duplicate"
            if snapshot is None:
                return "ignored"
            row = await self._row(s, snapshot, obj)
            if row is None:
                log.warning("stripe event %s (%s) for no subscription of ours", event_id, kind)
                return "ignored"
            as_of = max(created, row.state_at) if fresh else created
            events = await self._apply(s, row, snapshot, as_of)
            if kind == "invoice.paid":
                await self._payment(s, row, obj)
            await write_outbox(s, events)
        return "applied"

    async def _seen(self, event_id: str) -> bool:
        async with self.sessions() as s:
            found = await s.execute(
                select(ProcessedEvent.id).where(
                    ProcessedEvent.provider == PROVIDER, ProcessedEvent.event_id == event_id
                )
            )
            return found.first() is not None

    async def _record(self, s: AsyncSession, event_id: str) -> bool:
        """False when another delivery of this event got there first (the unique key)."""
        try:
            async with s.begin_nested():
                s.add(ProcessedEvent(provider=PROVIDER, event_id=event_id))
                await s.flush()
        except IntegrityError:
            return False
        return True

    async def _row(
        self, s: AsyncSession, sub: dict[str, Any], obj: dict[str, Any]
    ) -> Subscription | None:
        meta = sub.get("metadata") or obj.get("metadata") or {}
        query = select(Subscription).with_for_update()
        if str(meta.get("maxxit_subscription", "")).isdigit():
            query = query.where(Subscription.id == int(meta["maxxit_subscription"]))
        else:
            query = query.where(Subscription.provider_subscription_id == sub.get("id"))
        row = (await s.execute(query)).scalar_one_or_none()
        if row is not None and row.provider_subscription_id not in (None, sub.get("id")):
            return None  # metadata naming a row that belongs to another subscription
        return row

    async def _apply(
        self, s: AsyncSession, row: Subscription, sub: dict[str, Any], as_of: int
    ) -> list[Event]:
        if as_of < row.state_at:
            return []  # older than what we know: a late delivery
        was_paid = row.status in PAID
        row.status = str(sub.get("status", row.status))[:16]
        row.provider_subscription_id = sub.get("id") or row.provider_subscription_id
        row.provider_customer_id = sub.get("customer") or row.provider_customer_id
        row.current_period_end = _period_end(sub) or row.current_period_end
        row.state_at = as_of
        agent = await s.get_one(Agent, row.agent_id)
        if row.status in PAID:
            await self._set_deployments(s, row, {DeploymentStatus.UNPAID}, DeploymentStatus.ACTIVE)
            if was_paid:
                return []
            end = row.current_period_end.date().isoformat() if row.current_period_end else ""
            return [SubscriptionActive(row.user_id, row.id, agent.name, end, as_of)]
        if row.status not in LAPSED:
            return []
        if await self._other_paid(s, row):
            return []
        paused = await self._set_deployments(
            s, row, {DeploymentStatus.ACTIVE, DeploymentStatus.PAUSED}, DeploymentStatus.UNPAID
        )
        if not was_paid and not paused:
            return []
        return [SubscriptionLapsed(row.user_id, row.id, agent.name, row.status, paused, as_of)]

    async def _other_paid(self, s: AsyncSession, row: Subscription) -> bool:
        found = await s.execute(
            select(Subscription.id).where(
                Subscription.user_id == row.user_id,
                Subscription.agent_id == row.agent_id,
                Subscription.id != row.id,
                Subscription.status.in_(PAID),
            )
        )
        return found.first() is not None

    async def _set_deployments(
        self, s: AsyncSession, row: Subscription, frm: set[DeploymentStatus], to: str
    ) -> int:
        changed = await s.execute(
            update(Deployment)
            .where(
                Deployment.user_id == row.user_id,
                Deployment.agent_id == row.agent_id,
                Deployment.status.in_(frm),
            )
            .values(status=to)
        )
        return int(changed.rowcount)  # type: ignore[attr-defined]

    async def _payment(self, s: AsyncSession, row: Subscription, invoice: dict[str, Any]) -> None:
        paid = int(invoice.get("amount_paid") or 0)
        if paid <= 0 or row.agent_id is None:
            return
        created = int(invoice.get("created") or 0)
        await insert_ignore(
            s,
            SubscriptionPayment,
            [
                {
                    "invoice_id": str(invoice["id"]),
                    "subscription_id": row.id,
                    "user_id": row.user_id,
                    "agent_id": row.agent_id,
                    "amount_usd": usd(paid),
                    "paid_at": datetime.fromtimestamp(created, UTC) if created else self.clock(),
                }
            ],
        )
