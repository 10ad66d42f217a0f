"""The readable side of `maxxit replay` / `maxxit demo`: a live log and a summary table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.events import OrderFailed, PositionClosed, PositionOpened
from engine.replay.runner import ReplayResult, Step, StepHook

Write = Callable[[str], None]


def _t(ts: datetime) -> str:
    return ts.strftime("%m-%d %H:%M")


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def live_log(write: Write) -> StepHook:
    """A line per post (with each agent's routing) and per position opened or closed."""

    def on_step(step: Step) -> None:
        ts = _t(step.ts)
        if step.post is not None and step.outcome is not None:
            c = step.outcome.classification
            verdict = (
                f"{c.side} {c.market} (confidence {c.confidence})"
                if c.is_signal
                else f"no signal: {c.reason}"
            )
            write(f'{ts}  {step.post.source}: "{_short(step.post.text)}" -> {verdict}')
            for s in step.outcome.signals:
                write(
                    f"{'':13}{s.agent}: {s.side} {s.market} -> {s.venue or 'rejected'} ({s.reason})"
                )
        for e in step.events:
            who = step.user_names.get(e.user_id, f"user {e.user_id}")
            if isinstance(e, PositionOpened):
                write(
                    f"{ts}  + #{e.position_id} {who}/{e.agent} {e.side} {e.size} {e.market}"
                    f" on {e.venue} @ {e.entry_price:.6g} (stop {e.stop_price:.6g})"
                )
            elif isinstance(e, PositionClosed):
                write(
                    f"{ts}  - #{e.position_id} {who}/{e.agent} {e.market} {e.close_reason}"
                    f" @ {e.exit_price:.6g}, pnl {e.realized_pnl:+.2f} USD"
                )
            elif isinstance(e, OrderFailed):
                write(f"{ts}  ! {who}/{e.agent} {e.side} {e.market} order failed: {e.reason}")

    return on_step


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
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
        write("  (none: paper deployments pay none, live ones only above their high-water mark)")
    rejected = [r for r in result.routing if r["venue"] is None]
    write("")
    write(f"Routing: {len(result.routing)} signals, {len(rejected)} rejected")
    for r in rejected:
        write(f"  signal {r['signal']} {r['agent']} {r['side']} {r['market']}: {r['reason']}")
