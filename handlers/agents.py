"""The marketplace: /agents (paged) ranked by live results over 30 days, risk-adjusted, once an
agent has enough live trades of its own (engine/analytics/ranking.py); paper results shown
apart; an agent's details with its equity curve and routing statistics."""

from __future__ import annotations

import difflib
import unicodedata
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.analytics import summary
from engine.analytics.charts import CurveLabels, equity_curve, render
from engine.analytics.figures import Figures, drawdowns, equity_index
from engine.analytics.ranking import MIN_TRADES, Standing, rank
from engine.analytics.records import agent_records, followers
from engine.analytics.routing import routing_stats
from engine.analytics.summary import WINDOW_DAYS
from handlers import callbacks
from handlers.alerts import reason_text
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.format import lev, pct, pct_short, ratio, signed_money, signed_pct
from handlers.performance import refresh
from storage.models import Agent, Source, User, agent_sources


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


def _record_lines(ctx: Ctx, standing: Standing) -> list[str]:
    """Live first (what ranks), paper apart; how far an unranked agent is from a rank."""
    lines = []
    if standing.live is not None:
        f = standing.live.figures
        lines.append(
            ctx.t(
                "agents.live_record",
                days=WINDOW_DAYS,
                ret=signed_pct(f.cumulative_return),
                sharpe=ratio(f.sharpe),
                drawdown=pct_short(f.max_drawdown),
                win=pct_short(f.win_rate) if f.win_rate is not None else "-",
                trades=f.trades,
            )
        )
    else:
        lines.append(ctx.t("agents.no_live", days=WINDOW_DAYS))
    if standing.paper is not None:
        f = standing.paper.figures
        lines.append(
            ctx.t(
                "agents.paper_record",
                ret=signed_pct(f.cumulative_return),
                win=pct_short(f.win_rate) if f.win_rate is not None else "-",
                trades=f.trades,
            )
        )
    if not standing.ranked:
        lines.append(ctx.t("agents.unranked", trades=standing.live_trades, needed=MIN_TRADES))
    return lines


def _card(
    ctx: Ctx, agent: Agent, standing: Standing, sources: list[str], creator: str, place: str
) -> str:
    head = ctx.t("agents.card_name", place=place, name=agent.name, venue=agent.venue).strip()
    tail = ctx.t(
        "agents.card_people",
        sources=", ".join(sources[:5]) + (" …" if len(sources) > 5 else "") or "-",
        subs=standing.followers,
        share=pct(agent.creator_share_pct if agent.creator_user_id else 0),
        creator=creator or "-",
    )
    return "\n".join([head, *_record_lines(ctx, standing), tail])


async def _standings(ctx: Ctx, agents: list[Agent]) -> list[Standing]:
    """These agents' full records (with their days, for a curve), from the daily roll-up
    (refreshed first), in marketplace order."""
    await refresh(ctx)
    ids = [a.id for a in agents]
    async with ctx.services.sessions() as s:
        since, last = summary.window(ctx.services.clock().date())
        records = await agent_records(s, ids, since, last)
        people = await followers(s, ids)
    return rank(ids, records, people)


async def _page(ctx: Ctx, page: int, edit: bool) -> Response:
    """One page of the marketplace, read from the kept standings (engine/analytics/summary.py)
    through their place index: the same work with ten agents or ten thousand."""
    await refresh(ctx)
    size = ctx.services.page_size
    async with ctx.services.sessions() as s:
        shown, total, ranked_total = await summary.page(s, max(page, 0) * size, size)
        if not shown and total:  # a page past the end (agents retired since): the last one
            page = (total - 1) // size
            shown, total, ranked_total = await summary.page(s, page * size, size)
        people = await followers(s, [a.id for a, _ in shown])
    if not total:
        return Response([Reply(ctx.t("agents.none"), edit=edit)])
    pages = (total + size - 1) // size
    page = min(max(page, 0), pages - 1)
    first = page * size
    ranked_before = min(first, ranked_total)
    agents = {a.id: a for a, _ in shown}
    sources = await _sources(ctx, list(agents))
    creators = await _creators(ctx, list(agents.values()))
    cards, rows = [], []
    for a, row in shown:
        st = summary.standing_of(row, people.get(a.id, 0))
        if st.ranked:
            ranked_before += 1
        place = f"{ranked_before}." if st.ranked else "•"
        cards.append(_card(ctx, a, st, sources[a.id], creators.get(a.id, ""), place))
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
    header = ctx.t(
        "agents.ranked_header", page=page + 1, pages=pages, days=WINDOW_DAYS, needed=MIN_TRADES
    )
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
    standing = (await _standings(ctx, [agent]))[0]
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
    place = "" if not standing.ranked else f"#{await _place(ctx, agent.id)}"
    parts = [_card(ctx, agent, standing, sources, creator, place), risk]
    if standing.live is not None:
        parts.insert(1, _more_stats(ctx, standing.live.figures))
    routing = await _routing_line(ctx, agent.id)
    if routing:
        parts.append(routing)
    deploy = Button(ctx.t("agents.deploy", name=agent.name[:20]), callbacks.make("dp", agent.id))
    return Reply("\n".join(parts), [[deploy]], photo=await _curve(ctx, agent, standing))


def _more_stats(ctx: Ctx, f: Figures) -> str:
    return ctx.t(
        "agents.more_stats",
        apr=signed_pct(f.apr) if f.apr is not None else "-",
        sortino=ratio(f.sortino),
        avg_win=signed_money(f.average_win) if f.average_win is not None else "-",
        avg_loss=signed_money(f.average_loss) if f.average_loss is not None else "-",
    )


async def _place(ctx: Ctx, agent_id: int) -> int:
    async with ctx.services.sessions() as s:
        return await summary.place_of(s, agent_id)


async def _routing_line(ctx: Ctx, agent_id: int) -> str:
    since = ctx.services.clock() - timedelta(days=WINDOW_DAYS)
    async with ctx.services.sessions() as s:
        stats = await routing_stats(s, agent_id, since)
    if not stats.routed and not stats.rejected:
        return ""
    venues = ", ".join(f"{v} {n}" for v, n in stats.venues.most_common(3)) or "-"
    refused = ", ".join(
        f"{reason_text(ctx.language, r)} {n}" for r, n in stats.rejections.most_common(3)
    )
    return ctx.t("agents.routing", venues=venues, refused=refused or "-")


async def _curve(ctx: Ctx, agent: Agent, standing: Standing) -> bytes | None:
    """The agent's equity curve over the window: live if it has traded live, else paper."""
    mode, rec = ("live", standing.live) if standing.live else ("paper", standing.paper)
    if rec is None:
        return None
    f = rec.figures
    # the curve starts at 0 the day before the first close, and ends at the cumulative return
    equity = equity_index(list(f.daily_returns))
    dates = [rec.first_day + timedelta(days=i - 1) for i in range(len(equity))]
    labels = CurveLabels(
        title=ctx.t("chart.agent_title", name=agent.name, mode=ctx.t(f"mode.{mode}")),
        subtitle=ctx.t(
            "chart.agent_subtitle",
            ret=signed_pct(f.cumulative_return),
            sharpe=ratio(f.sharpe),
            trades=f.trades,
        ),
        value_axis=ctx.t("chart.return_axis"),
        drawdown_axis=ctx.t("chart.drawdown_axis"),
        empty=ctx.t("chart.empty"),
        gain=f.realized_pnl >= 0,
    )
    values = [e - 1 for e in equity]
    return await render(equity_curve, dates, values, drawdowns(equity), labels, False)


async def details_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return Response([await agent_card(ctx, str(cb.int_arg()))])
