"""/pnl (today, 7 days, 30 days, all time; live and paper apart; an equity curve) and /daily
(day by day), read from the daily roll-up (engine/analytics), refreshed first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select

from engine.analytics.charts import CurveLabels, equity_curve, render
from engine.analytics.daily import refresh_daily
from engine.analytics.figures import DayTotals, drawdowns, equity_index
from engine.analytics.records import (
    OpenBook,
    calendar,
    open_book,
    record,
    user_days,
    window_totals,
)
from handlers import callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.format import pct_short, ratio, signed_money, signed_pct
from handlers.reads import read_only
from storage.enums import DeploymentMode, PositionStatus
from storage.models import Agent, Deployment, Position

MODES = (DeploymentMode.LIVE.value, DeploymentMode.PAPER.value)
DAILY_DEFAULT, DAILY_MAX = 7, 31


async def refresh(ctx: Ctx) -> None:
    async with ctx.services.sessions() as s, s.begin():
        await refresh_daily(s, ctx.services.clock())


def today(ctx: Ctx) -> date:
    return ctx.services.clock().date()


def pct_of(t: DayTotals) -> str:
    return signed_pct(t.return_on_margin) if t.margin else "-"


def money_and_pct(ctx: Ctx, t: DayTotals) -> str:
    return ctx.t("pnl.amount", pnl=signed_money(t.realized_pnl), pct=pct_of(t), trades=t.trades)


# what the PnL reads of a position (the ORM object costs more to build than the figures)
POSITION_FIGURES = (
    Position.deployment_id,
    Position.status,
    Position.realized_pnl,
    Position.market,
    Position.side,
    Position.size,
    Position.entry_price,
    Position.funding_usd,
    Position.leverage,
)


def _mode_block(ctx: Ctx, mode: str, days: dict[date, DayTotals], book: OpenBook) -> str:
    end = today(ctx)
    windows = (
        ("pnl.today", end),
        ("pnl.week", end - timedelta(days=6)),
        ("pnl.month", end - timedelta(days=29)),
        ("pnl.all_time", None),
    )
    lines = [ctx.t("pnl.mode_header", mode=ctx.t(f"mode.{mode}"))]
    for key, since in windows:
        lines.append(ctx.t(key) + ": " + money_and_pct(ctx, window_totals(days, since, end)))
    rec = record(days, None, end)
    if rec is not None:
        f = rec.figures
        lines.append(
            ctx.t(
                "pnl.stats",
                win=pct_short(f.win_rate) if f.win_rate is not None else "-",
                avg_win=signed_money(f.average_win) if f.average_win is not None else "-",
                avg_loss=signed_money(f.average_loss) if f.average_loss is not None else "-",
                drawdown=pct_short(f.max_drawdown),
                sharpe=ratio(f.sharpe),
                sortino=ratio(f.sortino),
            )
        )
    if book.positions:
        lines.append(
            ctx.t(
                "pnl.open_book",
                count=book.positions,
                unrealized=signed_money(book.unrealized_pnl),
                exposure=f"${book.exposure:,.2f}",
                margin=f"${book.margin:,.2f}",
            )
        )
    return "\n".join(lines)


async def equity_picture(ctx: Ctx, mode: str, days: dict[date, DayTotals]) -> bytes | None:
    """Cumulative realized PnL per day since the first close, with the drawdown of the
    compounded daily returns on collateral; None before the first close."""
    series = calendar(days, None, today(ctx))
    if not series:
        return None
    # from 0 the day before the first close
    first = min(days) - timedelta(days=1)
    dates = [first + timedelta(days=i) for i in range(len(series) + 1)]
    cumulative, running = [Decimal(0)], Decimal(0)
    for t in series:
        running += t.realized_pnl
        cumulative.append(running)
    drawdown = drawdowns(equity_index([t.return_on_margin for t in series]))
    total = window_totals(days, None, today(ctx))
    labels = CurveLabels(
        title=ctx.t("chart.pnl_title", mode=ctx.t(f"mode.{mode}")),
        subtitle=ctx.t("chart.pnl_subtitle", pnl=signed_money(running), trades=total.trades),
        value_axis=ctx.t("chart.pnl_axis"),
        drawdown_axis=ctx.t("chart.drawdown_axis"),
        empty=ctx.t("chart.empty"),
        gain=running >= 0,
    )
    return await render(equity_curve, dates, cumulative, drawdown, labels, True)


@dataclass(slots=True)
class _Lines:
    """What /pnl reads of a user's positions: the per-deployment lines, the funding, the open
    book per mode, and per mode the count and PnL sum of the closed positions (what the daily
    rows must add up to)."""

    lines: list[str]
    funding: Decimal
    books: dict[str, OpenBook]
    closed: dict[str, tuple[int, Decimal]]


# one row per position of the user's deployments, and one (positions' columns None) per
# deployment without any: the deployments and their positions in one statement (built once)
_DEPLOYMENTS_AND_POSITIONS = (
    select(Deployment.id, Agent.name, Deployment.status, Deployment.mode, *POSITION_FIGURES[1:])
    .join(Agent, Agent.id == Deployment.agent_id)
    .outerjoin(Position, Position.deployment_id == Deployment.id)
    .where(Deployment.user_id == bindparam("user_id"))
    .order_by(Deployment.id)
)


def _deployment_lines(ctx: Ctx, rows: Sequence[Any]) -> _Lines:
    """Per deployment: realized and unrealized PnL, trades, wins; the funding the venues
    paid (> 0) or charged, in the realized PnL of closed positions and counted with the
    unrealized PnL of open ones (engine/money/funding.py); and the open book per mode."""
    prices = ctx.services.engine.prices
    deps: dict[int, tuple[str, str, str]] = {}
    per: dict[int, list] = {}
    held: dict[str, list[tuple[Any, ...]]] = {mode: [] for mode in MODES}
    closed: dict[str, list] = {}
    funding = Decimal(0)
    for dep_id, agent, dep_status, mode, status, realized, market, side, size, entry, paid, lev \
            in rows:  # fmt: skip
        if dep_id not in deps:
            deps[dep_id] = (agent, dep_status, mode)
            per[dep_id] = [Decimal(0), Decimal(0), 0, 0, 0]
        if status is None:  # a deployment without positions (outer join)
            continue
        acc = per[dep_id]
        funding += paid or Decimal(0)
        if status == PositionStatus.CLOSED:
            acc[0] += realized or Decimal(0)
            acc[2] += 1
            acc[3] += (realized or 0) > 0
            mine = closed.setdefault(mode, [0, Decimal(0)])
            mine[0] += 1
            mine[1] += realized or Decimal(0)
        else:
            one = (market, Decimal(1 if side == "long" else -1), size, entry, paid, lev)
            acc[1] += open_book([one], prices.price).unrealized_pnl
            acc[4] += 1
            if mode in held:
                held[mode].append(one)
    lines = [
        ctx.t(
            "pnl.line",
            id=dep_id,
            agent=f"{ctx.t(f'tag.{mode}')} {agent}",
            status=ctx.t(f"status.{status}"),
            realized=signed_money(per[dep_id][0]),
            unrealized=signed_money(per[dep_id][1]),
            closed=ctx.tn("n.trades", per[dep_id][2]),
            wins=ctx.tn("n.wins", per[dep_id][3]),
            open=ctx.tn("n.open_positions", per[dep_id][4]),
        )
        for dep_id, (agent, status, mode) in deps.items()
    ]
    books = {mode: open_book(held[mode], prices.price) for mode in MODES}
    return _Lines(lines, funding, books, {m: (c[0], c[1]) for m, c in closed.items()})


def _rolled_up(per_mode: dict[str, dict[date, DayTotals]]) -> dict[str, tuple[int, Decimal]]:
    """Per mode, the trades and PnL the daily rows hold."""
    out = {}
    for mode, days in per_mode.items():
        trades = sum(t.trades for t in days.values())
        if trades:
            out[mode] = (trades, sum((t.realized_pnl for t in days.values()), Decimal(0)))
    return out


async def _read(ctx: Ctx) -> tuple[_Lines, dict[str, dict[date, DayTotals]]]:
    """The user's positions and daily rows, read on one connection; the daily rows are rolled
    up first only when they do not add up to the user's closed positions (a close or a fee
    since the last roll-up, on any replica), not on every /pnl: the rows and the positions
    shown then always agree, which is all the reply needs of the roll-up."""
    async with read_only(ctx.services) as conn:  # Core rows: read-only figures
        rows = (await conn.execute(_DEPLOYMENTS_AND_POSITIONS, {"user_id": ctx.user_id})).all()
        per_mode = await user_days(conn, ctx.user_id)
    lines = _deployment_lines(ctx, rows)
    if lines.closed == _rolled_up(per_mode):
        return lines, per_mode
    await refresh(ctx)
    async with read_only(ctx.services) as conn:
        rows = (await conn.execute(_DEPLOYMENTS_AND_POSITIONS, {"user_id": ctx.user_id})).all()
        per_mode = await user_days(conn, ctx.user_id)
    return _deployment_lines(ctx, rows), per_mode


async def pnl(ctx: Ctx, _: str = "") -> Response:
    read, per_mode = await _read(ctx)
    lines, funding, books = read.lines, read.funding, read.books
    if not lines:
        return Response([Reply(ctx.t("pnl.none"))])
    blocks = [
        _mode_block(ctx, mode, per_mode.get(mode, {}), books[mode])
        for mode in MODES
        if per_mode.get(mode) or books[mode].positions
    ]
    total_r = sum((t.realized_pnl for d in per_mode.values() for t in d.values()), Decimal(0))
    total_u = sum((b.unrealized_pnl for b in books.values()), Decimal(0))
    total = ctx.t(
        "pnl.total",
        realized=signed_money(total_r),
        unrealized=signed_money(total_u),
        net=signed_money(total_r + total_u),
    )
    if funding:
        total += "\n" + ctx.t("pnl.funding", funding=signed_money(funding))
    text = "\n\n".join([ctx.t("pnl.header"), *blocks, *lines, total, ctx.t("pnl.utc_note")])
    daily = Button(ctx.t("pnl.daily_button"), callbacks.make("dy", DAILY_DEFAULT))
    replies = [Reply(text, [[daily]])]
    # the curve of the money that matters most: live if there is any, else paper
    for mode in MODES:
        if per_mode.get(mode):
            picture = await equity_picture(ctx, mode, per_mode[mode])
            if picture is not None:
                total_mode = window_totals(per_mode[mode], None, today(ctx))
                caption = ctx.t(
                    "pnl.chart_caption",
                    mode=ctx.t(f"mode.{mode}"),
                    pnl=signed_money(total_mode.realized_pnl),
                    pct=pct_of(total_mode),
                )
                replies.append(Reply(caption, photo=picture))
            break
    return Response(replies)


async def _daily(ctx: Ctx, count: int, edit: bool = False) -> Response:
    await refresh(ctx)
    end = today(ctx)
    first = end - timedelta(days=count - 1)
    async with ctx.services.sessions() as s:
        per_mode = await user_days(s, ctx.user_id, first)
    if not per_mode:
        return Response([Reply(ctx.t("daily.none", days=count), edit=edit)])
    blocks = []
    for mode in MODES:
        days = per_mode.get(mode)
        if not days:
            continue
        lines = [ctx.t("daily.header", mode=ctx.t(f"mode.{mode}"), days=count)]
        for i in range(count):
            day = end - timedelta(days=i)  # newest first, as a trader reads a journal
            t = days.get(day)
            label = day.strftime("%Y-%m-%d")
            if t is None or not t.trades:
                lines.append(ctx.t("daily.quiet", day=label))
            else:
                lines.append(f"{label}: " + money_and_pct(ctx, t))
        in_all = window_totals(days, first, end)
        lines.append(ctx.t("daily.total") + ": " + money_and_pct(ctx, in_all))
        blocks.append("\n".join(lines))
    buttons = [
        Button(ctx.t("daily.days", days=n), callbacks.make("dy", n)) for n in (7, 30) if n != count
    ]
    return Response([Reply("\n\n".join([*blocks, ctx.t("pnl.utc_note")]), [buttons], edit=edit)])


async def daily(ctx: Ctx, arg: str = "") -> Response:
    arg = arg.strip()
    count = int(arg) if arg.isdigit() and len(arg) < 4 else DAILY_DEFAULT
    return await _daily(ctx, min(max(count, 1), DAILY_MAX))


async def daily_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    return await _daily(ctx, min(max(cb.int_arg(), 1), DAILY_MAX))
