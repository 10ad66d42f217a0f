"""Paid agents in chat: the creator's monthly price (/create's price step, /price to change
it), the Checkout link /deploy sends for a priced agent, and /billing: the user's
subscriptions (each with Cancel, and Manage billing: handlers/billing_cancel.py), the profit
share they paid, and what they earned as a creator or source."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from engine import subscriptions
from handlers import callbacks, inputs
from handlers.agents import find_agent
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.format import money
from storage.enums import LedgerKind
from storage.models import Agent, LedgerEntry, Subscription, SubscriptionPayment

MAX_MONTHLY_USD = Decimal(10_000)
SHARE_KINDS = (LedgerKind.CREATOR_SHARE, LedgerKind.SOURCE_SHARE)


def parse_price(text: str) -> str:
    """'25', '$25', 'free' or '0' -> the monthly price in dollars as text ('0': free)."""
    if text.strip().lower() in ("free", "0", "$0"):
        return "0"
    value = inputs.number(text, "billing.bad_price", Decimal(1), MAX_MONTHLY_USD)
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


async def price_step(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    return parse_price(text)


def billing_on(ctx: Ctx) -> bool:
    return ctx.services.subscriptions is not None


async def pay_reply(ctx: Ctx, agent_id: int, agent: str, price: Decimal, dep_id: int) -> Reply:
    """The Checkout link for a priced agent; the deployment trades once Stripe says paid."""
    if ctx.services.subscriptions is None:
        raise UserError("billing.unavailable")
    url = await ctx.services.subscriptions.checkout_url(ctx.user_id, agent_id)
    text = ctx.t("billing.pay_to_start", agent=agent, price=money(price), id=dep_id)
    return Reply(text, [[Button(ctx.t("billing.pay_button", price=money(price)), url=url)]])


async def price(ctx: Ctx, args: str) -> Response:
    """/price <agent> <monthly $ | free>: the agent's creator sets what following it costs."""
    ref, _, amount = args.strip().rpartition(" ")
    if not ref or not amount:
        raise UserError("billing.price_usage")
    if not billing_on(ctx):
        raise UserError("billing.unavailable")
    agent = await find_agent(ctx, ref)
    if agent.creator_user_id != ctx.user_id:
        raise UserError("billing.not_creator", agent=agent.name)
    value = Decimal(parse_price(amount))
    async with ctx.services.sessions() as s, s.begin():
        await subscriptions.set_price(s, agent.id, value)
    if value == 0:
        return Response([Reply(ctx.t("billing.price_free", agent=agent.name))])
    return Response([Reply(ctx.t("billing.price_set", agent=agent.name, price=money(value)))])


async def _sum(s: Any, query: Any) -> Decimal:
    return Decimal((await s.execute(query)).scalar() or 0)


async def billing(ctx: Ctx, _: str = "") -> Response:
    uid = ctx.user_id
    async with ctx.services.sessions() as s:
        subs = (
            await s.execute(
                select(Subscription, Agent.name)
                .join(Agent, Agent.id == Subscription.agent_id)
                .where(Subscription.user_id == uid, Subscription.status != "pending")
                .order_by(Subscription.id)
            )
        ).all()
        paid_share = await _sum(
            s,
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.payer_user_id == uid, LedgerEntry.kind.in_(SHARE_KINDS)
            ),
        )
        paid_fees = await _sum(
            s,
            select(func.sum(SubscriptionPayment.amount_usd)).where(
                SubscriptionPayment.user_id == uid
            ),
        )
        earned_share = await _sum(
            s,
            select(func.sum(LedgerEntry.amount)).where(
                LedgerEntry.beneficiary_user_id == uid, LedgerEntry.kind.in_(SHARE_KINDS)
            ),
        )
        earned_fees = await _sum(
            s,
            select(func.sum(SubscriptionPayment.amount_usd))
            .join(Agent, Agent.id == SubscriptionPayment.agent_id)
            .where(Agent.creator_user_id == uid),
        )
        subscribers = (
            await s.execute(
                select(func.count(func.distinct(Subscription.user_id)))
                .join(Agent, Agent.id == Subscription.agent_id)
                .where(Agent.creator_user_id == uid, Subscription.status.in_(subscriptions.PAID))
            )
        ).scalar_one()
    lines = [ctx.t("billing.header")]
    buttons: list[list[Button]] = []
    if subs:
        for sub, agent in subs:
            until = sub.current_period_end.date().isoformat() if sub.current_period_end else "-"
            status = "active" if sub.status in subscriptions.PAID else "lapsed"
            if status == "active" and sub.cancel_at_period_end:
                status = "canceling"
            elif status == "active" and sub.provider_subscription_id:
                cancel = ctx.t("billing.cancel_button", agent=agent[:24])
                buttons.append([Button(cancel, callbacks.make("bc", sub.id))])
            lines.append(
                ctx.t(f"billing.sub_{status}", agent=agent, status=sub.status, until=until)
            )
        if any(sub.provider_customer_id for sub, _ in subs):
            buttons.append([Button(ctx.t("billing.manage"), callbacks.make("bm"))])
    else:
        lines.append(ctx.t("billing.no_subscriptions"))
    lines.append(ctx.t("billing.paid", share=money(paid_share), fees=money(paid_fees)))
    if earned_share or earned_fees or subscribers:
        lines.append(
            ctx.t(
                "billing.earned",
                share=money(earned_share),
                fees=money(earned_fees),
                subscribers=subscribers,
            )
        )
    return Response([Reply("\n".join(lines), buttons)])
