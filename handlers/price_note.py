"""A line saying no prices reach the server (PRICE_FEED=none, or the feed unreachable):
without prices signals are skipped and stops cannot fire, which users must know."""

from __future__ import annotations

from handlers.context import Ctx


def no_prices_note(ctx: Ctx) -> str | None:
    if ctx.services.engine.prices.markets():
        return None
    return "⚠️ " + ctx.t("prices.none_reachable")
