"""What a venue lists: market names, size precision, leverage limits, minimum notional.

Offline listings emulate the real venues: Hyperliquid's perps as its recorded `meta` answer
lists them (`engine/venues/recorded/hyperliquid_meta.json`: every live perp with its size
decimals and max leverage, delisted ones left out) and Ostium's crypto, forex, commodity and
index pairs. Market names are canonical tickers shared by both venues ("BTC", "EURUSD", "XAU").
The paper venue of `maxxit run` trades what `engine.classify.catalog.MarketCatalog` lists: the
recorded listings offline, the live venues' once read, so paper and the classifier never
disagree on what exists. `default_markets()` is a fixed, smaller listing for tests and replays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from engine.venues.hyperliquid_rules import MIN_NOTIONAL as HYPERLIQUID_MIN_NOTIONAL

DEFAULT_SIZE_DECIMALS = 6
RECORDED_META = "recorded/hyperliquid_meta.json"


def half_initial_at_max(max_leverage: Decimal) -> Decimal:
    """Hyperliquid's maintenance margin rate: half the initial margin at max leverage."""
    return Decimal(1) / (2 * Decimal(max_leverage))


@dataclass(frozen=True, slots=True)
class MarketInfo:
    name: str
    size_decimals: int = DEFAULT_SIZE_DECIMALS
    max_leverage: Decimal = Decimal(50)
    min_notional: Decimal = Decimal(0)
    # equity below this fraction of the notional is liquidated (engine/liquidation.py).
    # None: Hyperliquid's rule from max_leverage, also used for paper and Ostium markets
    # (Ostium's own rule, a close at 90% of the collateral lost, is not modelled yet)
    maintenance_margin_rate: Decimal = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.maintenance_margin_rate is None:
            mmr = half_initial_at_max(self.max_leverage)
            object.__setattr__(self, "maintenance_margin_rate", mmr)


# (name, szDecimals, maxLeverage): a fixed listing in the shape of Hyperliquid's 2024 meta, for
# tests and replays that must not move when the recorded meta is re-recorded. What paper trades
# in `maxxit run` is the recorded meta (or the live one), through the catalog.
_HYPERLIQUID = [
    ("BTC", 5, 50),
    ("ETH", 4, 50),
    ("ATOM", 2, 50),
    ("MATIC", 1, 50),
    ("DYDX", 1, 50),
    ("SOL", 2, 50),
    ("AVAX", 2, 50),
    ("BNB", 3, 50),
    ("APE", 1, 50),
    ("OP", 1, 50),
    ("LTC", 2, 50),
    ("ARB", 1, 50),
    ("DOGE", 0, 50),
    ("INJ", 1, 50),
    ("SUI", 1, 50),
    ("kPEPE", 0, 50),
    ("CRV", 1, 50),
    ("LDO", 1, 50),
    ("LINK", 1, 50),
    ("STX", 1, 50),
    ("RNDR", 1, 50),
    ("CFX", 0, 50),
    ("FTM", 0, 50),
    ("GMX", 2, 50),
    ("SNX", 1, 50),
    ("XRP", 0, 50),
    ("BCH", 3, 50),
    ("APT", 2, 50),
    ("HYPE", 2, 10),
    ("WIF", 0, 10),
    ("TIA", 1, 10),
    ("SEI", 0, 10),
]

# Ostium: synthetic perps on Arbitrum; no size step of its own, so the default precision
_OSTIUM = [
    ("BTC", 50),
    ("ETH", 50),
    ("SOL", 50),
    ("EURUSD", 100),
    ("GBPUSD", 100),
    ("USDJPY", 100),
    ("XAU", 100),
    ("XAG", 100),
    ("CL", 50),
    ("SPX", 50),
    ("NDX", 50),
]


def markets_from_meta(meta: Mapping[str, Any]) -> dict[str, MarketInfo]:
    """The tradable perps of a Hyperliquid `meta` answer (delisted ones left out)."""
    out = {}
    for asset in meta.get("universe", []):
        if asset.get("isDelisted"):
            continue
        max_leverage = Decimal(asset.get("maxLeverage", 50))
        out[asset["name"]] = MarketInfo(
            asset["name"],
            int(asset["szDecimals"]),
            max_leverage,
            HYPERLIQUID_MIN_NOTIONAL,
            half_initial_at_max(max_leverage),  # HL: maintenance = half initial at max
        )
    return out


def recorded_hyperliquid_meta() -> dict[str, Any]:
    raw = resources.files("engine.venues").joinpath(RECORDED_META).read_text("utf-8")
    return json.loads(raw)["response"]


def recorded_hyperliquid_markets() -> dict[str, MarketInfo]:
    """Hyperliquid's listing offline: its recorded `meta` universe (189 perps)."""
    return markets_from_meta(recorded_hyperliquid_meta())


def hyperliquid_markets() -> dict[str, MarketInfo]:
    """The fixed 32-market listing of tests and replays (see _HYPERLIQUID)."""
    return {
        n: MarketInfo(n, size_decimals=d, max_leverage=Decimal(lev), min_notional=Decimal(10))
        for n, d, lev in _HYPERLIQUID
    }


def ostium_markets() -> dict[str, MarketInfo]:
    return {
        n: MarketInfo(n, max_leverage=Decimal(lev), min_notional=Decimal(5)) for n, lev in _OSTIUM
    }


def default_markets() -> dict[str, dict[str, MarketInfo]]:
    return {"HYPERLIQUID": hyperliquid_markets(), "OSTIUM": ostium_markets()}


def markets_from_names(
    names: Iterable[str], defaults: Mapping[str, MarketInfo]
) -> dict[str, MarketInfo]:
    """A configured list of names; each takes the default's precision when we know it."""
    return {n: defaults.get(n, MarketInfo(n)) for n in names}
