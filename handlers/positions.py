"""/positions (with Close, confirmed) and /history (paged); /pnl is in handlers/performance.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select

from engine.liquidation import liquidation_price
from engine.markets import MarketInfo
from engine.venues.routed import mode_of
from handlers import audit, callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.format import lev, price, signed_money, signed_pct
from handlers.positions_close_all import shown_in_reply
from handlers.price_note import no_prices_note
from handlers.reads import read_only
from handlers.time_zone import user_when
from storage.enums import CloseReason, PositionStatus
from storage.models import Agent, Deployment, Position

HISTORY_PAGE = 10
# what /positions and a position's buttons read: its columns as Core rows (attribute access
# as on the ORM object; building ORM objects cost more than the query on this path)
POSITION_COLUMNS = tuple(Position.__table__.c)
PositionRow = Any  # a Row of POSITION_COLUMNS: p.id, p.side, p.entry_price...


def unrealized(p: PositionRow, mark: Decimal | None) -> Decimal | None:
    """The price move's PnL with the funding (Hyperliquid) or rollover (Ostium) accrued so far,
    as /pnl counts it."""
    if mark is None:
        return None
    sign = 1 if p.side == "long" else -1
    return (mark - p.entry_price) * p.size * sign + (p.funding_usd or Decimal(0))


# built once (bind parameters): building a statement of thirty columns cost more than its
# cached compilation on every update
_OWNED = (
    select(*POSITION_COLUMNS, Deployment.user_id.label("owner"), Agent.name.label("agent"))
    .join(Deployment, Deployment.id == Position.deployment_id)
    .join(Agent, Agent.id == Deployment.agent_id)
    .where(Position.id == bindparam("position_id"))
)
_OPEN = (
    select(*POSITION_COLUMNS, Agent.name.label("agent"))
    .join(Deployment, Deployment.id == Position.deployment_id)
    .join(Agent, Agent.id == Deployment.agent_id)
    .where(Deployment.user_id == bindparam("user_id"), Position.status == PositionStatus.OPEN)
    .order_by(Position.id)
)


async def _owned_position(ctx: Ctx, position_id: int) -> tuple[PositionRow, str] | None:
    async with read_only(ctx.services) as conn:
        row = (await conn.execute(_OWNED, {"position_id": position_id})).one_or_none()
    if row is None or row.owner != ctx.user_id:
        return None
    return row, row.agent


def liquidation_of(ctx: Ctx, p: PositionRow) -> Decimal | None:
    """The position's isolated liquidation price from its entry, leverage and side, with the
    venue's maintenance margin for its market (engine/liquidation.py: with cross margin the
    real one is farther while the rest of the account holds up). None without a leverage, or
    for a long that no positive price liquidates (1x)."""
    if p.leverage is None or p.leverage <= 0:
        return None
    venue = ctx.services.engine.venues.get(p.venue)
    market = (venue.markets().get(p.market) if venue else None) or MarketInfo(p.market)
    level = liquidation_price(p.side, p.entry_price, p.leverage, market.maintenance_margin_rate)
    return level if level > 0 else None


def _open_text(ctx: Ctx, p: PositionRow, agent: str) -> str:
    engine = ctx.services.engine
    mark = engine.prices.price(p.market)
    state = engine.index.state(p.id)
    stop = state[0] if state else p.stop_price
    upnl = unrealized(p, mark)
    liq = liquidation_of(ctx, p)
    text = ctx.t(
        "positions.open_line",
        id=p.id,
        agent=f"{_tag(ctx, p)} {agent}",
        side=ctx.t(f"side.{p.side}"),
        market=p.market,
        venue=p.venue,
        size=format(p.size.normalize(), "f"),
        leverage=lev(p.leverage),
        entry=price(p.entry_price),
        mark=price(mark) if mark is not None else "-",
        upnl=signed_money(upnl) if upnl is not None else "-",
        stop=price(stop),
        tp=price(p.take_profit_price) if p.take_profit_price else "-",
    )
    text += "\n" + ctx.t("positions.liquidation", price=price(liq) if liq else "-")
    if p.funding_usd:
        text += "\n" + ctx.t("pnl.funding", funding=signed_money(p.funding_usd))
    if upnl is not None and mark is not None:
        move, roe = returns(p, mark, upnl)
        text += "\n" + ctx.t("positions.returns", move=signed_pct(move), roe=signed_pct(roe))
    return text


def returns(p: PositionRow, mark: Decimal, upnl: Decimal) -> tuple[Decimal, Decimal]:
    """(the price move in the position's favour, as a fraction of the entry price; the return
    on the margin put up: unrealized PnL over size x entry / leverage)."""
    sign = 1 if p.side == "long" else -1
    move = (mark - p.entry_price) / p.entry_price * sign
    margin = p.size * p.entry_price / (p.leverage or 1)
    return move, (upnl / margin if margin else Decimal(0))


def _tag(ctx: Ctx, p: PositionRow) -> str:
    """[PAPER] or [LIVE]: every line about a position says whether the money is real."""
    return ctx.t(f"tag.{mode_of(p.account)}")


def _closed_text(ctx: Ctx, p: PositionRow, agent: str) -> str:
    reason = p.close_reason or ""
    key = f"reason.{reason}"
    return ctx.t(
        "positions.closed_line",
        id=p.id,
        agent=f"{_tag(ctx, p)} {agent}",
        side=ctx.t(f"side.{p.side}"),
        market=p.market,
        entry=price(p.entry_price),
        exit=price(p.exit_price) if p.exit_price is not None else "-",
        pnl=signed_money(p.realized_pnl or 0),
        reason=ctx.t(key) if reason in set(CloseReason) else reason.replace("_", " "),
        day=user_when(ctx, p.closed_at) if p.closed_at else "-",
    )


async def positions(ctx: Ctx, _: str = "") -> Response:
    async with read_only(ctx.services) as conn:
        rows = (await conn.execute(_OPEN, {"user_id": ctx.user_id})).all()
    note = no_prices_note(ctx)
    if not rows:
        return Response([Reply(ctx.t("positions.none") + (f"\n\n{note}" if note else ""))])
    tools = [
        Button(ctx.t("positions.refresh_all"), callbacks.make("pr")),
        Button(ctx.t("positions.close_all"), callbacks.make("pca")),
    ]
    header = ctx.t("positions.header", count=len(rows)) + (f"\n{note}" if note else "")
    replies = [Reply(header, [tools])]
    for p in rows[:30]:
        replies.append(Reply(_open_text(ctx, p, p.agent), [_open_buttons(ctx, p.id)]))
    return Response(replies)


def _open_buttons(ctx: Ctx, position_id: int) -> list[Button]:
    return [
        Button(ctx.t("positions.close"), callbacks.make("pc", position_id)),
        Button(ctx.t("positions.refresh"), callbacks.make("pf", position_id)),
    ]


async def refresh_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    """The position's message again, at the latest price (edited in place)."""
    owned = await _owned_position(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    p, agent = owned
    if p.status != PositionStatus.OPEN:
        return Response([Reply(_closed_text(ctx, p, agent), edit=True)])
    return Response(
        [Reply(_open_text(ctx, p, agent), [_open_buttons(ctx, p.id)], edit=True)],
        notice=ctx.t("positions.refreshed"),
    )


async def refresh_all_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return await positions(ctx)


async def close_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    owned = await _owned_position(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    p, agent = owned
    if p.status != PositionStatus.OPEN:
        return Response(
            [Reply(_closed_text(ctx, p, agent), edit=True)],
            notice=ctx.t("positions.already_closed"),
        )
    yes = Button(ctx.t("positions.close_yes"), callbacks.make("pcy", p.id))
    no = Button(ctx.t("positions.close_no"), callbacks.make("pcn", p.id))
    text = _open_text(ctx, p, agent) + "\n\n" + ctx.t("positions.close_ask")
    return Response([Reply(text, [[yes, no]], edit=True)])


async def close_keep_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    owned = await _owned_position(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    p, agent = owned
    if p.status != PositionStatus.OPEN:
        return Response([Reply(_closed_text(ctx, p, agent), edit=True)])
    return Response([Reply(_open_text(ctx, p, agent), [_open_buttons(ctx, p.id)], edit=True)])


async def close_confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    owned = await _owned_position(ctx, cb.int_arg())
    if owned is None:
        return ctx.not_yours()
    p, agent = owned
    if p.status == PositionStatus.OPEN:
        await ctx.services.engine.close_positions({p.id: CloseReason.MANUAL})
        owned = await _owned_position(ctx, p.id)
        assert owned is not None
        p = owned[0]
        await audit.record_after(
            ctx, "close", f"position:{p.id}", market=p.market, side=p.side, size=p.size,
            venue=p.venue, outcome=p.status, exit_price=p.exit_price,
        )  # fmt: skip
    if p.status != PositionStatus.OPEN:
        # this reply is the news: the "closed" alert would say it a second time
        await shown_in_reply(ctx, [p.id])
        return Response(
            [Reply(_closed_text(ctx, p, agent), edit=True)], notice=ctx.t("positions.closed_notice")
        )
    # the venue refused or is unreachable: the engine keeps retrying the close
    retry = Button(ctx.t("positions.close"), callbacks.make("pc", p.id))
    text = _open_text(ctx, p, agent) + "\n\n" + ctx.t("positions.close_pending")
    return Response([Reply(text, [[retry]], edit=True)])


async def _history(ctx: Ctx, page: int, edit: bool) -> Response:
    mine = (
        select(Position, Agent.name)
        .join(Deployment, Deployment.id == Position.deployment_id)
        .join(Agent, Agent.id == Deployment.agent_id)
        .where(Deployment.user_id == ctx.user_id, Position.status == PositionStatus.CLOSED)
    )
    async with ctx.services.sessions() as s:
        total = (await s.execute(select(func.count()).select_from(mine.subquery()))).scalar_one()
        if total == 0:
            return Response([Reply(ctx.t("history.none"), edit=edit)])
        pages = (total + HISTORY_PAGE - 1) // HISTORY_PAGE
        page = min(max(page, 0), pages - 1)
        rows = (
            await s.execute(
                mine.order_by(Position.closed_at.desc(), Position.id.desc())
                .offset(page * HISTORY_PAGE)
                .limit(HISTORY_PAGE)
            )
        ).all()
    lines = [_closed_text(ctx, p, agent) for p, agent in rows]
    nav = []
    if page > 0:
        nav.append(Button(ctx.t("nav.prev"), callbacks.make("hi", page - 1)))
    if page < pages - 1:
        nav.append(Button(ctx.t("nav.next"), callbacks.make("hi", page + 1)))
    header = ctx.t("history.header", page=page + 1, pages=pages, total=total)
    return Response([Reply("\n\n".join([header, *lines]), [nav] if nav else [], edit=edit)])


async def history(ctx: Ctx, _: str = "") -> Response:
    return await _history(ctx, 0, edit=False)


async def history_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _history(ctx, cb.int_arg(), edit=True)
