"""Paid agents through the real `stripe` client and a local Stripe (tests/peers/stripe_api.py):
a creator prices an agent, a follower's /deploy sends a Checkout link, Stripe's signed events
turn the deployment on and off, and nothing else moves the money state: forged or stale
signatures, duplicated and late events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.stripe_webhook import routes as stripe_routes
from bot.web import make_app
from engine.stripe_gateway import StripeGateway
from engine.subscriptions import Subscriptions
from handlers.alerts import render
from storage.models import (
    Agent,
    AgentPrice,
    Deployment,
    LedgerEntry,
    OutboxMessage,
    Position,
    ProcessedEvent,
    Subscription,
    SubscriptionPayment,
)
from tests.chat_helpers import Person, World, make_world, text_of
from tests.peers.stripe_api import StripePeer, stripe_peer
from tests.peers.telegram_api import serve_app


@dataclass
class Shop:
    world: World
    stripe: StripePeer
    ann: Person  # the creator
    bob: Person  # a follower


@pytest.fixture
async def shop(sessions) -> AsyncIterator[Shop]:
    world = await make_world(sessions)
    async with stripe_peer() as peer:
        gateway = StripeGateway(peer.api_key, peer.url, retries=0)
        subs = Subscriptions(sessions, gateway, peer.webhook_secret, "https://maxxit.example")
        world.bot.services.subscriptions = subs
        async with serve_app(make_app(extra=stripe_routes(subs))) as root:
            peer.webhook_url = f"{root}/stripe/webhook"
            yield Shop(world, peer, world.person("Ann", 1), world.person("Bob", 2))


async def create_paid_agent(who: Person, price: str = "25") -> None:
    await who.say("/create")
    for answer in ("Hawk", "@CryptoHawk", "hyperliquid", "100", "5", "3", "2", "1", "8"):
        await who.say(answer)
    ask_share = await who.say("ignore")
    assert "Your share as the creator" in text_of(ask_share)
    ask_price = await who.say("10")
    assert "Monthly price" in text_of(ask_price)
    summary = await who.say(price)
    assert f"Monthly price: ${price}.00" in text_of(summary)
    done = await who.choose(summary.replies[0], "Create")
    assert "Hawk is live" in text_of(done)


async def deploy(who: Person) -> str:
    """/deploy Hawk through the wizard; the Checkout URL it ends with."""
    r = await who.say("/deploy Hawk")
    r = await who.choose(r.replies[0], "$100")
    r = await who.choose(r.replies[0], "3x")
    r = await who.choose(r.replies[0], "Trade automatically")
    assert "$25.00 a month" in text_of(r)
    r = await who.choose(r.replies[0], "Deploy")
    pay = r.replies[0].buttons[0][0]
    assert "costs $25.00 a month" in text_of(r) and pay.label == "Pay $25.00/month"
    assert pay.url is not None
    return pay.url


async def deployment(shop: Shop) -> Deployment:
    async with shop.world.sessions() as s:
        return (await s.execute(select(Deployment))).scalar_one()


async def alerts(shop: Shop, kind: str) -> list[str]:
    async with shop.world.sessions() as s:
        rows = (
            await s.execute(
                select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
            )
        ).scalars()
        return [render(r.kind, r.payload) for r in rows]


async def subscribe_and_pay(shop: Shop) -> list[dict]:
    url = await deploy(shop.bob)
    session_id = url.rsplit("/", 1)[1]
    events = shop.stripe.complete_checkout(session_id)
    assert await shop.stripe.deliver(events) == [200, 200, 200]
    return events


async def subscription(shop: Shop) -> Subscription:
    async with shop.world.sessions() as s:
        return (await s.execute(select(Subscription))).scalar_one()


async def paid_subscription(shop: Shop) -> Subscription:
    """Ann's paid agent Hawk, Bob subscribed and paid: his subscription row."""
    await create_paid_agent(shop.ann)
    await subscribe_and_pay(shop)
    return await subscription(shop)


async def test_subscribe_then_paid_makes_the_deployment_trade(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    async with shop.world.sessions() as s:
        price = (await s.execute(select(AgentPrice))).scalar_one()
    assert price.monthly_usd == Decimal(25)

    url = await deploy(shop.bob)
    assert url.startswith(shop.stripe.url + "/pay/cs_")
    dep = await deployment(shop)
    assert dep.status == "unpaid"
    # the Checkout Session the real client created: our row travels in its metadata
    params = next(r[2] for r in shop.stripe.requests if r[1] == "/v1/checkout/sessions")
    assert params["mode"] == "subscription" and params["line_items"][0]["quantity"] == "1"
    assert params["subscription_data"]["metadata"]["maxxit_agent"] == str(dep.agent_id)
    assert params["client_reference_id"] == str(dep.user_id)
    created = next(r for r in shop.stripe.requests if r[1] == "/v1/prices")[2]
    assert created["unit_amount"] == "2500" and created["recurring"]["interval"] == "month"

    # not paid yet: a call opens nothing for Bob, and Resume is not offered
    await shop.world.post("@CryptoHawk", "Long $ETH here, breakout", "p1")
    async with shop.world.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(Position))).scalar_one() == 0
    listing = await shop.bob.say("/deployments")
    assert "waiting for payment" in text_of(listing)
    assert [b.label for b in listing.replies[1].buttons[0]] == ["Stop"]
    again = await shop.bob.say("/deploy Hawk")  # the link again, not "already deployed"
    assert again.replies[0].buttons[0][0].url

    session_id = url.rsplit("/", 1)[1]
    assert await shop.stripe.deliver(shop.stripe.complete_checkout(session_id)) == [200] * 3
    dep = await deployment(shop)
    assert dep.status == "active"
    assert [a for a in await alerts(shop, "subscription_active") if "Payment received" in a]
    await shop.world.post("@CryptoHawk", "Long $ETH here, second leg", "p2")
    async with shop.world.sessions() as s:
        pos = (await s.execute(select(Position))).scalar_one()
    assert pos.deployment_id == dep.id

    billing = text_of(await shop.bob.say("/billing"))
    assert "Hawk: subscription active, paid until" in billing
    assert "$25.00 subscriptions" in billing
    async with shop.world.sessions() as s, s.begin():
        creator = (await s.get_one(Agent, dep.agent_id)).creator_user_id
        # a live close's profit share as engine/profit_share.py writes it
        s.add(LedgerEntry(position_id=pos.id, kind="creator_share", payer_user_id=dep.user_id,
                          beneficiary_user_id=creator, beneficiary="creator:Hawk",
                          amount=Decimal("4.5")))  # fmt: skip
    assert "You paid: $4.50 profit share" in text_of(await shop.bob.say("/billing"))
    earned = text_of(await shop.ann.say("/billing"))
    assert "You earned: $4.50 profit share" in earned
    assert "$25.00 subscriptions (1 paying followers)" in earned


