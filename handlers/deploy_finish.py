"""The last step of /deploy: the deployment recorded (paper, or live once Hyperliquid lists
Maxxit's agent for the account), with its audit row, or the Checkout link of a paid agent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine import subscriptions
from handlers import audit, billing, callbacks, hyperliquid_approval
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.deploy_account import shared_account_conflict
from handlers.deploy_stop import StopTerms, check_stop
from storage.enums import DeploymentMode, DeploymentStatus
from storage.models import Agent, Deployment
from wallets import siwe_link


async def running_deployment(session: AsyncSession, user_id: int, agent_id: int) -> int | None:
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


async def finish(ctx: Ctx, data: dict[str, Any]) -> Response:
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
        # again: another deploy may have raced this one since its start
        running = await running_deployment(s, ctx.user_id, agent.id)
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
