"""Classify a post once, then make one signal per agent that follows its source and whose
filters pass."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.classify.base import Classification
from engine.ingest import content_hash
from storage.bulk import insert_ignore
from storage.enums import SignalStatus
from storage.models import Agent, ClassificationRow, Post, Signal, agent_sources


def _from_row(row: ClassificationRow, **extra: Any) -> Classification:
    return Classification(
        is_signal=row.is_signal,
        market=row.market,
        side=row.side,  # type: ignore[arg-type]
        confidence=row.confidence,
        classifier=row.classifier,
        reason=row.reason,
        markets_mentioned=tuple(row.details.get("markets_mentioned", ())),
        details=dict(row.details) | extra,
    )


@dataclass(frozen=True, slots=True)
class KnownClassification:
    result: Classification | None  # None: the classifier must be asked
    cached: bool = False  # reused from a post with the same text


async def known_classification(
    session: AsyncSession, post_id: int, text: str, given: Classification | None = None
) -> KnownClassification:
    """What is known without asking the classifier: the post's own stored classification (a
    restart, a second replica), the one given with the post (a creator's call), or that of a
    post with the same text (a repost, the same call from two sources: an LLM is paid once
    per text)."""
    row = (
        await session.execute(select(ClassificationRow).where(ClassificationRow.post_id == post_id))
    ).scalar_one_or_none()
    if row is not None:
        return KnownClassification(_from_row(row))
    if given is not None:
        return KnownClassification(given)
    same = (
        await session.execute(
            select(ClassificationRow)
            .join(Post, Post.id == ClassificationRow.post_id)
            .where(
                Post.content_hash == content_hash(text),
                ClassificationRow.classifier != "creator",  # a call is its creator's own
            )
            .order_by(ClassificationRow.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if same is not None:
        return KnownClassification(_from_row(same, cached_from=same.post_id), cached=True)
    return KnownClassification(None)


async def save_classification(
    session: AsyncSession, post_id: int, result: Classification, cached: bool = False
) -> Classification:
    """Store the post's classification once and return the stored one: when two replicas
    classified the same post, the first stored answer is the one both act on."""
    tokens = (0, 0) if cached else (result.tokens_in, result.tokens_out)
    await insert_ignore(
        session,
        ClassificationRow,
        [
            {
                "post_id": post_id,
                "classifier": result.classifier[:16],
                "is_signal": result.is_signal,
                "market": result.market,
                "side": result.side,
                "confidence": result.confidence,
                "reason": result.reason[:500],
                "details": {**result.details, "markets_mentioned": list(result.markets_mentioned)},
                "tokens_in": tokens[0],
                "tokens_out": tokens[1],
            }
        ],
    )
    row = (
        await session.execute(select(ClassificationRow).where(ClassificationRow.post_id == post_id))
    ).scalar_one()
    if row.classifier == result.classifier[:16] and row.reason == result.reason[:500]:
        return result  # ours: keep the in-memory details (tokens, rationale) as they are
    return _from_row(row)


@dataclass(frozen=True, slots=True)
class AgentFilterResult:
    agent_id: int
    accepted: bool
    reason: str


def passes_filters(agent: Agent, c: Classification) -> AgentFilterResult:
    if not c.is_signal or c.market is None or c.side is None:
        return AgentFilterResult(agent.id, False, f"not a signal: {c.reason}")
    if c.confidence < agent.min_confidence:
        return AgentFilterResult(
            agent.id, False, f"confidence {c.confidence} below {agent.min_confidence}"
        )
    if agent.allowed_markets and c.market not in agent.allowed_markets:
        return AgentFilterResult(agent.id, False, f"{c.market} not in the agent's markets")
    return AgentFilterResult(agent.id, True, "accepted")


async def make_signals(
    session: AsyncSession,
    post_id: int,
    source_id: int,
    posted_at: datetime,
    c: Classification,
    price: Decimal | None,
) -> list[Signal]:
    """Signals of this post (new and already made), one per interested agent."""
    agents = (
        (
            await session.execute(
                select(Agent)
                .join(agent_sources, agent_sources.c.agent_id == Agent.id)
                .where(agent_sources.c.source_id == source_id, Agent.status == "active")
            )
        )
        .scalars()
        .all()
    )
    rows = [
        {
            "agent_id": a.id,
            "post_id": post_id,
            "market": c.market,
            "side": c.side,
            "confidence": c.confidence
            if isinstance(c.confidence, Decimal)
            else Decimal(c.confidence),
            "status": SignalStatus.NEW,
            "signal_at": posted_at,
            "reference_price": price,
        }
        for a in agents
        if passes_filters(a, c).accepted
    ]
    await insert_ignore(session, Signal, rows)
    return list(
        (await session.execute(select(Signal).where(Signal.post_id == post_id).order_by(Signal.id)))
        .scalars()
        .all()
    )
