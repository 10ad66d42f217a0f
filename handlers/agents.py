"""The marketplace: /agents (cards sorted by 30-day return, paged) and an agent's details."""

from __future__ import annotations

import difflib
import unicodedata
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics import AgentStats, agent_stats
from handlers import callbacks
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.format import lev, pct, signed_pct
from storage.models import Agent, Source, User, agent_sources

WINDOW = timedelta(days=30)


async def _sources(ctx: Ctx, agent_ids: list[int]) -> dict[int, list[str]]:
    async with ctx.services.sessions() as s:
        rows = (
            await s.execute(
                select(agent_sources.c.agent_id, Source.handle, Source.kind)
                .join(Source, Source.id == agent_sources.c.source_id)
                .where(agent_sources.c.agent_id.in_(agent_ids))
                .order_by(Source.handle)
            )
        ).all()
    out: dict[int, list[str]] = {a: [] for a in agent_ids}
    for agent_id, handle, kind in rows:
        if kind != "agent":  # the agent's own source is its creator's /call, not a source
            out[agent_id].append(handle)
    return out


def _card(ctx: Ctx, agent: Agent, stats: AgentStats, sources: list[str], creator: str) -> str:
    win = pct(stats.win_rate) if stats.win_rate is not None else "-"
    return ctx.t(
        "agents.card",
        name=agent.name,
        venue=agent.venue,
        sources=", ".join(sources[:5]) + (" …" if len(sources) > 5 else "") or "-",
        ret=signed_pct(stats.return_pct),
        win=win,
        trades=ctx.tn("n.trades", stats.trades),
        subs=ctx.tn("n.followers", stats.subscribers),
        share=pct(agent.creator_share_pct if agent.creator_user_id else 0),
        creator=creator or "-",
    )


async def _ranked(ctx: Ctx) -> tuple[list[Agent], dict[int, AgentStats]]:
    since = ctx.services.clock() - WINDOW
    async with ctx.services.sessions() as s:
        agents = list(
            (await s.execute(select(Agent).where(Agent.status == "active"))).scalars().all()
        )
        stats = await agent_stats(s, [a.id for a in agents], since)
    agents.sort(key=lambda a: (-stats[a.id].return_pct, -stats[a.id].subscribers, a.id))
    return agents, stats


async def _page(ctx: Ctx, page: int, edit: bool) -> Response:
    agents, stats = await _ranked(ctx)
    if not agents:
        return Response([Reply(ctx.t("agents.none"), edit=edit)])
    size = ctx.services.page_size
    pages = (len(agents) + size - 1) // size
    page = min(max(page, 0), pages - 1)
    shown = agents[page * size : (page + 1) * size]
    sources = await _sources(ctx, [a.id for a in shown])
    creators = await _creators(ctx, shown)
    cards, rows = [], []
    for i, a in enumerate(shown, start=page * size + 1):
        cards.append(f"{i}. " + _card(ctx, a, stats[a.id], sources[a.id], creators.get(a.id, "")))
        rows.append(
            [
                Button(ctx.t("agents.deploy", name=a.name[:20]), callbacks.make("dp", a.id)),
                Button(ctx.t("agents.details"), callbacks.make("ad", a.id)),
            ]
        )
    nav = []
    if page > 0:
        nav.append(Button(ctx.t("nav.prev"), callbacks.make("ap", page - 1)))
    if page < pages - 1:
        nav.append(Button(ctx.t("nav.next"), callbacks.make("ap", page + 1)))
    if nav:
        rows.append(nav)
    header = ctx.t("agents.header", page=page + 1, pages=pages)
    return Response([Reply("\n\n".join([header, *cards]), rows, edit=edit)])


async def _creators(ctx: Ctx, agents: list[Agent]) -> dict[int, str]:
    ids = {a.creator_user_id for a in agents if a.creator_user_id}
    if not ids:
        return {}
    async with ctx.services.sessions() as s:
        names = dict(
            (await s.execute(select(User.id, User.display_name).where(User.id.in_(ids)))).all()
        )
    return {a.id: names.get(a.creator_user_id, "") for a in agents if a.creator_user_id}


async def list_agents(ctx: Ctx, _: str = "") -> Response:
    return await _page(ctx, 0, edit=False)


async def list_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return await _page(ctx, 0, edit=False)


async def page_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _page(ctx, cb.int_arg(), edit=True)


async def agent_named(session: AsyncSession, name: str) -> Agent | None:
    """The agent with this name, case-insensitively in any script: SQLite's lower() folds
    ASCII only, so a name with other letters (Ястреб) is compared here, by casefold."""
    found = (
        await session.execute(select(Agent).where(func.lower(Agent.name) == name.lower()))
    ).scalar_one_or_none()
    if found is not None or name.isascii():
        return found
    wanted = unicodedata.normalize("NFKC", name).casefold()
    for agent_id, stored in (await session.execute(select(Agent.id, Agent.name))).all():
        if unicodedata.normalize("NFKC", stored).casefold() == wanted:
            return await session.get(Agent, agent_id)
    return None


async def find_agent(ctx: Ctx, ref: str) -> Agent:
    """An agent by id or by name (case-insensitive)."""
    ref = ref.strip()
    if not ref:
        raise UserError("agents.name_needed")
    async with ctx.services.sessions() as s:
        agent = None
        if ref.isdigit() and len(ref) < 18:
            agent = await s.get(Agent, int(ref))
        if agent is None:
            agent = await agent_named(s, ref[:64])
    if agent is None or agent.status != "active":
        near = await _near_names(ctx, ref)
        if near:
            raise UserError("agents.did_you_mean", name=ref[:64], suggestion=near)
        raise UserError("agents.not_found", name=ref[:64])
    return agent


async def _near_names(ctx: Ctx, ref: str) -> str:
    """'GoldDesk' for 'GoldDesc' or 'gold desk': the listed names nearest to a miss."""
    async with ctx.services.sessions() as s:
        names = list(
            (await s.execute(select(Agent.name).where(Agent.status == "active"))).scalars()
        )
    folded = {n.casefold().replace(" ", ""): n for n in names}
    wanted = ref.casefold().replace(" ", "")[:64]
    close = difflib.get_close_matches(wanted, list(folded), n=2, cutoff=0.7)
    return ", ".join(folded[c] for c in close)


async def agent_card(ctx: Ctx, ref: str) -> Reply:
    agent = await find_agent(ctx, ref)
    async with ctx.services.sessions() as s:
        stats = (await agent_stats(s, [agent.id], ctx.services.clock() - WINDOW))[agent.id]
    sources = (await _sources(ctx, [agent.id]))[agent.id]
    creator = (await _creators(ctx, [agent])).get(agent.id, "")
    risk = ctx.t(
        "agents.risk",
        leverage=lev(agent.leverage),
        stop=pct(agent.stop_loss_pct),
        tp=pct(agent.take_profit_pct) if agent.take_profit_pct else "-",
        trail=(
            f"{pct(agent.trailing_activation_pct)} / {pct(agent.trailing_distance_pct)}"
            if agent.trailing_activation_pct and agent.trailing_distance_pct
            else "-"
        ),
    )
    text = _card(ctx, agent, stats, sources, creator) + "\n" + risk
    return Reply(
        text,
        [[Button(ctx.t("agents.deploy", name=agent.name[:20]), callbacks.make("dp", agent.id))]],
    )


async def details_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return Response([await agent_card(ctx, str(cb.int_arg()))])
