"""Writing and reading the audit trail (storage/models/ops.AuditLog). Callers pass the
session of the action itself, so the row commits or rolls back with what it records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditLog

# words that name a secret: a details key containing one is refused, not stored
_SECRET_WORDS = ("key", "secret", "token", "signature", "password", "ciphertext", "seed")
_PUBLIC_KEYS = frozenset({"agent_key_address", "old_agent", "new_agent"})


def _plain(value: Any) -> Any:
    """JSON-safe: money as its exact decimal string, never a float."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


async def write_audit(
    session: AsyncSession,
    actor_user_id: int | None,
    action: str,
    transport: str,
    target: str = "",
    **details: Any,
) -> None:
    for name in details:
        if name not in _PUBLIC_KEYS and any(word in name.lower() for word in _SECRET_WORDS):
            raise ValueError(f"audit details must not hold secrets ({name!r})")
    session.add(
        AuditLog(
            actor_user_id=actor_user_id,
            action=action[:64],
            target=target[:128],
            details=_plain(details),
            transport=transport[:16],
        )
    )
    await session.flush()


async def audit_of(session: AsyncSession, user_id: int, limit: int = 20) -> list[AuditLog]:
    """A user's own entries, newest first."""
    rows = await session.execute(
        select(AuditLog)
        .where(AuditLog.actor_user_id == user_id)
        .order_by(AuditLog.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())
