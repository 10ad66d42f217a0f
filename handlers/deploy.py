"""/deploy (or the Deploy button): run an agent on your own account; /deployments with
Pause / Resume / Stop."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine import liquidation, subscriptions
from engine.sizing import effective_leverage
from handlers import audit, billing, callbacks, hyperliquid_approval, inputs, wizard
from handlers.agents import find_agent
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.create import agent_markets, limit_fields
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
from storage.enums import DeploymentMode, DeploymentStatus, PositionPolicy
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
    terms = _terms(data)
    if terms is None:  # a conversation begun before the agent's stop was kept in it
        async with ctx.services.sessions() as s:
            agent = await s.get(Agent, int(data["agent_id"]))
        terms = None if agent is None else StopTerms.of(agent)
    if terms is not None:
        check_stop(ctx, terms, Decimal(value))
    return value


@dataclass(frozen=True, slots=True)
class StopTerms:
    """What decides whether an agent's stop triggers before liquidation."""

    agent: str
    venue: str
    leverage: Decimal
    stop: Decimal

    @classmethod
    def of(cls, agent: Agent) -> StopTerms:
        return cls(agent.name, agent.venue, agent.leverage, agent.stop_loss_pct)


def _terms(data: dict[str, Any]) -> StopTerms | None:
    if not data.get("agent_stop"):
        return None
    return StopTerms(
        data["agent"],
        data["agent_venue"],
        Decimal(data["agent_leverage"]),
        Decimal(data["agent_stop"]),
    )


def _unreachable(
    ctx: Ctx, terms: StopTerms, chosen: Decimal
) -> tuple[Decimal, liquidation.StopLimit | None]:
    """(leverage trades would use, the limit the agent's stop breaks at it, if any). The
    leverage is the smallest of the user's choice, the agent's and the user's own cap."""
    user_max = ctx.settings.get("max_leverage")
    cap = Decimal(str(user_max)) if user_max else None
    leverage = effective_leverage(chosen, terms.leverage, cap)
    markets = agent_markets(ctx, terms.venue)
    return leverage, liquidation.unreachable_stop(terms.stop, leverage, markets)


