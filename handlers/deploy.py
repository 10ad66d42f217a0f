"""/deploy (or the Deploy button): run an agent on your own account; /deployments with
Pause / Resume / Stop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine import subscriptions
from handlers import billing, callbacks, inputs, wizard
from handlers.agents import find_agent
from handlers.base import Response, UserError
from handlers.context import Ctx
from handlers.deploy_finish import finish, running_deployment
from handlers.deploy_stop import StopTerms, check_stop, terms_of, unreachable
from handlers.deploy_terms import (
    leverage_text,
    live_blocker,
    lower_market_caps,
    share_line,
    share_of,
)

# /deployments lives in handlers/deployments.py; the router reaches it through this module
from handlers.deployments import (
    list_deployments,
    pause_button,
    resume_button,
    stop_button,
    stop_confirm_button,
    stop_keep_button,
)
from handlers.format import lev, money
from storage.enums import DeploymentStatus, PositionPolicy
from storage.models import Agent, Deployment
from wallets import siwe_link


async def _usd(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    return inputs.usd(text)


async def _leverage(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    value = inputs.leverage(text)
    if Decimal(value) > Decimal(data["agent_leverage"]):  # it would trade at the agent's
        raise UserError(
            "deploy.above_agent_leverage",
            agent=data["agent"],
            max=lev(data["agent_leverage"]),
            chosen=lev(value),
        )
    terms = terms_of(data)
    if terms is None:  # a conversation begun before the agent's stop was kept in it
        async with ctx.services.sessions() as s:
            agent = await s.get(Agent, int(data["agent_id"]))
        terms = None if agent is None else StopTerms.of(agent)
    if terms is not None:
        check_stop(ctx, terms, Decimal(value))
    return value


def _collaterals(ctx: Ctx, data: dict[str, Any]) -> list[tuple[str, str]]:
    values = sorted({Decimal(v) for v in (data.get("suggested") or "100", "50", "100", "250")})
    return [(money(v), format(v.normalize(), "f")) for v in values]  # ascending


def _leverages(ctx: Ctx, data: dict[str, Any]) -> list[tuple[str, str]]:
    """Suggested leverages, without those at which the agent's stop would never trigger (a
    typed leverage that matches a suggestion skips the step's check)."""
    top = Decimal(data["agent_leverage"])
    values = sorted(
        {Decimal(v) for v in ("1", "2", "3", "5", "10", data["agent_leverage"])}, key=Decimal
    )
    terms = terms_of(data)
    return [
        (lev(v), format(v.normalize(), "f"))
        for v in values
        if v <= top and (terms is None or unreachable(ctx, terms, v)[1] is None)
    ]


def _modes(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.t("deploy.mode_paper_short"), "paper"), (ctx.t("deploy.mode_live_short"), "live")]


def _approval(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.t("deploy.approval_off"), "off"), (ctx.t("deploy.approval_on"), "on")]


def _caps_note(ctx: Ctx, data: dict[str, Any]) -> str:
    notes = []
    user_usd = ctx.settings.get("max_collateral_usd")
    if user_usd and Decimal(data["collateral"]) > Decimal(str(user_usd)):
        notes.append(ctx.t("deploy.capped_collateral", cap=money(user_usd)))
    return "\n".join(notes)


def _mode_text(ctx: Ctx, data: dict[str, Any]) -> str:
    if data.get("mode") == "live":
        return ctx.t("deploy.mode_live")
    blocker = data.get("live_blocker")
    if blocker:  # the true reason live is not offered
        why = ctx.t(blocker, venue=data.get("agent_venue", ""))
        return ctx.t("deploy.mode_paper_because", reason=why)
    return ctx.t("deploy.mode_paper_chosen")


