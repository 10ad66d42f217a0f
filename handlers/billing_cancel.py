"""/billing's buttons: Cancel a subscription (asked to confirm; it runs to the end of the
period paid, then the deployment pauses) and Manage billing (a fresh link to Stripe's billing
portal: those links expire within minutes, so one is made when pressed). Only the subscriber
may press them: another user's press changes nothing and is told so."""

from __future__ import annotations

from datetime import datetime

from engine.subscription_cancel import NotYours, cancel_at_period_end, cancellable, portal_url
from engine.subscriptions import Subscriptions
from handlers import callbacks
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx


def _until(period_end: datetime | None) -> str:
    return period_end.date().isoformat() if period_end is not None else "-"


def _subscriptions(ctx: Ctx) -> Subscriptions:
    if ctx.services.subscriptions is None:
        raise UserError("billing.unavailable")
    subs: Subscriptions = ctx.services.subscriptions
    return subs


async def cancel_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    _subscriptions(ctx)
    try:
        async with ctx.services.sessions() as s:
            found = await cancellable(s, ctx.user_id, cb.int_arg())
    except NotYours:
        return ctx.not_yours()
    if not found.active:
        return Response(notice=ctx.t("billing.cancel_not_active", agent=found.agent))
    yes = Button(ctx.t("billing.cancel_yes"), callbacks.make("bcy", found.subscription_id))
    no = Button(ctx.t("billing.cancel_no"), callbacks.make("bcn", found.subscription_id))
    text = ctx.t("billing.cancel_ask", agent=found.agent, until=_until(found.period_end))
    return Response([Reply(text, [[yes, no]], edit=True)])


async def cancel_confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    subs = _subscriptions(ctx)
    try:
        found = await cancel_at_period_end(subs.sessions, subs.gateway, ctx.user_id, cb.int_arg())
    except NotYours:
        return ctx.not_yours()
    if not found.active:
        return Response(notice=ctx.t("billing.cancel_not_active", agent=found.agent))
    text = ctx.t("billing.cancel_done", agent=found.agent, until=_until(found.period_end))
    return Response([Reply(text, edit=True)])


async def cancel_keep_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    try:
        async with ctx.services.sessions() as s:
            found = await cancellable(s, ctx.user_id, cb.int_arg())
    except NotYours:
        return ctx.not_yours()
    return Response([Reply(ctx.t("billing.cancel_kept", agent=found.agent), edit=True)])


async def portal_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    subs = _subscriptions(ctx)
    url = await portal_url(
        subs.sessions, subs.gateway, ctx.user_id, f"{subs.public_url}/billing/done"
    )
    if url is None:
        return Response(notice=ctx.t("billing.portal_none"))
    return Response(
        [Reply(ctx.t("billing.portal_ready"), [[Button(ctx.t("billing.portal_open"), url=url)]])]
    )
