"""Our calls to Stripe, through the official `stripe` client (async, over httpx): a Product and
a monthly Price per paid agent, a Customer per user, a Checkout Session per subscription,
reading a subscription back, canceling it at its period's end, and billing-portal links.
STRIPE_API_URL points the client elsewhere (tests' stand-in)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe


def cents(usd: Decimal) -> int:
    return int((usd * 100).to_integral_value())


def usd(cents_amount: int | str) -> Decimal:
    return Decimal(int(cents_amount)) / 100


@dataclass(frozen=True, slots=True)
class CheckoutLink:
    session_id: str
    url: str
    customer_id: str


class StripeGateway:
    def __init__(self, api_key: str, api_url: str | None = None, retries: int = 2) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_url.rstrip("/")} if api_url else None,
            http_client=stripe.HTTPXClient(),
            # the client sends an Idempotency-Key with every POST, so a retry never doubles
            max_network_retries=retries,
        )

    async def monthly_price(
        self, agent_id: int, agent_name: str, product_id: str | None, monthly_usd: Decimal
    ) -> tuple[str, str]:
        """(product id, price id) charging `monthly_usd` a month for following the agent."""
        v1 = self.client.v1
        if product_id is None:
            product = await v1.products.create_async(
                params={
                    "name": f"Maxxit agent {agent_name}",
                    "metadata": {"maxxit_agent": str(agent_id)},
                }
            )
            product_id = product.id
        price = await v1.prices.create_async(
            params={
                "product": product_id,
                "currency": "usd",
                "unit_amount": cents(monthly_usd),
                "recurring": {"interval": "month"},
                "metadata": {"maxxit_agent": str(agent_id)},
            }
        )
        return product_id, price.id

    async def customer(self, user_id: int) -> str:
        made = await self.client.v1.customers.create_async(
            params={"metadata": {"maxxit_user": str(user_id)}}
        )
        return made.id

    async def checkout(
        self,
        *,
        price_id: str,
        customer_id: str,
        subscription_row: int,
        user_id: int,
        agent_id: int,
        success_url: str,
        cancel_url: str,
    ) -> CheckoutLink:
        # our row id travels in the metadata of the session and of the subscription, so every
        # event finds its row whatever order the events arrive in
        meta = {
            "maxxit_subscription": str(subscription_row),
            "maxxit_user": str(user_id),
            "maxxit_agent": str(agent_id),
        }
        session = await self.client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(user_id),
                "line_items": [{"price": price_id, "quantity": 1}],
                "metadata": meta,
                "subscription_data": {"metadata": meta},
                "success_url": success_url,
                "cancel_url": cancel_url,
            }
        )
        return CheckoutLink(session.id, str(session.url), customer_id)

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        found = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        return found.to_dict()

    async def cancel_at_period_end(self, subscription_id: str) -> dict[str, Any]:
        """The subscription runs to the end of the period paid, then Stripe ends it (and
        sends customer.subscription.deleted); what Subscription.modify does."""
        found = await self.client.v1.subscriptions.update_async(
            subscription_id, params={"cancel_at_period_end": True}
        )
        return found.to_dict()

    async def portal(self, customer_id: str, return_url: str) -> str:
        """A short-lived link to Stripe's billing portal (card, invoices, cancel)."""
        session = await self.client.v1.billing_portal.sessions.create_async(
            params={"customer": customer_id, "return_url": return_url}
        )
        return str(session.url)
