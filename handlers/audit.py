"""The audit trail from the chat: what a handler records when a user moves or risks money or
custody, and /audit, which shows a user their own entries (never anyone else's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.base import Reply, Response
from handlers.context import Ctx
from storage.audit import audit_of, write_audit

SHOWN = 20


async def record(
    session: AsyncSession, ctx: Ctx, action: str, target: str = "", **details: Any
) -> None:
    """One row in the action's own transaction: who, from which app, what changed."""
    await write_audit(session, ctx.user_id, action, ctx.request.platform, target, **details)


async def record_after(ctx: Ctx, action: str, target: str = "", **details: Any) -> None:
    """For an action the engine carried out in its own transaction: the outcome, recorded
    right after it."""
    async with ctx.services.sessions() as s, s.begin():
        await record(s, ctx, action, target, **details)


def _details(details: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items() if v is not None and v != "")


async def audit(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s:
        rows = await audit_of(s, ctx.user_id, SHOWN)
    if not rows:
        return Response([Reply(ctx.t("audit.none"))])
    lines = [ctx.t("audit.header", count=len(rows))]
    for row in rows:
        lines.append(
            ctx.t(
                "audit.line",
                when=f"{row.created_at:%Y-%m-%d %H:%M} UTC",
                action=ctx.t(f"audit.action.{row.action}"),
                target=row.target,
                transport=row.transport or "-",
                details=_details(row.details or {}),
            )
        )
    return Response([Reply("\n".join(lines))])
