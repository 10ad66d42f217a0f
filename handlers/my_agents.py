"""/myagents: a creator's own agents, each with Edit (its risk settings and share), Pause /
Resume (no new calls are traded while paused) and Retire (confirmed: hidden from the
marketplace for good, followers' deployments stopped, open positions keep their stops)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from handlers import callbacks, inputs, wizard
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.create import (
    _activation,
    _distance,
    _leverage,
    _leverages,
    _risk_fields,
    _share,
    _shares,
    _stop,
    _take_profit,
    check_stop,
    share_fraction,
)
from handlers.create_risk import check_risk, risk_warnings
from handlers.format import pct
from storage.enums import DeploymentStatus
from storage.models import Agent, Deployment

ACTIVE, PAUSED, RETIRED = "active", "paused", "retired"


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


async def _mine(ctx: Ctx, agent_id: int) -> Agent | None:
    async with ctx.services.sessions() as s:
        agent = await s.get(Agent, agent_id)
    if agent is None or agent.creator_user_id != ctx.user_id or agent.status == RETIRED:
        return None
    return agent


def _card(ctx: Ctx, agent: Agent) -> Reply:
    data = _data_of(agent)
    fields = _risk_fields(ctx, data)
    text = ctx.t(
        "myagents.card",
        name=agent.name,
        status=ctx.t(f"agent_status.{agent.status}"),
        leverage=fields["leverage"],
        stop=fields["stop"],
        trail=fields["trail"],
        tp=fields["tp"],
        share=pct(agent.creator_share_pct),
    )
    toggle = (
        Button(ctx.t("deployments.pause"), callbacks.make("map", agent.id))
        if agent.status == ACTIVE
        else Button(ctx.t("deployments.resume"), callbacks.make("mar", agent.id))
    )
    edit = Button(ctx.t("myagents.edit"), callbacks.make("mae", agent.id))
    retire = Button(ctx.t("myagents.retire"), callbacks.make("mat", agent.id))
    return Reply(text, [[edit, toggle, retire]])


async def my_agents(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s:
        agents = (
            (
                await s.execute(
                    select(Agent)
                    .where(Agent.creator_user_id == ctx.user_id, Agent.status != RETIRED)
                    .order_by(Agent.id)
                )
            )
            .scalars()
            .all()
        )
    if not agents:
        return Response([Reply(ctx.t("myagents.none"))])
    return Response([_card(ctx, a) for a in agents])


async def _set_status(ctx: Ctx, cb: callbacks.Callback, frm: str, to: str) -> Response:
    agent = await _mine(ctx, cb.int_arg())
    if agent is None:
        return ctx.not_yours()
    async with ctx.services.sessions() as s, s.begin():
        await s.execute(
            update(Agent).where(Agent.id == agent.id, Agent.status == frm).values(status=to)
        )
        agent = await s.get_one(Agent, agent.id)
    reply = _card(ctx, agent)
    reply.edit = True
    return Response([reply], notice=ctx.t(f"agent_status.{agent.status}"))


async def pause_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _set_status(ctx, cb, ACTIVE, PAUSED)


async def resume_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _set_status(ctx, cb, PAUSED, ACTIVE)


async def retire_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    agent = await _mine(ctx, cb.int_arg())
    if agent is None:
        return ctx.not_yours()
    yes = Button(ctx.t("myagents.retire_yes"), callbacks.make("maty", agent.id))
    no = Button(ctx.t("deployments.stop_no"), callbacks.make("mak", agent.id))
    return Response([Reply(ctx.t("myagents.retire_ask", name=agent.name), [[yes, no]], edit=True)])


async def keep_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    agent = await _mine(ctx, cb.int_arg())
    if agent is None:
        return ctx.not_yours()
    reply = _card(ctx, agent)
    reply.edit = True
    return Response([reply])


async def retire_confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    agent = await _mine(ctx, cb.int_arg())
    if agent is None:
        return ctx.not_yours()
    async with ctx.services.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.id == agent.id).values(status=RETIRED))
        stopped = await s.execute(
            update(Deployment)
            .where(Deployment.agent_id == agent.id, Deployment.status != DeploymentStatus.STOPPED)
            .values(status=DeploymentStatus.STOPPED)
        )
    count = stopped.rowcount  # type: ignore[attr-defined]
    text = ctx.t("myagents.retired", name=agent.name, count=count)
    return Response([Reply(text, edit=True)], notice=ctx.t("agent_status.retired"))


# -- Edit: the risk settings and the share, each asked again with the current value ----------


def _data_of(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "name": agent.name,
        "sources": [],
        "venue": agent.venue,
        "collateral": _plain(agent.default_collateral_usd) or "100",
        "leverage": _plain(agent.leverage),
        "stop_loss": _plain(agent.stop_loss_pct),
        "trail_activation": _plain(agent.trailing_activation_pct),
        "trail_distance": _plain(agent.trailing_distance_pct),
        "take_profit": _plain(agent.take_profit_pct),
        "position_policy": agent.position_policy,
        "creator_share": _plain(agent.creator_share_pct * 100),
        "limit_ttl": str(agent.limit_ttl_hours),
    }


async def _summary(ctx: Ctx, data: dict[str, Any]) -> str:
    fields = _risk_fields(ctx, data)
    text = ctx.t(
        "myagents.edit_summary",
        name=data["name"],
        leverage=fields["leverage"],
        stop=fields["stop"],
        trail=fields["trail"],
        tp=fields["tp"],
        share=pct(share_fraction(data)),
        limit_ttl=data["limit_ttl"],
    )
    for warning in risk_warnings(ctx, data):
        text += "\n⚠️ " + warning
    return text


async def _finish(ctx: Ctx, data: dict[str, Any]) -> Response:
    check_stop(ctx, data["venue"], Decimal(data["leverage"]), Decimal(data["stop_loss"]))
    trailing = bool(data.get("trail_activation") and data.get("trail_distance"))
    check_risk(data if trailing else {**data, "trail_activation": None})
    async with ctx.services.sessions() as s, s.begin():
        agent = await s.get(Agent, int(data["agent_id"]))
        if agent is None or agent.creator_user_id != ctx.user_id or agent.status == RETIRED:
            raise UserError("agents.not_found", name=data["name"])
        agent.leverage = Decimal(data["leverage"])
        agent.stop_loss_pct = Decimal(data["stop_loss"])
        agent.take_profit_pct = Decimal(data["take_profit"]) if data.get("take_profit") else None
        agent.trailing_activation_pct = Decimal(data["trail_activation"]) if trailing else None
        agent.trailing_distance_pct = Decimal(data["trail_distance"]) if trailing else None
        agent.creator_share_pct = share_fraction(data)
        agent.limit_ttl_hours = int(data["limit_ttl"])
    return Response([Reply(ctx.t("myagents.saved", name=data["name"]), edit=True)])


async def _limit_ttl(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    """How long a call's limit entry may rest at the venue (engine/limit_orders.py)."""
    return inputs.hours(text, 1, 168)


def _limit_ttls(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{h} h", str(h)) for h in (4, 12, 24, 72)]


EDIT = wizard.register(
    wizard.Flow(
        "edit_agent",
        [
            wizard.Step("leverage", "myagents.ask_leverage", _leverage, _leverages),
            wizard.Step("stop_loss", "create.ask_stop", _stop),
            wizard.Step(
                "trail_activation", "create.ask_trail_activation", _activation, optional=True
            ),
            wizard.Step(
                "trail_distance",
                "create.ask_trail_distance",
                _distance,
                when=lambda d: bool(d.get("trail_activation")),
            ),
            wizard.Step("take_profit", "create.ask_take_profit", _take_profit, optional=True),
            wizard.Step("creator_share", "create.ask_creator_share", _share, _shares),
            wizard.Step("limit_ttl", "myagents.ask_limit_ttl", _limit_ttl, _limit_ttls),
        ],
        _summary,
        _finish,
        confirm_label="myagents.save",
    )
)


async def edit_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    agent = await _mine(ctx, cb.int_arg())
    if agent is None:
        return ctx.not_yours()
    return await wizard.start(ctx, EDIT, _data_of(agent))
