"""Corrections to a closed position's realized PnL (a fee settled from the venue's fills,
funding paid before the close but accrued after it was recorded) and what they mean for profit
share.

The rule: profit share is settled once, at close (engine/fills.py -> engine/profit_share.py),
on the realized PnL known then, and counted into the deployment's high-water mark. A later
correction changes the position's realized PnL (what /pnl and analytics show) but not the share
nor the mark: the share may already have been reported or paid, and the correction is the
difference between an estimated and a charged fee (hundredths of a basis point of the notional)
or an hour's funding. Re-running the high-water mark over corrected history would move shares
between followers' past trades; that is a billing decision left to the billing issue."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession


async def share_if_unshared(session: AsyncSession, position_ids: Iterable[int]) -> int:
    """Kept as the one place a correction would touch profit share: by the rule above, it
    writes nothing. Returns the rows written (0)."""
    del session, position_ids
    return 0
