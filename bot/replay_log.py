"""The readable side of `maxxit replay` / `maxxit demo`: a live log and a summary table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.events import Event, OrderFailed, PositionClosed, PositionOpened, SignalRejected
from engine.pipeline import PostOutcome
from engine.replay.runner import ReplayHooks, ReplayResult

Write = Callable[[str], None]


def _t(ts: datetime) -> str:
    return ts.strftime("%m-%d %H:%M")


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def live_hooks(write: Write, users: dict[int, str] | None = None) -> ReplayHooks:
    def on_post(ts: datetime, source: str, text: str, outcome: PostOutcome) -> None:
        c = outcome.classification
        verdict = (
            f"{c.side} {c.market} ({c.confidence})" if c.is_signal else f"no signal: {c.reason}"
        )
        write(f'{_t(ts)}  {source}: "{_short(text)}" -> {verdict}')
        for s in outcome.signals:
            where = s.venue or "rejected"
            write(f"{'':13}agent {s.agent}: {s.side} {s.market} -> {where} ({s.reason})")

    def on_event(ts: datetime, e: Event) -> None:
        if isinstance(e, PositionOpened):
            write(
                f"{_t(ts)}  opened  #{e.position_id} {e.agent} {e.side} {e.size} {e.market}"
                f" on {e.venue} @ {e.entry_price:.6g}, stop {e.stop_price:.6g}"
            )
        elif isinstance(e, PositionClosed):
            write(
                f"{_t(ts)}  closed  #{e.position_id} {e.market} {e.close_reason}"
                f" @ {e.exit_price:.6g}, pnl {e.realized_pnl:+.2f}"
            )
        elif isinstance(e, OrderFailed):
            write(f"{_t(ts)}  order failed: {e.agent} {e.side} {e.market}: {e.reason}")
        elif isinstance(e, SignalRejected) and users is None:
            pass  # already shown with the post

    return ReplayHooks(on_post=on_post, on_event=on_event)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    return [line.format(*header), line.format(*["-" * w for w in widths])] + [
        line.format(*r) for r in rows
    ]


def _d(v: Any, fmt: str = ".2f") -> str:
    return "" if v is None else format(Decimal(v), fmt)


def summary(result: ReplayResult, write: Write) -> None:
    write("")
    write("Positions")
    rows = [
        [
            p["agent"],
            p["user"],
            p["market"],
            p["side"],
            p["venue"],
            _d(p["entry_price"], ".6g"),
            _d(p["exit_price"], ".6g"),
            p["size"],
            p["close_reason"] or "open",
            _d(p["fees"]),
            _d(p["realized_pnl"], "+.2f"),
        ]
        for p in result.positions
    ]
    for line in _table(
        rows,
        [
            "agent",
            "user",
            "market",
            "side",
            "venue",
            "entry",
            "exit",
            "size",
            "closed by",
            "fees",
            "pnl",
        ],
    ):
        write("  " + line)
    total = sum((Decimal(p["realized_pnl"] or 0) for p in result.positions), Decimal(0))
    wins = sum(1 for p in result.positions if Decimal(p["realized_pnl"] or 0) > 0)
    write(f"  {len(result.positions)} positions, {wins} winners, total pnl {total:+.2f} USD")
    write("")
    write("Profit share")
    by: dict[str, Decimal] = {}
    for e in result.ledger:
        by[f"{e['kind']} -> {e['beneficiary']}"] = by.get(
            f"{e['kind']} -> {e['beneficiary']}", Decimal(0)
        ) + Decimal(e["amount"])
    for k, v in sorted(by.items()):
        write(f"  {k}: {v:.4f} USD")
    if not by:
        write("  (no profitable closes)")
    rejected = [r for r in result.routing if r["venue"] is None]
    write("")
    write(f"Routing: {len(result.routing)} signals, {len(rejected)} rejected")
    for r in rejected:
        write(f"  signal {r['signal']} {r['agent']} {r['side']} {r['market']}: {r['reason']}")
