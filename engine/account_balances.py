"""What a live account holds on its venue, read from the venue itself (never from our books):
Hyperliquid's clearinghouseState through the SDK's Info. Amounts are Decimal, as the venue
sends them (strings)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol


class InfoReader(Protocol):
    async def info(self, kind: str, body: dict[str, Any]) -> Any: ...


class VenueUnreachable(Exception):
    """The venue did not answer (network, 5xx, rate limit) or answered nonsense."""


@dataclass(frozen=True, slots=True)
class HyperliquidBalance:
    account_value: Decimal  # margin summary: the account's equity, unrealized PnL included
    withdrawable: Decimal
    margin_used: Decimal


def _amount(value: Any) -> Decimal:
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise InvalidOperation(value)
    return amount


async def hyperliquid_balance(venue: InfoReader, address: str) -> HyperliquidBalance:
    try:
        state = await venue.info("clearinghouseState", {"user": address})
    except Exception as exc:  # the SDK raises its own errors, requests' and ours alike
        raise VenueUnreachable(type(exc).__name__) from exc
    try:
        summary = state["marginSummary"]
        return HyperliquidBalance(
            _amount(summary["accountValue"]),
            _amount(state["withdrawable"]),
            _amount(summary["totalMarginUsed"]),
        )
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise VenueUnreachable("unexpected answer") from exc
