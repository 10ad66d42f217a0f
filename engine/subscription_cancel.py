"""A subscriber ends their own subscription: canceled at the end of the period paid (Stripe
keeps it active until then, then sends customer.subscription.deleted, which pauses the
deployment as any lapse does), or managed in Stripe's billing portal. Only the subscriber may:
the row's owner is checked here, whatever the button said."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.stripe_gateway import StripeGateway
from engine.subscriptions import PAID, stripe_customer_of
from storage.models import Agent, Subscription


class NotYours(Exception):
    """The subscription is another user's (or does not exist)."""


@dataclass(frozen=True, slots=True)
class Cancellable:
    subscription_id: int
    agent: str
    period_end: datetime | None
    active: bool  # paid now and not already set to end
    provider_id: str | None


async def cancellable(session: AsyncSession, user_id: int, row_id: int) -> Cancellable:
    found = (
        await session.execute(
            select(Subscription, Agent.name)
            .join(Agent, Agent.id == Subscription.agent_id)
            .where(Subscription.id == row_id)
        )
    ).first()
    if found is None or found[0].user_id != user_id:
        raise NotYours
    sub, agent = found
    active = (
        sub.status in PAID and not sub.cancel_at_period_end and bool(sub.provider_subscription_id)
    )
    return Cancellable(sub.id, agent, sub.current_period_end, active, sub.provider_subscription_id)


async def cancel_at_period_end(
    sessions: async_sessionmaker[AsyncSession], gateway: StripeGateway, user_id: int, row_id: int
) -> Cancellable:
    """Ask Stripe to end the user's subscription when its period ends; the row shows it at
    once (Stripe's customer.subscription.updated confirms it later)."""
    async with sessions() as s:
        found = await cancellable(s, user_id, row_id)
    if not found.active or found.provider_id is None:
        return found
    await gateway.cancel_at_period_end(found.provider_id)  # no lock held across this call
    async with sessions() as s, s.begin():
        await s.execute(
            update(Subscription)
            .where(Subscription.id == row_id, Subscription.user_id == user_id)
            .values(cancel_at_period_end=True)
        )
    return found


async def portal_url(
    sessions: async_sessionmaker[AsyncSession],
    gateway: StripeGateway,
    user_id: int,
    return_url: str,
) -> str | None:
    """A billing-portal link for the user's Stripe customer; None before they ever paid."""
    async with sessions() as s:
        customer = await stripe_customer_of(s, user_id, paid_only=True)
    if customer is None:
        return None
    return await gateway.portal(customer, return_url)
