"""Stripe events of one subscription processed at the same moment (two replicas, or Stripe's
duplicate deliveries) never leave an older state behind: the state changes by compare-and-set
in the database on the event's `created` and the state order (an ended subscription stays
ended), and a snapshot read back from Stripe is read again when another event overtook it.
Run on PostgreSQL with MAXXIT_TEST_DATABASE_URL (two transactions really at once)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from sqlalchemy import func, select

from storage.models import ProcessedEvent, SubscriptionPayment
from tests import test_billing_stripe as paid
from tests.test_billing_stripe import Shop, shop  # noqa: F401 - the fixture


async def test_two_copies_of_one_event_at_once_act_once(shop: Shop) -> None:  # noqa: F811
    sub = await paid.paid_subscription(shop)
    subs = shop.world.bot.services.subscriptions
    assert subs is not None
    renewal = shop.stripe.renew(sub.provider_subscription_id)
    for event in renewal:
        outcomes = await asyncio.gather(subs.handle(event), subs.handle(copy.deepcopy(event)))
        assert sorted(outcomes) == ["applied", "duplicate"]
    async with shop.world.sessions() as s:
        assert (
            await s.execute(select(func.count()).select_from(SubscriptionPayment))
        ).scalar() == 2
        assert (await s.execute(select(func.count()).select_from(ProcessedEvent))).scalar() == 5


async def test_an_update_and_a_deletion_of_the_same_second_end_deleted(shop: Shop) -> None:  # noqa: F811
    sub_id = (await paid.paid_subscription(shop)).provider_subscription_id
    subs = shop.world.bot.services.subscriptions
    assert subs is not None
    _, updated = shop.stripe.renew(sub_id)  # active, renewed
    [deleted] = shop.stripe.cancel(sub_id)
    updated["created"] = deleted["created"]  # Stripe's clock is in seconds: a tie
    for pair in ([updated, deleted], [deleted, updated]):
        results = await asyncio.gather(*(subs.handle(copy.deepcopy(e) | {"id": e["id"] + str(n)})
                                         for n, e in enumerate(pair)))  # fmt: skip
        assert results == ["applied", "applied"]
        assert (await paid.subscription(shop)).status == "canceled"
        assert (await paid.deployment(shop)).status == "unpaid"
    assert len(await paid.alerts(shop, "subscription_lapsed")) == 1


class HeldReadBack:
    """The gateway, but reading a subscription back waits until released: the snapshot it
    returns was taken before whatever happens meanwhile."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.read = asyncio.Event()
        self.release = asyncio.Event()
        self.reads = 0

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        snapshot = await self.gateway.subscription(subscription_id)
        self.reads += 1
        if self.reads == 1:
            self.read.set()
            await self.release.wait()
        return snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)


async def test_a_read_back_overtaken_by_a_cancellation_does_not_revive_it(shop: Shop) -> None:  # noqa: F811
    sub_id = (await paid.paid_subscription(shop)).provider_subscription_id
    subs = shop.world.bot.services.subscriptions
    assert subs is not None
    invoice_paid, _ = shop.stripe.renew(sub_id)  # invoice.paid: read back from Stripe (active)
    held = HeldReadBack(subs.gateway)
    subs.gateway = held
    late = asyncio.create_task(subs.handle(invoice_paid))
    await held.read.wait()  # it holds an "active" snapshot; meanwhile Stripe cancels
    [deleted] = shop.stripe.cancel(sub_id)
    deleted["created"] = invoice_paid["created"]  # even at the very same second
    assert await subs.handle(deleted) == "applied"
    held.release.set()
    assert await late == "applied"
    assert held.reads == 2  # overtaken: read again, and Stripe now says canceled
    assert (await paid.subscription(shop)).status == "canceled"
    assert (await paid.deployment(shop)).status == "unpaid"
