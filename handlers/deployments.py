"""/deployments: each of the user's deployments with the leverage its orders use, and Pause /
Resume / Stop (confirmed)."""

from __future__ import annotations

from sqlalchemy import select, update

from handlers import audit, callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.deploy_terms import leverage_text
from handlers.format import money
from storage.enums import DeploymentStatus
from storage.models import Agent, Deployment


def _buttons(ctx: Ctx, dep_id: int, status: str) -> list[Button]:
    if status == DeploymentStatus.STOPPED:
        return []
    if status == DeploymentStatus.UNPAID:  # only a payment resumes it (/deploy: the link)
        return [Button(ctx.t("deployments.stop"), callbacks.make("dps", dep_id))]
    toggle = (
        Button(ctx.t("deployments.pause"), callbacks.make("dpp", dep_id))
        if status == DeploymentStatus.ACTIVE
        else Button(ctx.t("deployments.resume"), callbacks.make("dpr", dep_id))
    )
    return [toggle, Button(ctx.t("deployments.stop"), callbacks.make("dps", dep_id))]


async def _line(ctx: Ctx, dep: Deployment, agent_name: str) -> str:
    async with ctx.services.sessions() as s:
        agent_leverage = (
            await s.execute(select(Agent.leverage).where(Agent.id == dep.agent_id))
        ).scalar()
    return ctx.t(
        "deployments.line",
        id=dep.id,
        agent=agent_name,
        status=ctx.t(f"status.{dep.status}"),
        mode=ctx.t(f"mode.{dep.mode}"),
        collateral=money(dep.collateral_usd),
        leverage=leverage_text(ctx, agent_name, dep.leverage, agent_leverage, dep.max_leverage),
        approval=ctx.t("deploy.approval_on" if dep.manual_approval else "deploy.approval_off"),
    )


async def list_deployments(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s:
        rows = (
            await s.execute(
                select(Deployment, Agent.name)
                .join(Agent, Agent.id == Deployment.agent_id)
                .where(
                    Deployment.user_id == ctx.user_id,
                    Deployment.status != DeploymentStatus.STOPPED,
                )
                .order_by(Deployment.id)
            )
        ).all()
    if not rows:
        return Response([Reply(ctx.t("deployments.none"))])
    replies = [Reply(ctx.t("deployments.header", count=len(rows)))]
    for dep, name in rows[:20]:
        replies.append(Reply(await _line(ctx, dep, name), [_buttons(ctx, dep.id, dep.status)]))
    return Response(replies)


async def _own(ctx: Ctx, dep_id: int) -> tuple[Deployment, str] | None:
    async with ctx.services.sessions() as s:
        row = (
            await s.execute(
                select(Deployment, Agent.name)
                .join(Agent, Agent.id == Deployment.agent_id)
                .where(Deployment.id == dep_id)
            )
        ).one_or_none()
    if row is None or row[0].user_id != ctx.user_id:
        return None
    return row[0], row[1]


async def _set_status(ctx: Ctx, cb: callbacks.Callback, frm: set[str], to: str) -> Response:
    owned = await _own(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    dep, name = owned
    if dep.status not in frm:
        return Response(notice=ctx.t("deployments.unchanged", status=ctx.t(f"status.{dep.status}")))
    async with ctx.services.sessions() as s, s.begin():
        changed = await s.execute(
            update(Deployment)
            .where(Deployment.id == dep.id, Deployment.status.in_(frm))
            .values(status=to)
        )
        if changed.rowcount:  # type: ignore[attr-defined]
            await audit.record(
                s, ctx, _STATUS_ACTION[to], f"deployment:{dep.id}", agent=name,
                before=dep.status, after=to,
            )  # fmt: skip
        dep = await s.get_one(Deployment, dep.id)
    text = await _line(ctx, dep, name)
    if to == DeploymentStatus.STOPPED:
        text += "\n" + ctx.t("deployments.stopped_note")
    return Response(
        [Reply(text, [_buttons(ctx, dep.id, dep.status)], edit=True)],
        notice=ctx.t(f"status.{to}"),
    )


_STATUS_ACTION = {
    DeploymentStatus.PAUSED: "pause",
    DeploymentStatus.ACTIVE: "resume",
    DeploymentStatus.STOPPED: "stop",
}


async def pause_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _set_status(ctx, cb, {DeploymentStatus.ACTIVE}, DeploymentStatus.PAUSED)


async def resume_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _set_status(ctx, cb, {DeploymentStatus.PAUSED}, DeploymentStatus.ACTIVE)


async def stop_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    owned = await _own(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    dep, name = owned
    yes = Button(ctx.t("deployments.stop_yes"), callbacks.make("dpx", dep.id))
    no = Button(ctx.t("deployments.stop_no"), callbacks.make("dpk", dep.id))
    return Response(
        [Reply(ctx.t("deployments.stop_ask", agent=name, id=dep.id), [[yes, no]], edit=True)]
    )


async def stop_confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    stoppable = {DeploymentStatus.ACTIVE, DeploymentStatus.PAUSED, DeploymentStatus.UNPAID}
    return await _set_status(ctx, cb, stoppable, DeploymentStatus.STOPPED)


async def stop_keep_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    owned = await _own(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    dep, name = owned
    return Response(
        [Reply(await _line(ctx, dep, name), [_buttons(ctx, dep.id, dep.status)], edit=True)]
    )
