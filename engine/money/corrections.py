"""Corrections to a closed position's realized PnL (a fee settled from the venue's fills,
funding paid after the close was recorded) and what they mean for profit share.

The rule: profit share is written once, at close (engine/fills.py), one ledger row per
position and kind. A later correction changes the position's realized PnL, and the ledger
only where the position has no ledger rows yet (a close first recorded as a loss, or at
zero, that the venue's real fees and funding turn into a profit gets its share then). Rows
already written are left as they are: they may have been reported or paid, and the
correction is the difference between an estimated and a charged fee (a few hundredths of a
basis point of the notional) or an hour's funding, which the next close's share does not
try to claw back."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.billing import profit_share_rows
from engine.fills import _signal_info, q
from storage.bulk import insert_ignore
from storage.enums import PositionStatus
from storage.models import Deployment, LedgerEntry, Position


async def share_if_unshared(session: AsyncSession, position_ids: Iterable[int]) -> int:
    """Profit share for closed positions among `position_ids` that have no ledger rows yet,
    on their (corrected) realized PnL. Returns the rows written."""
    ids = list(set(position_ids))
    if not ids:
        return 0
    shared = set(
        (
            await session.execute(
                select(LedgerEntry.position_id).where(LedgerEntry.position_id.in_(ids))
            )
        )
        .scalars()
        .all()
    )
    rows = (
        await session.execute(
            select(Position.id, Position.signal_id, Position.realized_pnl, Deployment.user_id)
            .join(Deployment, Deployment.id == Position.deployment_id)
            .where(
                Position.id.in_([i for i in ids if i not in shared]),
                Position.status == PositionStatus.CLOSED,
            )
        )
    ).all()
    # compared here, not in SQL: SQLite keeps money as text
    rows = [r for r in rows if r.realized_pnl is not None and r.realized_pnl > 0]
    if not rows:
        return 0
    info = await _signal_info(session, {r.signal_id for r in rows})
    ledger = []
    for r in rows:
        ledger += profit_share_rows(r.id, r.user_id, r.realized_pnl, info[r.signal_id].terms)
    await insert_ignore(session, LedgerEntry, [{**e, "amount": q(e["amount"])} for e in ledger])
    return len(ledger)
