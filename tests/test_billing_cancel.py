"""A subscriber cancels from /billing (at the end of the period paid, through the real
`stripe` client and the local Stripe): it keeps trading until then, Stripe's
customer.subscription.deleted at the period's end pauses the deployment and says so; Manage
billing opens Stripe's billing portal; nobody else's press cancels anything."""

from __future__ import annotations

from tests.chat_helpers import text_of
from tests.test_billing_stripe import (
    Shop,
    alerts,
    deployment,
    paid_subscription,
    shop,  # noqa: F401 - the fixture
    subscription,
)


def labels(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for r in response.replies for row in r.buttons for b in row]


async def test_cancel_runs_to_period_end_then_pauses_and_tells(shop: Shop) -> None:  # noqa: F811
    sub = await paid_subscription(shop)
    billing = await shop.bob.say("/billing")
    assert labels(billing) == ["Cancel Hawk", "Manage billing"]

    ask = await shop.bob.choose(billing.replies[0], "Cancel Hawk")
    assert "Cancel your subscription to Hawk?" in text_of(ask) and ask.replies[0].edit
    done = await shop.bob.choose(ask.replies[0], "Yes, cancel")
    until = sub.current_period_end.date().isoformat()
    assert f"it trades until {until}, then pauses" in text_of(done)
    method, path, params = shop.stripe.requests[-1]
    assert (method, path) == ("POST", f"/v1/subscriptions/{sub.provider_subscription_id}")
    assert params == {"cancel_at_period_end": "true"}  # form-encoded, as the client sends it

    # Stripe's customer.subscription.updated: still active, still trading, ending
    [updated] = shop.stripe.take_outbox()
    assert updated["data"]["previous_attributes"]["cancel_at_period_end"] is False
    assert await shop.stripe.deliver([updated]) == [200]
    sub = await subscription(shop)
    assert (sub.status, sub.cancel_at_period_end) == ("active", True)
    assert (await deployment(shop)).status == "active"
    again = await shop.bob.say("/billing")
    assert f"Hawk: canceled, runs until {until}" in text_of(again)
    assert labels(again) == ["Manage billing"]  # nothing left to cancel

    # the period ends: Stripe deletes it; the deployment pauses and Bob is told
    assert await shop.stripe.deliver(shop.stripe.end_period(sub.provider_subscription_id)) == [200]
    assert (await subscription(shop)).status == "canceled"
    assert (await deployment(shop)).status == "unpaid"
    lapsed = await alerts(shop, "subscription_lapsed")
    assert len(lapsed) == 1 and "subscription to Hawk is canceled" in lapsed[0]


async def test_manage_billing_opens_the_portal(shop: Shop) -> None:  # noqa: F811
    sub = await paid_subscription(shop)
    portal = await shop.bob.choose((await shop.bob.say("/billing")).replies[0], "Manage billing")
    [[link]] = portal.replies[0].buttons
    assert link.label == "Open billing portal"
    assert link.url is not None and link.url.startswith(f"{shop.stripe.url}/p/session/bps_")
    method, path, params = shop.stripe.requests[-1]
    assert (method, path) == ("POST", "/v1/billing_portal/sessions")
    assert params["customer"] == sub.provider_customer_id
    assert params["return_url"] == "https://maxxit.example/billing/done"
    # someone who never paid has no portal
    nobody = await shop.ann.press("bm")
    assert nobody.notice and "No billing account yet" in nobody.notice and not nobody.replies


async def test_a_strangers_cancel_press_is_refused(shop: Shop) -> None:  # noqa: F811
    sub = await paid_subscription(shop)
    eve = shop.world.person("Eve", 3)
    await eve.say("/start")
    asked = len(shop.stripe.requests)
    for data in (f"bc:{sub.id}", f"bcy:{sub.id}", f"bcn:{sub.id}", "bc:999999"):
        r = await eve.press(data)
        assert r.refused and "not yours" in (r.notice or "") and not r.replies
    assert len(shop.stripe.requests) == asked  # Stripe never asked
    sub = await subscription(shop)
    assert (sub.status, sub.cancel_at_period_end) == ("active", False)
    assert (await deployment(shop)).status == "active"
