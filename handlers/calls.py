"""/call <TICKER> long|short [note]: an agent's creator posts a call. It becomes a post of
the agent's own source and flows through the same pipeline as any other post."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from sqlalchemy import select

from engine.classify.base import Classification
from engine.ingest import IncomingPost
from handlers import inputs
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


async def call(ctx: Ctx, args: str) -> Response:
    parts = args.split(maxsplit=2)
    if len(parts) < 2:
        raise UserError("call.usage")
    ticker = parts[0].lstrip("$").upper()
    side = inputs.side(parts[1])
    note = parts[2][:MAX_NOTE] if len(parts) > 2 else ""
    market = _markets(ctx).get(ticker)
    if market is None:
        raise UserError("call.unknown_market", market=parts[0][:20])
    async with ctx.services.sessions() as s:
        agents = (
            await s.execute(
                select(Agent.id, Agent.name, Source.handle)
                .join(Source, Source.id == Agent.own_source_id)
                .where(Agent.creator_user_id == ctx.user_id, Agent.status == "active")
                .order_by(Agent.id)
            )
        ).all()
    if not agents:
        raise UserError("call.not_creator")
    now = ctx.services.clock()
    text = f"{side.upper()} ${market}" + (f" — {note}" if note else "")
    lines = []
    for agent_id, name, handle in agents:
        reason = "creator call"
        if ctx.services.limits is not None:  # each call trades for every follower: a rate
            rate = await ctx.services.limits.call(agent_id)
            window = ctx.t(f"rate_window.{rate.unit}", n=rate.per)
            if not rate.allowed:
                minutes = max(1, -(-rate.retry_after // 60))
                lines.append(
                    ctx.t("call.throttled", agent=name, limit=rate.limit, window=window,
                          minutes=minutes)
                )  # fmt: skip
                continue
            # followers' alerts show it: this call is n of the agent's allowed calls
            reason = f"creator call {rate.used}/{rate.limit} per {rate.window}"
            lines.append(
                ctx.t("call.rate", agent=name, used=rate.used, limit=rate.limit, window=window)
            )  # fmt: skip
        # one id per (creator, second, call): a double-sent /call is one post, not two
        digest = hashlib.sha256(f"{ctx.user_id}:{now:%Y%m%d%H%M%S}:{text}".encode()).hexdigest()
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
