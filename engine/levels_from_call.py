"""A position's protective levels when its call stated some: "Long BTC here, sl 94000, tp 100000"
keeps the caller's stop and take profit instead of the agent's percentages, within the agent's
risk limit, which wins:

- a stated stop is used when it is on the losing side of the fill and no farther from it than
  the agent's own stop (`stop_loss_pct` is the most the agent will lose on a position); a
  farther one is refused and the agent's stop stays;
- a stated take profit is used when it is on the winning side of the fill;
- a stated entry is the open's limit (engine/limit_orders.py: at market within the range,
  else resting at it) and is reported with the fill; levels on the wrong side of the fill are
  refused, never flipped.

The user's own limits (leverage, collateral, daily loss) act at sizing, before this point.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from engine.levels import RiskLevels, RiskParams


@dataclass(frozen=True, slots=True)
class CallLevels:
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    entry_to: Decimal | None = None  # the other end of an entry range ("3,150-3,200")

    @classmethod
    def of(cls, levels: dict[str, Decimal]) -> CallLevels | None:
        if not levels:
            return None
        return cls(
            levels.get("entry"),
            levels.get("stop_loss"),
            levels.get("take_profit"),
            levels.get("entry_to"),
        )


@dataclass(frozen=True, slots=True)
class LevelsFromCall:
    levels: RiskLevels
    used: tuple[str, ...] = ()  # "entry", "stop_loss", "take_profit"
    refused: tuple[str, ...] = ()


def initial_levels(
    side: str, fill_price: Decimal, params: RiskParams, call: CallLevels | None
) -> LevelsFromCall:
    levels = RiskLevels.initial(side, fill_price, params)
    if call is None:
        return LevelsFromCall(levels)
    long = side == "long"
    used: list[str] = []
    refused: list[str] = []
    if call.entry is not None:
        used.append("entry")
    if call.stop_loss is not None:
        losing_side = call.stop_loss < fill_price if long else call.stop_loss > fill_price
        within_limit = call.stop_loss >= levels.stop if long else call.stop_loss <= levels.stop
        if losing_side and within_limit:
            levels = replace(levels, stop=call.stop_loss)
            used.append("stop_loss")
        else:
            refused.append("stop_loss")
    if call.take_profit is not None:
        winning_side = call.take_profit > fill_price if long else call.take_profit < fill_price
        if winning_side:
            levels = replace(levels, take_profit=call.take_profit)
            used.append("take_profit")
        else:
            refused.append("take_profit")
    return LevelsFromCall(levels, tuple(used), tuple(refused))