def check_stop(ctx: Ctx, terms: StopTerms, chosen: Decimal) -> None:
    """Refuse a leverage at which the agent's stop loss sits at or past the liquidation
    price: the position would be liquidated before its stop could close it."""
    leverage, limit = _unreachable(ctx, terms, chosen)
    if limit is None:
        return
    markets = agent_markets(ctx, terms.venue)
    best = liquidation.max_leverage_for_stop(terms.stop, markets, leverage)
    if best is None:  # explained at 1x, the lowest leverage there is
        at_one = liquidation.unreachable_stop(terms.stop, Decimal(1), markets) or limit
        fields = limit_fields(at_one, Decimal(1), terms.stop)
        raise UserError("deploy.stop_past_liquidation_always", agent=terms.agent, **fields)
    fields = limit_fields(limit, leverage, terms.stop)
    raise UserError(
        "deploy.stop_past_liquidation", agent=terms.agent, max_leverage=lev(best), **fields
    )


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
    terms = _terms(data)
    return [
        (lev(v), format(v.normalize(), "f"))
        for v in values
        if v <= top and (terms is None or _unreachable(ctx, terms, v)[1] is None)
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


async def _finish(ctx: Ctx, data: dict[str, Any]) -> Response:
    if data.get("mode") == "live":
        # live only once Hyperliquid itself lists Maxxit's agent for this account
        verdict = await hyperliquid_approval.confirm(
            ctx.services, ctx.user_id, ctx.request.platform
        )
        if verdict != "approved":
            return await _ask_approval(ctx, verdict)
    async with ctx.services.sessions() as s, s.begin():
        agent = await s.get(Agent, int(data["agent_id"]))
        if agent is None or agent.status != "active":
            raise UserError("agents.not_found", name=data["agent"])
        check_stop(ctx, StopTerms.of(agent), Decimal(data["leverage"]))  # as at its step
        running = await _running(s, ctx.user_id, agent.id)  # again: a race since the start
        if running is not None:
            raise UserError("deploy.already", agent=agent.name, id=running)
        live = data.get("mode") == "live"
        account = f"paper:{ctx.user_id}:{agent.id}"
        if live:
            wallet = await siwe_link.linked_wallet(s, ctx.user_id)
            if wallet is None:
                raise UserError("approval_hl.no_wallet")
            account = wallet.address  # orders trade the user's own Hyperliquid account
            conflict = await shared_account_conflict(
                s, ctx, agent, account, Decimal(data["leverage"])
            )
            if conflict is not None:  # said in full: a button's pop-up would cut it short
                return Response([Reply(conflict, edit=True)])
        price = await subscriptions.monthly_price(s, agent.id)
        unpaid = price is not None and not await subscriptions.is_paid(s, ctx.user_id, agent.id)
        if unpaid and not billing.billing_on(ctx):
            raise UserError("billing.unavailable")
        dep = Deployment(
            user_id=ctx.user_id,
            agent_id=agent.id,
            mode=DeploymentMode.LIVE if live else DeploymentMode.PAPER,
            # a paid agent trades once Stripe says the subscription is paid
            status=DeploymentStatus.UNPAID if unpaid else DeploymentStatus.ACTIVE,
            collateral_usd=Decimal(data["collateral"]),
            leverage=Decimal(data["leverage"]),
            manual_approval=data["approval"] == "on",
            account=account,
        )
        s.add(dep)
        await s.flush()
        dep_id = dep.id
        await audit.record(
            s,
            ctx,
            "go_live" if live else "deploy",
            f"deployment:{dep_id}",
            agent=agent.name,
            account=account,
            collateral_usd=dep.collateral_usd,
            leverage=dep.leverage,
            manual_approval=dep.manual_approval,
        )
    if unpaid and price is not None:
        pay = await billing.pay_reply(ctx, int(data["agent_id"]), data["agent"], price, dep_id)
        pay.edit = True
        return Response([pay])
    return Response([Reply(ctx.t("deploy.done", agent=data["agent"], id=dep_id), edit=True)])


async def _ask_approval(ctx: Ctx, verdict: str) -> Response:
    if verdict in ("no_wallet", "live_off"):
        raise UserError(f"approval_hl.{verdict}")
    requested = await hyperliquid_approval.request(ctx.services, ctx.user_id)
    if isinstance(requested, str):
        raise UserError(f"approval_hl.{requested}")
    async with ctx.services.sessions() as s, s.begin():
        token = await siwe_link.start_link(s, ctx.user_id, ctx.services.clock())
    url = f"{ctx.services.public_url.rstrip('/')}/connect?t={token}&hl=1"
    text = ctx.t("deploy.need_approval", url=url, agent=requested["agent"])
    check = Button(ctx.t("wallet.check_approval"), callbacks.make("hc"))
    return Response([Reply(text, [[check]], edit=True)])


def _overlap(a: Agent, b: Agent) -> bool:
    """Whether two agents may trade one market (no list: whatever their venue lists)."""
    if a.venue != b.venue and "MULTI" not in (a.venue, b.venue):
        return False
    if a.allowed_markets is None or b.allowed_markets is None:
        return True
    return bool(set(a.allowed_markets) & set(b.allowed_markets))


async def shared_account_conflict(
    s: AsyncSession, ctx: Ctx, agent: Agent, account: str, chosen: Decimal
) -> str | None:
    """Hyperliquid keeps one leverage and one margin mode per coin per account, set by the
    order that trades it: two live deployments on one account whose agents trade the same
    markets would overwrite each other's. Refuse the second unless both match (the user's
    own leverage cap applies to both alike, so it is left out of the comparison)."""
    rows = await s.execute(
        select(Deployment, Agent)
        .join(Agent, Agent.id == Deployment.agent_id)
        .where(
            Deployment.account == account,
            Deployment.mode == DeploymentMode.LIVE,
            Deployment.status != DeploymentStatus.STOPPED,
            Deployment.agent_id != agent.id,
        )
        .order_by(Deployment.id)
    )
    leverage = effective_leverage(chosen, agent.leverage)
    for dep, other in rows:
        if not _overlap(agent, other):
            continue
        theirs = effective_leverage(dep.leverage, other.leverage, dep.max_leverage)
        if theirs == leverage and bool(other.isolated_margin) == bool(agent.isolated_margin):
            continue
        return ctx.t(
            "deploy.leverage_conflict",
            agent=agent.name,
            other=other.name,
            id=dep.id,
            leverage=lev(leverage),
            margin=ctx.t("margin.isolated" if agent.isolated_margin else "margin.cross"),
            other_leverage=lev(theirs),
            other_margin=ctx.t("margin.isolated" if other.isolated_margin else "margin.cross"),
        )
    return None


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
        _finish,
        confirm_label="deploy.confirm",
    )
)


async def _running(session: AsyncSession, user_id: int, agent_id: int) -> int | None:
    """The user's deployment of this agent that is not stopped, if any."""
    return (
        await session.execute(
            select(Deployment.id).where(
                Deployment.user_id == user_id,
                Deployment.agent_id == agent_id,
                Deployment.status != DeploymentStatus.STOPPED,
            )
        )
    ).scalar()


async def _unpaid(session: AsyncSession, dep_id: int) -> bool:
    dep = await session.get(Deployment, dep_id)
    return dep is not None and dep.status == DeploymentStatus.UNPAID


async def _begin(ctx: Ctx, ref: str) -> Response:
    agent = await find_agent(ctx, ref)
    async with ctx.services.sessions() as s:
        running = await _running(s, ctx.user_id, agent.id)
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
