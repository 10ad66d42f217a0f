"""Hyperliquid's order-number rules, exactly: sizes have at most `szDecimals` decimals;
prices at most 5 significant figures and at most `6 - szDecimals` decimals (integer prices
are always allowed); an order's value must be at least $10.

Sizes round down (never more than the trader asked for); an IOC limit price rounds away from
the mid in the direction that still fills (up for a buy, down for a sell) only as far as the
rules force, so the slippage cap is respected to within one tick.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

MAINNET_URL = "https://api.hyperliquid.xyz"
TESTNET_URL = "https://api.hyperliquid-testnet.xyz"
MAX_DECIMALS_PERP = 6
SIG_FIGS = 5
MIN_NOTIONAL = Decimal(10)


def round_size(size: Decimal, sz_decimals: int) -> Decimal:
    return size.quantize(Decimal(1).scaleb(-sz_decimals), rounding=ROUND_DOWN)


def _allowed_decimals(price: Decimal, sz_decimals: int) -> int:
    if price <= 0:
        raise ValueError("price must be positive")
    digits_before_point = price.adjusted() + 1  # 123.45 -> 3; 0.0123 -> -1
    by_sig_figs = SIG_FIGS - digits_before_point
    return max(0, min(MAX_DECIMALS_PERP - sz_decimals, by_sig_figs))


def round_price(price: Decimal, sz_decimals: int, is_buy: bool) -> Decimal:
    """The nearest valid price on the side that keeps an IOC order marketable."""
    decimals = _allowed_decimals(price, sz_decimals)
    rounding = ROUND_CEILING if is_buy else ROUND_FLOOR
    rounded = price.quantize(Decimal(1).scaleb(-decimals), rounding=rounding)
    if rounded.adjusted() != price.adjusted():  # 99999.5 -> 100000: one figure more, recheck
        return round_price(rounded, sz_decimals, is_buy)
    return rounded  # an integer is always valid, however many figures it has


def is_valid_price(price: Decimal, sz_decimals: int) -> bool:
    if price <= 0:
        return False
    if price == price.to_integral_value():
        return True
    exponent = price.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    significant = len(price.normalize().as_tuple().digits)
    return decimals <= MAX_DECIMALS_PERP - sz_decimals and significant <= SIG_FIGS


def is_valid_size(size: Decimal, sz_decimals: int) -> bool:
    return size > 0 and round_size(size, sz_decimals) == size


def wire(value: Decimal) -> str:
    """Hyperliquid's wire form: no exponent, no trailing zeros ("2000", "0.123")."""
    return format(value.normalize(), "f")
