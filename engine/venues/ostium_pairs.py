"""Ostium's pairs as its subgraph lists them: our market names, leverage bounds, the minimum
position (`minLevPos`, USD with leverage), opening fees and rollover, in Decimals.

Units (the subgraph's raw BigInts): leverage x100; minLevPos USD x1e6; makerFeeP / takerFeeP
percent x1e6 (40000 = 0.04 %); rolloverFeePerBlock a fraction of the notional per block x1e18.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.markets import MarketInfo

FX = {"EUR", "GBP", "AUD", "NZD", "CAD", "CHF", "JPY", "MXN"}
E2, E6, E18 = Decimal(100), Decimal(10**6), Decimal(10**18)
ARBITRUM_BLOCKS_PER_HOUR = Decimal(14_400)  # 0.25 s blocks


def market_name(base: str, quote: str) -> str:
    """Canonical tickers shared with Hyperliquid: BTC/USD -> BTC, XAU/USD -> XAU, EUR/USD ->
    EURUSD, USD/JPY -> USDJPY."""
    if quote == "USD" and base not in FX:
        return base
    return base + quote


@dataclass(frozen=True, slots=True)
class OstiumPair:
    id: int
    market: str
    base: str
    quote: str
    group: str
    min_leverage: Decimal
    max_leverage: Decimal
    min_position_usd: Decimal  # collateral x leverage must reach it
    maker_fee: Decimal  # a fraction of the notional (0.0004 = 4 bps)
    taker_fee: Decimal
    rollover_per_block: Decimal  # a fraction of the notional

    @property
    def is_crypto(self) -> bool:
        return self.group.lower() == "crypto"

    def opening_fee_rate(self) -> Decimal:
        """What an opening at market pays: the taker rate (Ostium's maker rate needs leverage
        at most 20x and an order that reduces the open-interest skew: not assumed)."""
        return self.taker_fee

    def rollover_per_hour(self) -> Decimal:
        return self.rollover_per_block * ARBITRUM_BLOCKS_PER_HOUR

    def market_info(self) -> MarketInfo:
        return MarketInfo(
            self.market, max_leverage=self.max_leverage, min_notional=self.min_position_usd
        )


def parse_pair(raw: dict[str, Any]) -> OstiumPair:
    group = raw["group"]
    # as the SDK reads them: a group's bound, when set, overrides the pair's
    group_max = Decimal(group["maxLeverage"])
    max_leverage = (group_max if group_max else Decimal(raw["maxLeverage"])) / E2
    min_leverage = Decimal(group["minLeverage"]) / E2 or Decimal(1)
    return OstiumPair(
        id=int(raw["id"]),
        market=market_name(raw["from"], raw["to"]),
        base=raw["from"],
        quote=raw["to"],
        group=group["name"],
        min_leverage=min_leverage,
        max_leverage=max_leverage,
        min_position_usd=Decimal(raw["fee"]["minLevPos"]) / E6,
        maker_fee=Decimal(raw["makerFeeP"]) / E6 / 100,
        taker_fee=Decimal(raw["takerFeeP"]) / E6 / 100,
        rollover_per_block=Decimal(raw["rolloverFeePerBlock"]) / E18,
    )
