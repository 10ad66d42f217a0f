"""What a live account holds on its venue, read from the venue itself (never from our books):
Hyperliquid's clearinghouseState through the SDK's Info; on Ostium the trader's USDC on the
chain and their open trades from the subgraph. Amounts are Decimal, never float."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


class OstiumReader(Protocol):
    async def reader(self) -> Any: ...

    async def open_trades(self, account: str) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class OstiumBalance:
    usdc: Decimal  # in the trader's wallet, outside any trade
    collateral: Decimal  # put up in open trades
    unrealized: Decimal | None  # of the open trades at our latest prices (None: a price missing)

    @property
    def equity(self) -> Decimal | None:
        if self.unrealized is None:
            return None
        return self.usdc + self.collateral + self.unrealized


E6, E18 = Decimal(10**6), Decimal(10**18)  # USDC's decimals; Ostium's prices and sizes


async def ostium_balance(
    venue: OstiumReader, trader: str, mark: Callable[[str], Decimal | None]
) -> OstiumBalance:
    """The trader's USDC (the SDK's balance read on the chain) and their open trades (the
    subgraph), valued at `mark`'s prices."""
    try:
        sdk = await venue.reader()
        address = sdk.w3.to_checksum_address(trader)
        usdc = Decimal(str(await asyncio.to_thread(sdk.balance.get_usdc_balance, address)))
        trades = await venue.open_trades(trader)
    except Exception as exc:  # the node, the subgraph: any of them away
        raise VenueUnreachable(type(exc).__name__) from exc
    collateral, unrealized = Decimal(0), Decimal(0)
    priced = True
    try:
        for market, trade in trades.items():
            collateral += _amount(trade["collateral"]) / E6
            price = mark(market)
            if price is None:
                priced = False
                continue
            size = _amount(trade["tradeNotional"]) / E18
            entry = _amount(trade["openPrice"]) / E18
            unrealized += (price - entry) * size * (1 if trade["isBuy"] else -1)
    except (KeyError, TypeError, InvalidOperation) as exc:
        raise VenueUnreachable("unexpected answer") from exc
    return OstiumBalance(usdc, collateral, unrealized if priced else None)
