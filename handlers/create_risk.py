"""An agent's risk settings that contradict each other are refused; extreme ones are
allowed with a warning in the summary. Percentages are of the entry price, not of margin:
at 10x a 3% stop loses about 30% of the margin, which the warning says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from handlers.base import UserError
from handlers.context import Ctx
from handlers.format import lev, pct

HIGH_LEVERAGE = Decimal(20)
# a stop that loses at least this share of the margin (stop % x leverage) gets a warning
HEAVY_STOP_LOSS_OF_MARGIN = Decimal("0.5")
TIGHT_STOP = Decimal("0.005")  # under 0.5% of the price: ordinary noise triggers it


def _d(data: dict[str, Any], key: str) -> Decimal | None:
    value = data.get(key)
    return None if value in (None, "") else Decimal(str(value))


def check_risk(data: dict[str, Any]) -> None:
    """Refuse a trailing distance at or past its activation (the trail would start below the
    entry: a 'profit' trail that locks in a loss) and a take profit at or below the gain
    where trailing starts (it would close the trade before the trail ever ran)."""
    activation, distance = _d(data, "trail_activation"), _d(data, "trail_distance")
    tp = _d(data, "take_profit")
    if activation is not None and distance is not None and distance >= activation:
        raise UserError("create.trail_wider", distance=pct(distance), activation=pct(activation))
    if activation is not None and tp is not None and tp <= activation:
        raise UserError("create.tp_below_trail", tp=pct(tp), activation=pct(activation))


def risk_warnings(ctx: Ctx, data: dict[str, Any]) -> list[str]:
    out = []
    leverage, stop = _d(data, "leverage"), _d(data, "stop_loss")
    if leverage is not None and leverage >= HIGH_LEVERAGE:
        out.append(ctx.t("create.warn_leverage", leverage=lev(leverage)))
    if leverage is not None and stop is not None:
        loss = stop * leverage
        if loss >= HEAVY_STOP_LOSS_OF_MARGIN:
            out.append(
                ctx.t(
                    "create.warn_stop_margin",
                    stop=pct(stop),
                    leverage=lev(leverage),
                    loss=pct(loss),
                )
            )
    if stop is not None and stop < TIGHT_STOP:
        out.append(ctx.t("create.warn_tight_stop", stop=pct(stop)))
    return out
