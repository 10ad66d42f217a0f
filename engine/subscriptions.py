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
from sqlalchemy import ColumnElement, and_, or_, select, update
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
ENDED = frozenset({"canceled", "incomplete_expired"})  # final in Stripe: never active again
READ_BACK_ATTEMPTS = 5
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


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """Our ids in an event's object: a Checkout Session's metadata, an invoice's copy of its
    subscription's."""
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    return obj.get("metadata") or details.get("metadata") or {}


def _newer(status: str, as_of: int, stamp: int | None) -> ColumnElement[bool]:
    """The SQL condition under which a snapshot of `status` as of `as_of` may replace the
    row's state. Stripe's `created` is in seconds, so two events can tie: then (and always)
    an ended subscription stays ended (Stripe never revives a canceled one), and an end is
    applied whatever it follows. A read-back (`stamp`) applies only over the state it saw."""
    row = Subscription
    if stamp is not None:
        timely = row.state_at == stamp
    elif status in ENDED:
        timely = or_(row.state_at <= as_of, row.status.not_in(ENDED))
    else:
        timely = row.state_at <= as_of
    if status in ENDED:
        return timely
    return and_(timely, row.status.not_in(ENDED))


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription") or invoice.get("subscription")


async def stripe_customer_of(
    session: AsyncSession, user_id: int, paid_only: bool = False
) -> str | None:
    """The user's Stripe customer (their newest subscription's); `paid_only`: not one whose
    Checkout was never completed."""
    query = select(Subscription.provider_customer_id).where(
        Subscription.user_id == user_id, Subscription.provider_customer_id.is_not(None)
    )
    if paid_only:
        query = query.where(Subscription.status != "pending")
    return (await session.execute(query.order_by(Subscription.id.desc()).limit(1))).scalar()


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
            customer = await stripe_customer_of(s, user_id)
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
        sub_id: str | None = None  # read back from Stripe now, rather than the event's copy
        if kind == "checkout.session.completed" and obj.get("subscription"):
            sub_id = str(obj["subscription"])
        elif kind.startswith("invoice.") and _invoice_subscription(obj):
            sub_id = str(_invoice_subscription(obj))
        for _ in range(READ_BACK_ATTEMPTS):
            stamp, snapshot = None, None
            if kind not in HANDLED:
                pass  # recorded below, so a redelivery is not even looked at
            elif kind.startswith("customer.subscription."):
                snapshot = obj
            elif sub_id is not None:
                stamp = await self._stamp(_metadata(obj), sub_id)
                snapshot = await self.gateway.subscription(sub_id)
            outcome = await self._handle_once(event_id, kind, obj, created, snapshot, stamp)
            if outcome != "moved":
                return outcome
        # another event kept changing the subscription while we read it back: Stripe sends
        # this one again later
        raise RuntimeError(f"stripe event {event_id}: subscription kept changing")

    async def _handle_once(
        self,
        event_id: str,
        kind: str,
        obj: dict[str, Any],
        created: int,
        snapshot: dict[str, Any] | None,
        stamp: int | None,
    ) -> str:
        """One attempt in one transaction; "moved" when a read-back snapshot (taken when the
        row's state was `stamp`) is outrun by another event applied since: read it again."""
        async with self.sessions() as s, s.begin():
            row = await self._row(s, snapshot, obj) if snapshot is not None else None
            if row is not None and stamp is not None and row.state_at != stamp:
                return "moved"  # checked before anything is written in this transaction
            if not await self._record(s, event_id):
                return "duplicate"
            if snapshot is None:
                return "ignored"
            if row is None:
                log.warning("stripe event %s (%s) for no subscription of ours", event_id, kind)
                return "ignored"
            as_of = max(created, row.state_at) if stamp is not None else created
            events = await self._apply(s, row, snapshot, as_of, read_back=stamp is not None)
            if kind == "invoice.paid":
                await self._payment(s, row, obj)
            await write_outbox(s, events)
        return "applied"

    async def _stamp(self, meta: dict[str, Any], sub_id: str) -> int:
        """The state the row holds now (its `state_at`; 0 before any), read before asking
        Stripe, so a change applied meanwhile is noticed (compare-and-set)."""
        async with self.sessions() as s:
            row = await self._find(s, meta, sub_id, lock=False)
            return row.state_at if row is not None else 0

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
        meta = sub.get("metadata") or _metadata(obj)
        return await self._find(s, meta, sub.get("id"), lock=True)

    async def _find(
        self, s: AsyncSession, meta: dict[str, Any], sub_id: str | None, lock: bool
    ) -> Subscription | None:
        query = select(Subscription).execution_options(populate_existing=True)
        if lock:
            query = query.with_for_update()
        if str(meta.get("maxxit_subscription", "")).isdigit():
            query = query.where(Subscription.id == int(meta["maxxit_subscription"]))
        else:
            query = query.where(Subscription.provider_subscription_id == sub_id)
        row = (await s.execute(query)).scalar_one_or_none()
        if row is not None and row.provider_subscription_id not in (None, sub_id):
            return None  # metadata naming a row that belongs to another subscription
        return row

    async def _apply(
        self,
        s: AsyncSession,
        row: Subscription,
        sub: dict[str, Any],
        as_of: int,
        read_back: bool = False,
    ) -> list[Event]:
        was_paid = row.status in PAID
        status = str(sub.get("status", row.status))[:16]
        # compare-and-set in the database, not on the copy read: the row changes only if what
        # it holds is still older than this snapshot (a replica applying another event of
        # this subscription at the same moment cannot be overwritten by an older state)
        guard = _newer(status, as_of, row.state_at if read_back else None)
        changed = await s.execute(
            update(Subscription)
            .where(Subscription.id == row.id, guard)
            .values(
                status=status,
                provider_subscription_id=sub.get("id") or row.provider_subscription_id,
                provider_customer_id=sub.get("customer") or row.provider_customer_id,
                current_period_end=_period_end(sub) or row.current_period_end,
                cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
                state_at=as_of,
            )
            .execution_options(synchronize_session=False)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            return []  # older than what we know: a late or overtaken delivery
        await s.refresh(row)
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
