"""Profit share that is fair: recorded for a batch of closes, in the transaction that closes
them.

- Only live trades pay. A position is live when its account is not a paper account: the
  account is what the venue router (engine/venues/routed.py) sent its orders by, so it says
  whether real money moved; the deployment's mode is only the user's choice at /deploy.
- A high-water mark per deployment: each live close adds its realized PnL to the deployment's
  running sum, and the creator and the source are paid a cut of the part of that sum above
  its previous peak only. A follower never pays on a win that merely wins back earlier
  losses. Closes of one deployment in one batch count in close time, then position id, order.
- A creator's own call (a post of the agent's own source) pays no source share while that
  source is unclaimed: nobody else made the call.
- Recording the same close twice pays once: each counted close leaves a row in
  `profit_share_closes`, checked while the deployment's row is locked (SELECT ... FOR UPDATE
  on PostgreSQL; SQLite lets one writer in at a time), so two processes recording closes of
  one deployment at once count each close once and see each other's running sums.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.billing import ShareTerms, profit_share_rows
from engine.venues.routed import is_paper
from storage.bulk import insert_ignore, insert_rows, update_by_id
from storage.models import (
    Agent,
    Deployment,
    LedgerEntry,
    Position,
    Post,
    ProfitShareClose,
    Signal,
    Source,
)
from storage.types import quantize

ZERO = Decimal(0)


class ClosedTrade(NamedTuple):  # one per close of a tick: a NamedTuple is made 4x faster
    """A position just closed in our books, with its realized PnL (net of fees)."""

    position_id: int
    realized_pnl: Decimal
    closed_at: datetime
    account: str | None = None  # its venue account, when known: paper pays no share


@dataclass(frozen=True, slots=True)
class _Payer:
    deployment_id: int
    user_id: int
    terms: ShareTerms


@dataclass(slots=True)
class _Mark:
    total: Decimal  # the deployment's live realized PnL so far
    peak: Decimal  # the highest `total` has been (never below zero)


async def record_profit_share(
    session: AsyncSession, closes: list[ClosedTrade]
) -> list[dict[str, Any]]:
    """Count these closes into their deployments' high-water marks and write the ledger rows
    they pay. Returns the rows written (amounts quantized as stored); a close counted before
    (by this or another process) is skipped. Call inside the transaction closing them."""
    # a tick's paper closes (accounts known) need no look-up to be left out
    closes = [c for c in closes if c.account is None or not is_paper(c.account)]
    payers = await _live_payers(session, [c.position_id for c in closes])
    live = sorted(
        (c for c in closes if c.position_id in payers),
        key=lambda c: (c.closed_at, c.position_id),
    )
    if not live:
        return []
    marks = await _lock_marks(session, {payers[c.position_id].deployment_id for c in live})
    counted = await _counted(session, [c.position_id for c in live])
    rows: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for c in live:
        if c.position_id in counted:
            continue
        counted.add(c.position_id)  # the same close twice in one batch counts once too
        payer = payers[c.position_id]
        mark = marks[payer.deployment_id]
        pnl = quantize(c.realized_pnl)
        total = mark.total + pnl
        peak = max(mark.peak, total)
        chargeable = peak - mark.peak
        mark.total, mark.peak = total, peak
        audit.append(
            {
                "position_id": c.position_id,
                "deployment_id": payer.deployment_id,
                "realized_pnl": pnl,
                "cumulative_pnl": total,
                "high_water_mark": peak,
                "chargeable_pnl": chargeable,
            }
        )
        for r in profit_share_rows(c.position_id, payer.user_id, chargeable, payer.terms):
            rows.append({**r, "amount": quantize(r["amount"])})
    await insert_rows(session, ProfitShareClose, audit)
    touched = {a["deployment_id"] for a in audit}
    await update_by_id(
        session,
        Deployment,
        [
            {"id": d, "live_realized_pnl": m.total, "live_high_water_mark": m.peak}
            for d, m in marks.items()
            if d in touched
        ],
    )
    # the (position, kind) key is a second guard: a row already there is left as it is
    await insert_ignore(session, LedgerEntry, rows)
    return rows


async def _live_payers(session: AsyncSession, position_ids: list[int]) -> dict[int, _Payer]:
    """Who pays whom for each live position among these; paper positions are left out."""
    if not position_ids:
        return {}
    found = await session.execute(
        select(
            Position.id,
            Position.account,
            Deployment.id,
            Deployment.user_id,
            Agent.name,
            Agent.creator_user_id,
            Agent.creator_share_pct,
            Agent.source_share_pct,
            Agent.own_source_id,
            Source.id,
            Source.handle,
            Source.owner_user_id,
        )
        .join(Deployment, Deployment.id == Position.deployment_id)
        .join(Signal, Signal.id == Position.signal_id)
        .join(Agent, Agent.id == Signal.agent_id)
        .join(Post, Post.id == Signal.post_id)
        .join(Source, Source.id == Post.source_id)
        .where(Position.id.in_(position_ids))
    )
    out = {}
    for (
        pid,
        account,
        dep_id,
        user_id,
        agent,
        creator,
        creator_pct,
        source_pct,
        own_source,
        source_id,
        handle,
        owner,
    ) in found:
        if is_paper(account):
            continue
        terms = ShareTerms(agent, creator, creator_pct, source_id, handle, owner, source_pct)
        if source_id == own_source and owner is None:
            # the creator's own call: an unclaimed own source is the creator, paid already
            terms = replace(terms, source_share_pct=ZERO)
        out[pid] = _Payer(dep_id, user_id, terms)
    return out


async def _lock_marks(session: AsyncSession, deployment_ids: set[int]) -> dict[int, _Mark]:
    """The deployments' running sums, their rows locked until the transaction ends; in id
    order, so two processes locking overlapping sets wait rather than deadlock."""
    found = await session.execute(
        select(Deployment.id, Deployment.live_realized_pnl, Deployment.live_high_water_mark)
        .where(Deployment.id.in_(deployment_ids))
        .order_by(Deployment.id)
        .with_for_update(key_share=True)
    )
    return {d: _Mark(total, peak) for d, total, peak in found}


async def _counted(session: AsyncSession, position_ids: list[int]) -> set[int]:
    found = await session.execute(
        select(ProfitShareClose.position_id).where(ProfitShareClose.position_id.in_(position_ids))
    )
    return set(found.scalars())