async def _summary(ctx: Ctx, data: dict[str, Any]) -> str:
    used = leverage_text(ctx, data["agent"], Decimal(data["leverage"]), _agent_lev(data))
    text = ctx.t(
        "deploy.summary",
        agent=data["agent"],
        mode=_mode_text(ctx, data),
        collateral=money(data["collateral"]),
        leverage=used,
        approval=ctx.t(f"deploy.approval_{data['approval']}"),
    )
    policy = data.get("agent_policy") or PositionPolicy.IGNORE
    text += "\n" + ctx.t("deploy.policy_line", policy=ctx.t(f"policy.{policy}"))
    text += "\n" + share_line(ctx, data)
    markets = lower_market_caps(ctx, data.get("agent_venue", ""), Decimal(data["leverage"]))
    if markets:
        text += "\n" + ctx.t("deploy.market_caps", markets=markets)
    if data.get("price"):  # a paid agent: Checkout follows the Deploy button
        text += "\n" + ctx.t("billing.deploy_price_line", price=money(data["price"]))
    note = _caps_note(ctx, data)
    if note:
        text += "\n" + note
    return text + "\n\n" + ctx.t("deploy.confirm_ask")


def _agent_lev(data: dict[str, Any]) -> Decimal | None:
    return Decimal(data["agent_leverage"]) if data.get("agent_leverage") else None


def _live_possible(data: dict[str, Any]) -> bool:
    return bool(data.get("live_possible"))


FLOW = wizard.register(
    wizard.Flow(
        "deploy",
        [
            wizard.Step("mode", "deploy.ask_mode", choices=_modes, when=_live_possible),
            wizard.Step("collateral", "deploy.ask_collateral", _usd, _collaterals),
            wizard.Step("leverage", "deploy.ask_leverage", _leverage, _leverages),
            wizard.Step("approval", "deploy.ask_approval", choices=_approval),
        ],
        _summary,
        finish,
        confirm_label="deploy.confirm",
    )
)


async def _unpaid(session: AsyncSession, dep_id: int) -> bool:
    dep = await session.get(Deployment, dep_id)
    return dep is not None and dep.status == DeploymentStatus.UNPAID


async def _begin(ctx: Ctx, ref: str) -> Response:
    agent = await find_agent(ctx, ref)
    async with ctx.services.sessions() as s:
        running = await running_deployment(s, ctx.user_id, agent.id)
        linked = await siwe_link.linked_wallet(s, ctx.user_id)
    async with ctx.services.sessions() as s:
        price = await subscriptions.monthly_price(s, agent.id)
        waiting = running is not None and await _unpaid(s, running)
    if waiting and price is not None:  # deployed, not paid yet: the link again
        return Response([await billing.pay_reply(ctx, agent.id, agent.name, price, running)])
    if running is not None:  # said now, not after three questions
        raise UserError("deploy.already", agent=agent.name, id=running)
    suggested = agent.default_collateral_usd
    blocker = live_blocker(ctx, agent, linked is not None)
    data = {
        # live is offered for Hyperliquid agents once a wallet is linked and keys can be kept
        "live_possible": blocker is None,
        "live_blocker": blocker,
        "creator_share": share_of(agent),
        "source_share": format(agent.source_share_pct.normalize(), "f"),
        "agent": agent.name,
        "agent_id": agent.id,
        "agent_leverage": format(agent.leverage.normalize(), "f"),
        "agent_venue": agent.venue,
        "agent_stop": format(agent.stop_loss_pct.normalize(), "f"),
        "agent_policy": agent.position_policy,
        "suggested": format(suggested.normalize(), "f") if suggested else None,
        "price": format(price.normalize(), "f") if price else None,
    }
    return await wizard.start(ctx, FLOW, data)


async def deploy(ctx: Ctx, args: str) -> Response:
    if not args.strip():
        raise UserError("deploy.usage")
    return await _begin(ctx, args)


async def deploy_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _begin(ctx, str(cb.int_arg()))


__all__ = [
    "deploy",
    "deploy_button",
    "list_deployments",
    "pause_button",
    "resume_button",
    "stop_button",
    "stop_confirm_button",
    "stop_keep_button",
]
