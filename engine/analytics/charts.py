"""Pictures traders share: an equity curve with its drawdown, and a card for a closed trade.

matplotlib with the Agg backend, through its object API (one Figure per call, no pyplot
state), so `render` can draw in a worker thread while the event loop goes on. Sized for a
phone: 1080 px wide, large type, high contrast on a dark background (Telegram shows photos
edge to edge). Amounts arrive as Decimal and become floats only to be drawn."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ParamSpec

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter

BACKGROUND = "#0f1419"
PANEL = "#161c24"
TEXT = "#e6edf3"
MUTED = "#8b98a5"
GRID = "#2a3440"
GREEN = "#1fd286"
RED = "#ff5c5c"
BLUE = "#4da3ff"
DPI = 135

P = ParamSpec("P")


# drawing is CPU under the GIL: a burst of close alerts draws two at a time, leaving the
# event loop (and the other worker threads) room to run
_DRAWING = threading.BoundedSemaphore(2)


async def render(draw: Callable[P, bytes], *args: P.args, **kwargs: P.kwargs) -> bytes:
    """Draw off the event loop: a chart takes tens of milliseconds of CPU."""

    def bounded() -> bytes:
        with _DRAWING:
            return draw(*args, **kwargs)

    return await asyncio.to_thread(bounded)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, facecolor=fig.get_facecolor())
    return out.getvalue()


def _money(value: float) -> str:
    sign = "-" if value < 0 else ("+" if value > 0 else "")
    amount = abs(value)
    if amount >= 10_000:
        return f"{sign}${amount / 1000:,.1f}k"
    return f"{sign}${amount:,.2f}" if amount < 100 else f"{sign}${amount:,.0f}"


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%" if value else "0%"


def _style(ax: Any) -> None:
    ax.set_facecolor(PANEL)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)
    ax.tick_params(colors=MUTED, labelsize=13, length=0, pad=8)
    ax.grid(True, color=GRID, linewidth=0.8, alpha=0.8)
    ax.set_axisbelow(True)


@dataclass(frozen=True, slots=True)
class CurveLabels:
    title: str  # "ETH Momentum · live"
    subtitle: str  # "+12.4% · Sharpe 1.8 · 42 trades"
    value_axis: str  # "Return" / "PnL"
    drawdown_axis: str  # "Drawdown"
    empty: str  # said in the middle when there is nothing to draw yet
    gain: bool = True  # the subtitle in green (a gain) or red (a loss)


def equity_curve(
    days: Sequence[date],
    values: Sequence[Decimal],
    drawdown: Sequence[Decimal],
    labels: CurveLabels,
    as_money: bool,
) -> bytes:
    """`values` per day: cumulative PnL (as_money) or cumulative return (a fraction);
    `drawdown` per day: the fall from the running peak, a fraction >= 0."""
    fig = Figure(figsize=(8, 8), facecolor=BACKGROUND)
    grid = fig.add_gridspec(
        2, 1, height_ratios=(3, 1.1), hspace=0.08, left=0.15, right=0.95, top=0.83, bottom=0.08
    )
    top = fig.add_subplot(grid[0])
    bottom = fig.add_subplot(grid[1], sharex=top)
    fig.text(0.05, 0.94, labels.title, color=TEXT, fontsize=22, fontweight="bold")
    fig.text(0.05, 0.885, labels.subtitle, fontsize=16, color=GREEN if labels.gain else RED)
    for ax in (top, bottom):
        _style(ax)
    fmt = _money if as_money else _pct
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v) * 100:.0f}%"))
    top.set_ylabel(labels.value_axis, color=MUTED, fontsize=13)
    bottom.set_ylabel(labels.drawdown_axis, color=MUTED, fontsize=13)
    if len(days) < 2:
        top.text(
            0.5,
            0.5,
            labels.empty,
            transform=top.transAxes,
            ha="center",
            va="center",
            color=MUTED,
            fontsize=18,
            wrap=True,
        )
        top.set_yticks([])
        bottom.set_yticks([])
        top.tick_params(labelbottom=False)
        bottom.set_xticks([])
        return _png(fig)
    ys = [float(v) for v in values]
    top.plot(days, ys, color=BLUE, linewidth=3, solid_capstyle="round")
    top.fill_between(
        days, ys, 0, where=[y >= 0 for y in ys], color=GREEN, alpha=0.18, interpolate=True
    )
    top.fill_between(
        days, ys, 0, where=[y < 0 for y in ys], color=RED, alpha=0.18, interpolate=True
    )
    top.axhline(0, color=MUTED, linewidth=1, alpha=0.6)
    top.scatter([days[-1]], [ys[-1]], color=BLUE, s=60, zorder=3)
    top.tick_params(labelbottom=False)
    dd = [-float(d) for d in drawdown]
    bottom.fill_between(days, dd, 0, color=RED, alpha=0.45, linewidth=0)
    bottom.plot(days, dd, color=RED, linewidth=1.5)
    bottom.set_ylim(min(min(dd), -0.01) * 1.15, 0)
    locator = AutoDateLocator(minticks=3, maxticks=5)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    return _png(fig)


@dataclass(frozen=True, slots=True)
class TradeCard:
    agent: str
    market: str
    side_label: str  # "LONG" in the user's language
    is_long: bool
    return_pct: Decimal  # on margin (ROE), a fraction
    pnl: Decimal
    entry_label: str  # "Entry"
    entry: str  # the price as the bot writes it
    exit_label: str
    exit: str
    footer: str  # "Take profit · 2026-11-20 10:00 UTC · paper"
    leverage: str = ""  # "5x"


def trade_card(card: TradeCard) -> bytes:
    """A closed trade as a 1080 x 1080 px card: who, what, the result in large type."""
    fig = Figure(figsize=(8, 8), facecolor=BACKGROUND)
    win = card.pnl >= 0
    accent = GREEN if win else RED
    fig.patches.append(
        FancyBboxPatch(
            (0.05, 0.05),
            0.9,
            0.9,
            boxstyle="round,pad=0,rounding_size=0.04",
            transform=fig.transFigure,
            facecolor=PANEL,
            edgecolor=accent,
            linewidth=3,
        )
    )
    fig.text(0.11, 0.84, card.agent, color=MUTED, fontsize=22)
    fig.text(0.11, 0.72, card.market, color=TEXT, fontsize=44, fontweight="bold")
    badge = f" {card.side_label} {card.leverage} ".rstrip() + " "
    fig.text(
        0.89,
        0.735,
        badge,
        color=BACKGROUND,
        fontsize=20,
        fontweight="bold",
        ha="right",
        bbox={
            "boxstyle": "round,pad=0.35",
            "facecolor": GREEN if card.is_long else RED,
            "edgecolor": "none",
        },
    )
    fig.text(
        0.11, 0.5, f"{card.return_pct * 100:+.2f}%", color=accent, fontsize=76, fontweight="bold"
    )
    sign = "+" if win else "-"
    fig.text(0.11, 0.415, f"{sign}${abs(card.pnl):,.2f}", color=accent, fontsize=32)
    fig.add_artist(
        Line2D([0.11, 0.89], [0.33, 0.33], color=GRID, linewidth=1.5, transform=fig.transFigure)
    )
    fig.text(0.11, 0.255, card.entry_label, color=MUTED, fontsize=18)
    fig.text(0.11, 0.195, card.entry, color=TEXT, fontsize=26, fontweight="bold")
    fig.text(0.55, 0.255, card.exit_label, color=MUTED, fontsize=18)
    fig.text(0.55, 0.195, card.exit, color=TEXT, fontsize=26, fontweight="bold")
    fig.text(0.11, 0.105, card.footer, color=MUTED, fontsize=15)
    return _png(fig)
