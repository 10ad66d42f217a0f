"""Confirm / Skip on a manual-approval alert. Only the deployment's owner decides; a press
after the window closed gets "expired"."""

from __future__ import annotations

from handlers import callbacks
from handlers.alerts import reason_text
from handlers.base import Reply, Response
from handlers.context import Ctx


async def _decide(ctx: Ctx, cb: callbacks.Callback, approve: bool) -> Response:
    outcome = await ctx.services.engine.decide_approval(
        cb.int_arg(), ctx.user_id, approve, ctx.request.platform
    )
    v = outcome.verdict
    if v in ("not_yours", "not_found"):
        return ctx.not_yours()
    if v == "expired":
        return Response(
            [Reply(ctx.t("approval.expired"), edit=True)], notice=ctx.t("approval.expired")
        )
    if v == "decided":
        return Response(notice=ctx.t("approval.already"))
    if v == "skipped":
        return Response([Reply(ctx.t("approval.skipped"), edit=True)])
    if outcome.status == "filled":
        return Response([Reply(ctx.t("approval.confirmed"), edit=True)])
    if outcome.status == "rejected":
        reason = reason_text(ctx.language, outcome.error or "rejected")
        return Response([Reply(ctx.t("approval.rejected", reason=reason), edit=True)])
    return Response([Reply(ctx.t("approval.sending"), edit=True)])


async def confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _decide(ctx, cb, approve=True)


async def skip_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _decide(ctx, cb, approve=False)