async def test_a_failed_renewal_pauses_the_deployment_and_says_so(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    await subscribe_and_pay(shop)
    async with shop.world.sessions() as s:
        sub = (await s.execute(select(Subscription))).scalar_one()
    assert await shop.stripe.deliver(shop.stripe.fail_renewal(sub.provider_subscription_id)) == [
        200,
        200,
    ]
    dep = await deployment(shop)
    assert dep.status == "unpaid"
    lapsed = await alerts(shop, "subscription_lapsed")
    assert len(lapsed) == 1 and "subscription to Hawk is past_due" in lapsed[0]
    assert "deployments paused: 1;" in lapsed[0]
    # the user's own Resume cannot undo it; a payment does
    r = await shop.bob.press(f"dpr:{dep.id}")
    assert (await deployment(shop)).status == "unpaid" and not r.replies
    assert "subscription past_due" in text_of(await shop.bob.say("/billing"))
    assert await shop.stripe.deliver(shop.stripe.renew(sub.provider_subscription_id)) == [200, 200]
    assert (await deployment(shop)).status == "active"
    async with shop.world.sessions() as s:
        payments = (await s.execute(select(func.count()).select_from(SubscriptionPayment))).scalar()
    assert payments == 2


async def test_forged_or_stale_signatures_are_refused_and_change_nothing(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    url = await deploy(shop.bob)
    events = shop.stripe.complete_checkout(url.rsplit("/", 1)[1])
    assert await shop.stripe.deliver(events, secret="whsec_someone_else") == [400] * 3
    assert await shop.stripe.deliver(events, age_seconds=301) == [400] * 3  # > 5 minutes
    assert await shop.stripe.deliver(events, signature="t=1,v1=deadbeef") == [400] * 3
    assert await shop.stripe.deliver(events, signature="") == [400] * 3
    async with shop.world.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(ProcessedEvent))).scalar() == 0
        assert (await s.execute(select(Subscription))).scalar_one().status == "pending"
    assert (await deployment(shop)).status == "unpaid"
    # a signature within the tolerance is fine
    assert await shop.stripe.deliver(events, age_seconds=240) == [200] * 3
    assert (await deployment(shop)).status == "active"


async def test_a_duplicated_event_acts_once(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    events = await subscribe_and_pay(shop)
    assert await shop.stripe.deliver(events + events[::-1]) == [200] * 6
    async with shop.world.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(ProcessedEvent))).scalar() == 3
        payments = (await s.execute(select(SubscriptionPayment))).scalars().all()
    assert [p.amount_usd for p in payments] == [Decimal(25)]
    assert len(await alerts(shop, "subscription_active")) == 1


async def test_events_out_of_order_end_in_the_newest_state(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    url = await deploy(shop.bob)
    completed, created, paid = shop.stripe.complete_checkout(url.rsplit("/", 1)[1])
    # invoice.paid first, the Checkout's completion last: active all the same
    assert await shop.stripe.deliver([paid]) == [200]
    assert (await deployment(shop)).status == "active"
    sub_id = created["data"]["object"]["id"]
    (updated_past_due,) = shop.stripe.fail_renewal(sub_id)[1:]
    (deleted,) = shop.stripe.cancel(sub_id)
    # the cancellation arrives before the older "created" (active) and "past_due" snapshots
    assert await shop.stripe.deliver([deleted, created, updated_past_due, completed]) == [200] * 4
    async with shop.world.sessions() as s:
        sub = (await s.execute(select(Subscription))).scalar_one()
    assert sub.status == "canceled" and sub.state_at >= deleted["created"]
    assert (await deployment(shop)).status == "unpaid"
    lapsed = await alerts(shop, "subscription_lapsed")
    assert len(lapsed) == 1 and "is canceled" in lapsed[0]


async def test_price_is_the_creators_to_set(shop: Shop) -> None:
    await create_paid_agent(shop.ann)
    r = await shop.bob.say("/price Hawk 5")
    assert "Only the creator of Hawk" in text_of(r)
    r = await shop.ann.say("/price Hawk free")
    assert "free to follow" in text_of(r)
    r = await shop.bob.say("/deploy Hawk")
    r = await shop.bob.choose(r.replies[0], "$100")
    r = await shop.bob.choose(r.replies[0], "3x")
    r = await shop.bob.choose(r.replies[0], "Trade automatically")
    r = await shop.bob.choose(r.replies[0], "Deploy")
    assert "is deployed" in text_of(r)
    assert (await deployment(shop)).status == "active"
