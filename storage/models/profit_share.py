"""What each live close did to its deployment's profit-share high-water mark."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import Money


class ProfitShareClose(CreatedAt, Base):
    """One row per live close counted into `deployments.live_realized_pnl`: the row is what
    makes counting a close twice impossible (it is checked under the deployment's row lock),
    and it says why a follower paid what they paid."""

    __tablename__ = "profit_share_closes"
    position_id: Mapped[int] = mapped_column(
        ForeignKey("positions.id"), primary_key=True, autoincrement=False
    )
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    realized_pnl: Mapped[Decimal] = mapped_column(Money)
    # the deployment's running sum and mark after this close
    cumulative_pnl: Mapped[Decimal] = mapped_column(Money)
    high_water_mark: Mapped[Decimal] = mapped_column(Money)
    # the part of the PnL above the previous mark: what the shares are a cut of
    chargeable_pnl: Mapped[Decimal] = mapped_column(Money)
