"""The readable side of `maxxit replay` / `maxxit demo`, in a trader's words: a live log (each
post, what each agent did with it, each position opened and closed) and a summary with
per-user totals and returns on the margin put up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from engine.events import OrderFailed, PositionClosed, PositionOpened
from engine.replay.runner import ReplayResult, Step, StepHook
from handlers.alerts import reason_text

Write = Callable[[str], None]

VENUES = {"HYPERLIQUID": "Hyperliquid", "OSTIUM": "Ostium"}
ROUTES = {  # engine/route.py's reasons
    "listed": "its venue lists {market}",
    "first_preference_listing": "its first-choice venue that lists {market}",
    "not_listed": "its venue does not list {market}",
    "not_listed_anywhere": "no venue lists {market}",
    "no_price": "no price for {market} yet",
}


def _t(ts: datetime) -> str:
    return ts.strftime("%m-%d %H:%M")


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _venue(name: str | None) -> str:
    return VENUES.get(name or "", name or "")


def _route(reason: str, market: str) -> str:
    return ROUTES.get(reason, reason.replace("_", " ")).format(market=market)


def _closed_by(reason: str | None) -> str:
    if not reason:
        return "still open"
    return reason_text("en", reason)


def _usd(value: Any, signed: bool = False) -> str:
    d = Decimal(value or 0)
    text = f"${abs(d):,.2f}"
    if signed:
        return ("+" if d >= 0 else "-") + text
    return text


def live_log(write: Write) -> StepHook:
    """A line per post (with what each agent did) and per position opened or closed."""

    def on_step(step: Step) -> None:
        ts = _t(step.ts)
        if step.post is not None and step.outcome is not None:
            c = step.outcome.classification
            verdict = (
                f"a {str(c.side).upper()} call on {c.market}"
                f" ({(Decimal(c.confidence) * 100):.0f}% sure)"
                if c.is_signal
                else f"not a trade call ({c.reason})"
            )
            write(f'{ts}  {step.post.source}: "{_short(step.post.text)}" -> {verdict}')
            for s in step.outcome.signals:
                if s.venue:
                    write(
                        f"{'':13}{s.agent} trades it on {_venue(s.venue)}"
                        f" ({_route(s.reason, s.market)})"
                    )
                else:
                    write(f"{'':13}{s.agent} skips it: {_route(s.reason, s.market)}")
        for e in step.events:
            who = step.user_names.get(e.user_id, f"user {e.user_id}")
            if isinstance(e, PositionOpened):
                write(
                    f"{ts}  + {who} (following {e.agent}) opened {e.side.upper()} {e.size}"
                    f" {e.market} on {_venue(e.venue)} at {e.entry_price:.6g},"
                    f" {e.leverage:g}x, stop {e.stop_price:.6g}"
                )
            elif isinstance(e, PositionClosed):
                write(
                    f"{ts}  - {who} (following {e.agent}) closed {e.side.upper()} {e.market}"
                    f" at {e.exit_price:.6g} ({_closed_by(e.close_reason)}):"
                    f" {_usd(e.realized_pnl, signed=True)}"
                )
            elif isinstance(e, OrderFailed):
                write(
                    f"{ts}  ! {who} (following {e.agent}): the {e.side.upper()} {e.market}"
                    f" order failed ({reason_text('en', e.reason)})"
                )

    return on_step


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*header), line.format(*["-" * w for w in widths])] + [
        line.format(*r) for r in rows
    ]


def _d(v: Any, fmt: str = ".2f") -> str:
    return "" if v is None else format(Decimal(v), fmt)


def _margin(p: dict[str, Any]) -> Decimal:
    """What the position put up: its notional at entry over its leverage."""
    leverage = Decimal(p.get("leverage") or 1)
    return Decimal(p["size"]) * Decimal(p["entry_price"]) / (leverage or 1)


def _pct(part: Decimal, whole: Decimal) -> str:
    return f"{(part / whole * 100):+.2f}%" if whole else "-"


def summary(result: ReplayResult, write: Write) -> None:
    write("")
    write("Positions")
    rows = [
        [
            p["user"],
            p["agent"],
            f"{p['side'].upper()} {p['market']}",
            _venue(p["venue"]),
            _d(p["entry_price"], ".6g"),
            _d(p["exit_price"], ".6g"),
            p["size"],
            _closed_by(p["close_reason"]),
            _usd(p["fees"]),
            _usd(p["realized_pnl"], signed=True),
            _pct(Decimal(p["realized_pnl"] or 0), _margin(p)),
        ]
        for p in result.positions
    ]
    header = ["user", "agent", "trade", "venue", "entry", "exit", "size", "closed by"]
    for line in _table(rows, [*header, "fees", "profit", "on margin"]):
        write("  " + line)
    total = sum((Decimal(p["realized_pnl"] or 0) for p in result.positions), Decimal(0))
    wins = sum(1 for p in result.positions if Decimal(p["realized_pnl"] or 0) > 0)
    write(
        f"  {len(result.positions)} positions, {wins} winners, total pnl {_usd(total, signed=True)}"
    )
    _per_user(result, write)
    write("")
    write("Profit share")
    by: dict[str, Decimal] = {}
    for e in result.ledger:
        by[_beneficiary(e["beneficiary"])] = by.get(
            _beneficiary(e["beneficiary"]), Decimal(0)
        ) + Decimal(e["amount"])
    for k, v in sorted(by.items()):
        write(f"  {k} received {_usd(v)}")
    if not by:
        write("  (none: paper deployments pay none, live ones only above their high-water mark)")
    rejected = [r for r in result.routing if r["venue"] is None]
    write("")
    write(f"Calls: {len(result.routing)} reached agents, {len(rejected)} of them skipped")
    for r in rejected:
        write(
            f"  {r['agent']} skipped {str(r['side']).upper()} {r['market']}:"
            f" {_route(r['reason'], r['market'])}"
        )


def _beneficiary(code: str) -> str:
    """'creator:PerpSniper' -> "PerpSniper's creator"; 'source:@MacroMia' -> '@MacroMia'."""
    kind, _, name = code.partition(":")
    if kind == "creator":
        return f"{name}'s creator"
    if kind == "source":
        return f"source {name}"
    return code


def _per_user(result: ReplayResult, write: Write) -> None:
    """Each user's trades, profit and return on the margin their positions put up."""
    users: dict[str, list[dict[str, Any]]] = {}
    for p in result.positions:
        users.setdefault(p["user"], []).append(p)
    if not users:
        return
    write("")
    write("Per user")
    rows = []
    for user, mine in sorted(users.items()):
        pnl = sum((Decimal(p["realized_pnl"] or 0) for p in mine), Decimal(0))
        margin = sum((_margin(p) for p in mine), Decimal(0))
        won = sum(1 for p in mine if Decimal(p["realized_pnl"] or 0) > 0)
        rows.append(
            [
                user,
                str(len(mine)),
                str(won),
                _usd(margin),
                _usd(pnl, signed=True),
                _pct(pnl, margin),
            ]
        )
    for line in _table(rows, ["user", "trades", "won", "margin used", "profit", "return"]):
        write("  " + line)
