"""Profit share's split: the agent's creator and the signal's source each get their cut of
an amount, as ledger rows (one per position and kind, so never twice). Which amount, and for
which closes, engine/profit_share.py decides: live closes only, and only the part of the PnL
above the deployment's high-water mark."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from storage.enums import LedgerKind


@dataclass(frozen=True, slots=True)
class ShareTerms:
    agent_name: str
    creator_user_id: int | None
    creator_share_pct: Decimal
    source_id: int
    source_handle: str
    source_owner_user_id: int | None
    source_share_pct: Decimal


def profit_share_rows(
    position_id: int, payer_user_id: int, realized_pnl: Decimal, terms: ShareTerms
) -> list[dict[str, Any]]:
    if realized_pnl <= 0:
        return []
    rows = []
    # an agent without a creator (a house agent) takes no creator share: nobody to pay
    if terms.creator_share_pct > 0 and terms.creator_user_id is not None:
        rows.append(
            {
                "position_id": position_id,
                "kind": LedgerKind.CREATOR_SHARE,
                "payer_user_id": payer_user_id,
                "beneficiary_user_id": terms.creator_user_id,
                "beneficiary_source_id": None,
                "beneficiary": f"creator:{terms.agent_name}",
                "amount": realized_pnl * terms.creator_share_pct,
            }
        )
    # the source is paid even before anyone claims it (beneficiary_user_id is then empty)
    if terms.source_share_pct > 0:
        rows.append(
            {
                "position_id": position_id,
                "kind": LedgerKind.SOURCE_SHARE,
                "payer_user_id": payer_user_id,
                "beneficiary_user_id": terms.source_owner_user_id,
                "beneficiary_source_id": terms.source_id,
                "beneficiary": f"source:{terms.source_handle}",
                "amount": realized_pnl * terms.source_share_pct,
            }
        )
    return rows
