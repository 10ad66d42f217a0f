"""/call <TICKER> long|short [note]: an agent's creator posts a call. It becomes a post of
the agent's own source and flows through the same pipeline as any other post."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from engine.classify.base import Classification
from engine.ingest import IncomingPost
from handlers import inputs, wizard
from handlers.alerts import reason_text
from handlers.base import Reply, Response, UserError
from handlers.context import Ctx
from storage.models import Agent, Source

MAX_NOTE = 280


def _markets(ctx: Ctx) -> dict[str, str]:
    """Upper-case ticker -> the venue's own spelling (kPEPE), over every venue we trade."""
    out: dict[str, str] = {}
    for venue in ctx.services.engine.venues.values():
        for name in venue.markets():
            out.setdefault(name.upper(), name)
    return out


async def _my_agents(ctx: Ctx) -> list[tuple[int, str, str]]:
    """(id, name, own source handle) of the creator's active agents."""
    async with ctx.services.sessions() as s:
        return [
            (agent_id, name, handle)
            for agent_id, name, handle in (
                await s.execute(
                    select(Agent.id, Agent.name, Source.handle)
                    .join(Source, Source.id == Agent.own_source_id)
                    .where(Agent.creator_user_id == ctx.user_id, Agent.status == "active")
                    .order_by(Agent.id)
                )
            ).all()
        ]


def _named(
    agents: list[tuple[int, str, str]], args: str
) -> tuple[tuple[int, str, str] | None, str]:
    """`/call <agent> ETH long`: the agent whose name begins the arguments (the longest
    name that does, names may have spaces), and the rest; (None, args) otherwise."""
    folded = args.casefold()
    for agent in sorted(agents, key=lambda a: -len(a[1])):
        name = agent[1].casefold()
        if folded == name or folded.startswith(name + " "):
            return agent, args[len(agent[1]) :].strip()
    return None, args


async def call(ctx: Ctx, args: str) -> Response:
    agents = await _my_agents(ctx)
    chosen, rest = _named(agents, args.strip())
    parts = rest.split(maxsplit=2)
    if len(parts) < 2:
        raise UserError("call.usage")
    ticker = parts[0].lstrip("$").upper()
    side = inputs.side(parts[1])
    note = parts[2][:MAX_NOTE] if len(parts) > 2 else ""
    market = _markets(ctx).get(ticker)
    if market is None:
        raise UserError("call.unknown_market", market=parts[0][:20])
    if not agents:
        raise UserError("call.not_creator")
    if chosen is None and len(agents) > 1:  # which agent's followers get it is asked
        data = {
            "market": market,
            "side": side,
            "side_text": ctx.t(f"side.{side}"),
            "note": note,
            "agents": [name for _, name, _ in agents],
        }
        return await wizard.start(ctx, WHICH, data)
    return await _post(ctx, chosen or agents[0], market, side, note)


async def _post(
    ctx: Ctx, agent: tuple[int, str, str], market: str, side: str, note: str
) -> Response:
    agent_id, name, handle = agent
    now = ctx.services.clock()
    text = f"{side.upper()} ${market}" + (f" — {note}" if note else "")
    lines = []
    reason = "creator call"
    if ctx.services.limits is not None:  # each call trades for every follower: a rate
        rate = await ctx.services.limits.call(agent_id)
        window = ctx.t(f"rate_window.{rate.unit}", n=rate.per)
        if not rate.allowed:
            minutes = max(1, -(-rate.retry_after // 60))
            text = ctx.t("call.throttled", agent=name, limit=rate.limit, window=window,
                         minutes=minutes)  # fmt: skip
            return Response([Reply(text)])
        # followers' alerts show it: this call is n of the agent's allowed calls
        reason = f"creator call {rate.used}/{rate.limit} per {rate.window}"
        lines.append(
            ctx.t("call.rate", agent=name, used=rate.used, limit=rate.limit, window=window)
        )  # fmt: skip
    # one id per (creator, agent, second, call): a double-sent /call is one post, not two
    digest = hashlib.sha256(
        f"{ctx.user_id}:{handle}:{now:%Y%m%d%H%M%S}:{text}".encode()
    ).hexdigest()
    post = IncomingPost(
        "agent",
        handle,
        f"call-{digest[:24]}",
        text,
        now,
        Classification(True, market, side, Decimal(1), "creator", reason),  # type: ignore[arg-type]
    )
    outcome = await ctx.services.engine.ingest(post)
    for sig in outcome.signals:
        if sig.venue is None:
            lines.append(
                ctx.t("call.rejected", agent=name, reason=reason_text(ctx.language, sig.reason))
            )
        else:
            lines.append(ctx.t("call.routed", agent=name, venue=sig.venue))
    if not outcome.signals:
        lines.append(ctx.t("call.no_signal", agent=name))
    head = ctx.t("call.posted", side=ctx.t(f"side.{side}"), market=market)
    return Response([Reply("\n".join([head, *lines]))])


def _agent_choices(ctx: Ctx, data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, name) for name in data["agents"]]


async def _which_summary(ctx: Ctx, data: dict[str, Any]) -> str:  # never shown: no confirm
    return ""


async def _which_finish(ctx: Ctx, data: dict[str, Any]) -> Response:
    agents = await _my_agents(ctx)
    found = [a for a in agents if a[1] == data["agent"]]
    if not found:
        raise UserError("agents.not_found", name=data["agent"])
    response = await _post(ctx, found[0], data["market"], data["side"], data["note"])
    response.replies[0].edit = True
    return response


WHICH = wizard.register(
    wizard.Flow(
        "call",
        [wizard.Step("agent", "call.which_agent", choices=_agent_choices)],
        _which_summary,
        _which_finish,
        confirm=False,
    )
)
