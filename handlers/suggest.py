"""Suggestions while the user types a command option (Discord's autocomplete): the names of
active agents matching what was typed so far. Read-only; works for any chat app."""

from __future__ import annotations

from sqlalchemy import func, select

from handlers.base import Services
from storage.models import Agent

MAX_CHOICES = 25  # Discord shows at most 25


async def agent_names(services: Services, typed: str, limit: int = MAX_CHOICES) -> list[str]:
    """Active agents whose name contains `typed` (any case), those starting with it first."""
    needle = "".join(typed.split()).lower()[:64]
    # LIKE wildcards in what the user typed match themselves, not anything
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Agent.name)
        .where(Agent.status == "active", func.lower(Agent.name).like(f"%{escaped}%", escape="\\"))
        .order_by(func.lower(Agent.name))
        .limit(200)
    )
    async with services.sessions() as s:
        names = list((await s.execute(query)).scalars())
    names.sort(key=lambda n: not n.lower().startswith(needle))  # stable: keeps name order
    return names[:limit]
