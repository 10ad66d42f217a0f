"""Ostium's refusals in words. A reverted Ostium transaction does not raise in the SDK (it
sends with a fixed gas limit, so the revert is mined: receipt status 0, no order id), so the
venue preflights each call with eth_call and decodes the revert: a custom error of the trading
contract's ABI (the SDK's own ABI file), or an ERC-20 revert string from USDC."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eth_utils import keccak
from ostium_python_sdk.abi.trading_abi import trading_abi

from engine.venues.base import VenueRejected


def _signature(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry.get('inputs', []))})"


# 4-byte selector (hex, no 0x) -> error name, from the ABI the SDK ships
ERRORS = {
    keccak(text=_signature(e))[:4].hex(): e["name"] for e in trading_abi if e["type"] == "error"
}
ERROR_STRING = "08c379a0"  # Error(string)

# Ostium's cancel reasons (MarketOpenCanceled / MarketCloseCanceled)
CANCEL_REASONS = {
    0: "no price from the oracle",
    1: "the market is closed",
    2: "the price moved beyond the allowed slippage",
    3: "the take profit is already reached",
    4: "the stop loss is already reached",
    5: "exposure limits",
    6: "price impact too high",
    7: "above the maximum allowed collateral",
    8: "below the minimum position size",
}


def revert_data(exc: BaseException) -> str:
    """The hex revert data web3 attached to a ContractLogicError (or found in its text)."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return data[2:]
    text = str(exc)
    at = text.find("0x")
    return text[at + 2 :].split("'")[0].split(",")[0].strip() if at >= 0 else ""


def decode(data: str) -> str:
    """The error's name, or the revert string, from hex revert data."""
    selector = data[:8].lower()
    if selector == ERROR_STRING:
        body = bytes.fromhex(data[8:])
        length = int.from_bytes(body[32:64], "big")
        return body[64 : 64 + length].decode(errors="replace")
    return ERRORS.get(selector, f"unknown error 0x{selector}")


def refusal(
    error: str,
    market: str,
    min_position: Decimal | None = None,
    leverage: Decimal | None = None,
    leverage_bounds: tuple[Decimal, Decimal] | None = None,
) -> VenueRejected:
    """A decoded revert as a refusal: a short reason code and a sentence for the user."""
    if error == "BelowMinLevPos":
        size = f" (${min_position:,.0f} with leverage)" if min_position else ""
        return VenueRejected(
            "below_min_size", f"below the minimum position size for {market}{size}"
        )
    if error == "WrongLeverage":
        bounds = f" ({leverage_bounds[0]:g}x to {leverage_bounds[1]:g}x)" if leverage_bounds else ""
        return VenueRejected(
            "leverage_out_of_bounds", f"leverage {leverage:g}x is outside {market}'s bounds{bounds}"
        )
    if error in ("NoDelegate", "NotDelegate"):
        return VenueRejected(
            "delegation_missing",
            "Maxxit's agent key is not your Ostium delegate: approve it on the connect page",
        )
    if "allowance" in error:
        return VenueRejected(
            "allowance_missing",
            "Ostium may not take your USDC as collateral yet: approve it on the connect page",
        )
    if "exceeds balance" in error:
        return VenueRejected("insufficient_balance", "not enough USDC in your wallet")
    words = {
        "PairNotListed": ("not_listed", f"{market} is not listed on Ostium"),
        "AboveMaxAllowedCollateral": ("above_max_collateral", "above Ostium's maximum collateral"),
        "MaxTradesPerPairReached": ("too_many_trades", f"too many open trades in {market}"),
        "MaxPendingMarketOrdersReached": ("too_many_pending", "too many orders waiting"),
        "ExposureLimits": ("exposure_limits", f"Ostium's exposure limit for {market} is reached"),
        "IsPaused": ("venue_paused", "Ostium trading is paused"),
        "NoTradeFound": ("no_position", f"no open {market} trade on Ostium"),
        "AlreadyMarketClosed": ("close_pending", f"a close of {market} is already waiting"),
        "WrongTP": ("bad_take_profit", "the take profit is on the wrong side of the price"),
        "WrongSL": ("bad_stop_loss", "the stop loss is on the wrong side of the price"),
    }
    code, text = words.get(error, ("reverted", f"Ostium refused the order: {error}"))
    return VenueRejected(code, text)
