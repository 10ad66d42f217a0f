"""Where a leveraged position is liquidated, and which stops can still trigger before it.

Hyperliquid's rule (docs, Trading > Liquidations and Margining): the maintenance margin is half
the initial margin at the asset's max leverage, so its rate is mmr = 1 / (2 * maxLeverage): 1%
for a 50x asset, 16.7% for a 3x one. A position is liquidated when its equity falls below
mmr * notional. The docs give the liquidation price as

    liq_price = price - side * margin_available / position_size / (1 - mmr * side)
    margin_available = isolated_margin - maintenance_margin_required    (isolated)
    side = 1 for a long, -1 for a short

With isolated margin = entry * size / leverage and the requirement taken at entry this is

    long:  entry * (1 - 1/leverage) / (1 - mmr)
    short: entry * (1 + 1/leverage) / (1 + mmr)

e.g. at 20x on a 50x asset (mmr 1%) a long is liquidated 4.04% below entry, a short 3.96%
above it.

Cross margin: there the whole account's equity holds a position up, so its liquidation price
depends on the account. Every check here uses the isolated formula with the position's own
margin only, which is where the position is liquidated with no help from the rest of the
account: the conservative bound, so a stop that passes triggers before that liquidation.

Margin tiers: Hyperliquid lowers the max leverage (raises mmr) for very large positions; the
rate used is the first tier's (`MarketInfo.maintenance_margin_rate`, from the meta's
`maxLeverage`), right for the position sizes Maxxit's collateral caps allow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from engine.markets import MarketInfo, default_markets

ONE = Decimal(1)
ZERO = Decimal(0)


def _check(leverage: Decimal, mmr: Decimal) -> None:
    if leverage <= 0:
        raise ValueError(f"leverage must be positive, not {leverage}")
    if not ZERO <= mmr < ONE:
        raise ValueError(f"maintenance margin rate must be in [0, 1), not {mmr}")


def liquidation_price_for_margin(
    side: str, entry: Decimal, size: Decimal, margin: Decimal, maintenance_margin_rate: Decimal
) -> Decimal:
    """Hyperliquid's isolated liquidation price of `size` held at `entry` on `margin` of
    collateral. 0 for a long that no positive price liquidates (1x: its margin is the whole
    notional)."""
    mmr = maintenance_margin_rate
    if size <= 0:
        raise ValueError(f"size must be positive, not {size}")
    _check(ONE, mmr)
    per_unit = margin / size
    if side == "long":
        return max(ZERO, (entry - per_unit) / (ONE - mmr))
    return (entry + per_unit) / (ONE + mmr)


def liquidation_price(
    side: str, entry: Decimal, leverage: Decimal, maintenance_margin_rate: Decimal
) -> Decimal:
    """The isolated liquidation price of a position opened at `entry` with `leverage`."""
    _check(leverage, maintenance_margin_rate)
    return liquidation_price_for_margin(side, entry, ONE, entry / leverage, maintenance_margin_rate)


def bankruptcy_price(side: str, entry: Decimal, size: Decimal, margin: Decimal) -> Decimal:
    """Where the position has lost exactly its margin: a fill beyond it would lose more."""
    per_unit = margin / size
    return max(ZERO, entry - per_unit) if side == "long" else entry + per_unit


def crossed(side: str, liquidation: Decimal, price: Decimal) -> bool:
    """Has `price` reached the liquidation price (below it for a long, above for a short)?"""
    if side == "long":
        return price <= liquidation
    return price >= liquidation


def liquidation_distance(side: str, leverage: Decimal, maintenance_margin_rate: Decimal) -> Decimal:
    """How far from entry the liquidation is, as a fraction of the entry price."""
    _check(leverage, maintenance_margin_rate)
    mmr = maintenance_margin_rate
    room = ONE / leverage - mmr  # equity above maintenance at entry, per unit of notional
    if side == "long":
        return min(ONE, max(ZERO, room / (ONE - mmr)))
    return max(ZERO, room / (ONE + mmr))


def max_stop_pct(leverage: Decimal, maintenance_margin_rate: Decimal) -> Decimal:
    """A stop loss (fraction of entry) must be below this to trigger before liquidation, long
    or short: the short's distance, the nearer of the two."""
    return min(
        liquidation_distance("long", leverage, maintenance_margin_rate),
        liquidation_distance("short", leverage, maintenance_margin_rate),
    )


@dataclass(frozen=True, slots=True)
class StopLimit:
    """The market where a leverage leaves the least room for a stop, and that room."""

    venue: str
    market: str
    leverage: Decimal  # the leverage a position gets there (capped by the market's max)
    maintenance_margin_rate: Decimal
    long_distance: Decimal
    short_distance: Decimal

    @property
    def max_stop(self) -> Decimal:
        return min(self.long_distance, self.short_distance)


def strictest(leverage: Decimal, markets: Iterable[tuple[str, MarketInfo]]) -> StopLimit | None:
    """Over (venue, market) pairs an agent may trade, the one whose liquidation comes nearest
    to entry at `leverage` (capped by each market's max leverage, as sizing does)."""
    best: StopLimit | None = None
    for venue, m in markets:  # ties keep the listing's order (BTC first in both venues)
        lev = min(leverage, m.max_leverage)
        mmr = m.maintenance_margin_rate
        limit = StopLimit(
            venue,
            m.name,
            lev,
            mmr,
            liquidation_distance("long", lev, mmr),
            liquidation_distance("short", lev, mmr),
        )
        if best is None or limit.max_stop < best.max_stop:
            best = limit
    return best


def unreachable_stop(
    stop_pct: Decimal, leverage: Decimal, markets: Iterable[tuple[str, MarketInfo]]
) -> StopLimit | None:
    """The limit a stop at `stop_pct` of entry breaks (it sits at or past the liquidation
    price somewhere), or None when it triggers first everywhere."""
    limit = strictest(leverage, markets)
    if limit is None or stop_pct < limit.max_stop:
        return None
    return limit


def max_leverage_for_stop(
    stop_pct: Decimal, markets: Iterable[tuple[str, MarketInfo]], upto: Decimal
) -> Decimal | None:
    """The highest whole leverage up to `upto` at which the stop triggers before liquidation
    on every market, or None if not even 1x does."""
    listed = list(markets)
    if upto >= 1 and unreachable_stop(stop_pct, upto, listed) is None:
        return upto
    lev = Decimal(int(upto))
    while lev >= 1:
        if unreachable_stop(stop_pct, lev, listed) is None:
            return lev
        lev -= 1
    return None


def markets_for(
    listings: Mapping[str, Mapping[str, MarketInfo]], venue: str
) -> list[tuple[str, MarketInfo]]:
    """(venue, market) pairs an agent on `venue` may trade: MULTI trades every venue listed.
    A venue missing from `listings` falls back to its default listing."""
    names = list(listings) if venue == "MULTI" else [venue]
    defaults = default_markets()
    return [
        (name, market)
        for name in names
        for market in (listings.get(name) or defaults.get(name, {})).values()
    ]
