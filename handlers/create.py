"""/create: the agent wizard. name -> sources -> venue -> risk -> summary -> Create."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine import liquidation
from engine.ingest import source_id
from engine.markets import MarketInfo
from engine.net.safe_http import SafeFetcher, UnsafeURL
from engine.subscriptions import set_price
from handlers import billing, callbacks, inputs, wizard
from handlers.agents import agent_named
from handlers.base import Button, Reply, Response, UserError
from handlers.context import Ctx
from handlers.create_risk import check_risk, risk_warnings
from handlers.format import lev, money, pct
from storage.bulk import insert_ignore
from storage.enums import PositionPolicy, VenueChoice
from storage.models import Agent, Source, agent_sources

MAX_AGENTS_PER_CREATOR = 20


async def _name(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    name = inputs.agent_name(text)
    async with ctx.services.sessions() as s:
        taken = await agent_named(s, name)
    if taken is not None:
        raise UserError("create.name_taken", name=name)
    return name


MAX_FEED_URL = 200  # the sources.handle column


def _is_url(part: str) -> bool:
    """A feed's URL; an X profile link (https://x.com/CryptoHawk) is a handle instead."""
    return part.lower().startswith(("https://", "http://")) and not inputs.is_profile_url(part)


async def check_feed(ctx: Ctx, url: str) -> None:
    """A research feed's URL: HTTPS to public addresses only (the poller checks each fetch
    again, at connect time)."""
    if len(url) > MAX_FEED_URL:
        raise UserError("create.feed_too_long", max=MAX_FEED_URL)
    fetcher = ctx.services.safe_http or SafeFetcher()
    try:
        await fetcher.check(url)
    except UnsafeURL as exc:
        raise UserError("create.feed_refused", url=url[:80], reason=exc.reason) from None
    finally:
        if ctx.services.safe_http is None:
            await fetcher.aclose()


async def _sources(ctx: Ctx, text: str, _: dict[str, Any]) -> list[str]:
    """X handles and research-feed URLs (RSS or Atom), in any mix."""
    parts = [p for p in text.replace(",", " ").replace(";", " ").split() if p]
    feeds = list(dict.fromkeys(p for p in parts if _is_url(p)))
    others = " ".join(p for p in parts if not _is_url(p))
    handles = inputs.handles(others) if others or not feeds else []
    if len(handles) + len(feeds) > inputs.MAX_SOURCES:
        raise UserError("input.too_many_handles", max=inputs.MAX_SOURCES)
    for url in feeds:
        await check_feed(ctx, url)
    return handles + feeds


async def _usd(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    return inputs.usd(text)


async def _leverage(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    return inputs.leverage(text)


async def _stop(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    stop = inputs.percent(text, "0.1", "90")
    check_stop(ctx, data["venue"], Decimal(data["leverage"]), Decimal(stop))
    return stop


def agent_markets(ctx: Ctx, venue: str) -> list[tuple[str, MarketInfo]]:
    """Every (venue, market) an agent on `venue` may trade, as the engine lists them now."""
    listings = {name: v.markets() for name, v in ctx.services.engine.venues.items()}
    return liquidation.markets_for(listings, venue)


def _pct_down(fraction: Decimal) -> str:
    """A distance shown so that any stop under the number shown is safe: rounded down."""
    return pct((fraction * 100).quantize(Decimal("0.01"), ROUND_DOWN) / 100)


def limit_fields(limit: liquidation.StopLimit, leverage: Decimal, stop: Decimal) -> dict[str, str]:
    """The numbers of a refused stop, for the messages that explain it."""
    return {
        "leverage": lev(leverage),
        "market": limit.market,
        "venue": limit.venue,
        "mmr": _pct_down(limit.maintenance_margin_rate),
        "short": _pct_down(limit.short_distance),
        "long": _pct_down(limit.long_distance),
        "stop": pct(stop),
        "max": _pct_down(limit.max_stop),
    }


def check_stop(ctx: Ctx, venue: str, leverage: Decimal, stop: Decimal) -> None:
    """Refuse a stop loss at or past the liquidation price: it would never trigger, the
    venue would liquidate the position first (engine/liquidation.py)."""
    limit = liquidation.unreachable_stop(stop, leverage, agent_markets(ctx, venue))
    if limit is not None:
        raise UserError("create.stop_past_liquidation", **limit_fields(limit, leverage, stop))


async def _activation(ctx: Ctx, text: str, _: dict[str, Any]) -> wizard.Extra:
    value = inputs.percent(text, "0.1", "1000")
    return wizard.Extra(value, {"trail_activation_pct": pct(value)})


async def _distance(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    distance = inputs.percent(text, "0.1", "50")
    check_risk({**data, "trail_distance": distance})
    return distance


async def _take_profit(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    tp = inputs.percent(text, "0.1", "1000")
    check_risk({**data, "take_profit": tp})
    return tp


async def _share(ctx: Ctx, text: str, _: dict[str, Any]) -> str:
    """Kept as the percent typed ('10'), as the preset buttons store it."""
    return format((Decimal(inputs.percent(text, "0", "50")) * 100).normalize(), "f")


def _shares(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{v}%", v) for v in ("0", "5", "10", "20")]


def share_fraction(data: dict[str, Any]) -> Decimal:
    """The creator's share as stored on the agent (0.1 for '10'); conversations begun
    before the question existed keep the old default of 10%."""
    share = data.get("creator_share")
    return Decimal(share) / 100 if share is not None else Decimal("0.10")


def _venues(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.value, v.value) for v in VenueChoice]


def _policies(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(ctx.t(f"policy.{p.value}"), p.value) for p in PositionPolicy]


def _leverages(ctx: Ctx, _: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"{x}x", str(x)) for x in (1, 2, 3, 5, 10)]


def _risk_fields(ctx: Ctx, data: dict[str, Any]) -> dict[str, str]:
    trail = ctx.t("common.none")
    if data.get("trail_activation") and data.get("trail_distance"):
        trail = f"{pct(data['trail_activation'])} / {pct(data['trail_distance'])}"
    return {
        "name": data["name"],
        "sources": ", ".join(data["sources"]),
        "venue": data["venue"],
        "collateral": money(data["collateral"]),
        "leverage": lev(data["leverage"]),
        "stop": pct(data["stop_loss"]),
        "trail": trail,
        "tp": pct(data["take_profit"]) if data.get("take_profit") else ctx.t("common.none"),
        # conversations begun before the question existed create "ignore", the safe choice
        "policy": ctx.t(f"policy.{data.get('position_policy') or PositionPolicy.IGNORE}"),
    }


async def _summary(ctx: Ctx, data: dict[str, Any]) -> str:
    text = ctx.t("create.summary", **_risk_fields(ctx, data))
    text += "\n" + ctx.t("create.share_line", share=pct(share_fraction(data)))
    if data.get("monthly_price") and Decimal(data["monthly_price"]) > 0:
        text += "\n" + ctx.t("billing.create_price_line", price=money(data["monthly_price"]))
    for warning in risk_warnings(ctx, data):
        text += "\n⚠️ " + warning
    return text + "\n\n" + ctx.t("create.confirm_ask")


async def _x_source_ids(session: AsyncSession, handles: list[str]) -> dict[str, int]:
    """Lower-cased handle -> id of the X sources already stored."""
    rows = await session.execute(
        select(func.lower(Source.handle), Source.id).where(
            Source.kind == "x", func.lower(Source.handle).in_([h.lower() for h in handles])
        )
    )
    return dict(rows.all())


async def _finish(ctx: Ctx, data: dict[str, Any]) -> Response:
    name = data["name"]
    # the stop step checked this; again here in case the markets changed since
    check_stop(ctx, data["venue"], Decimal(data["leverage"]), Decimal(data["stop_loss"]))
    # Back can leave a distance behind after the activation was set to none
    trailing = bool(data.get("trail_activation") and data.get("trail_distance"))
    check_risk(data if trailing else {**data, "trail_activation": None})
    async with ctx.services.sessions() as s, s.begin():
        mine = (
            await s.execute(
                select(func.count()).select_from(Agent).where(Agent.creator_user_id == ctx.user_id)
            )
        ).scalar_one()
        if mine >= MAX_AGENTS_PER_CREATOR:
            raise UserError("create.too_many", max=MAX_AGENTS_PER_CREATOR)
        if await agent_named(s, name) is not None:
            raise UserError("create.name_taken", name=name)
        feeds = [h for h in data["sources"] if _is_url(h)]
        handles = [h for h in data["sources"] if not _is_url(h)]
        await insert_ignore(s, Source, [{"kind": "rss", "handle": url} for url in feeds])
        feed_ids = set(
            (
                await s.execute(
                    select(Source.id).where(Source.kind == "rss", Source.handle.in_(feeds))
                )
            ).scalars()
        )
        # X handles are case-insensitive: @cryptohawk is the source @CryptoHawk already is
        existing = await _x_source_ids(s, handles)
        await insert_ignore(
            s, Source, [{"kind": "x", "handle": h} for h in handles if h.lower() not in existing]
        )
        ids = await _x_source_ids(s, handles)
        own = await source_id(s, "agent", name)
        agent = Agent(
            name=name,
            creator_user_id=ctx.user_id,
            own_source_id=own,
            venue=data["venue"],
            venue_preference=["HYPERLIQUID", "OSTIUM"] if data["venue"] == "MULTI" else [],
            leverage=Decimal(data["leverage"]),
            stop_loss_pct=Decimal(data["stop_loss"]),
            take_profit_pct=Decimal(data["take_profit"]) if data.get("take_profit") else None,
            trailing_activation_pct=Decimal(data["trail_activation"]) if trailing else None,
            trailing_distance_pct=Decimal(data["trail_distance"]) if trailing else None,
            default_collateral_usd=Decimal(data["collateral"]),
            position_policy=data.get("position_policy") or PositionPolicy.IGNORE,
            creator_share_pct=share_fraction(data),
        )
        s.add(agent)
        await s.flush()
        source_ids = {ids[h.lower()] for h in handles} | {own} | feed_ids
        await s.execute(
            agent_sources.insert(), [{"agent_id": agent.id, "source_id": i} for i in source_ids]
        )
        agent_id = agent.id
        if data.get("monthly_price") and Decimal(data["monthly_price"]) > 0:
            await set_price(s, agent_id, Decimal(data["monthly_price"]))
    deploy = Button(ctx.t("agents.deploy", name=name[:20]), callbacks.make("dp", agent_id))
    return Response([Reply(ctx.t("create.done", name=name), [[deploy]], edit=True)])


FLOW = wizard.register(
    wizard.Flow(
        "create",
        [
            wizard.Step("name", "create.ask_name", _name),
            wizard.Step("sources", "create.ask_sources_or_feeds", _sources),
            wizard.Step("venue", "create.ask_venue", choices=_venues),
            wizard.Step("collateral", "create.ask_collateral", _usd),
            wizard.Step("leverage", "create.ask_leverage", _leverage, _leverages),
            wizard.Step("stop_loss", "create.ask_stop", _stop),
            wizard.Step(
                "trail_activation", "create.ask_trail_activation", _activation, optional=True
            ),
            wizard.Step(
                "trail_distance",
                "create.ask_trail_distance",
                _distance,
                when=lambda d: bool(d.get("trail_activation")),
            ),
            wizard.Step("take_profit", "create.ask_take_profit", _take_profit, optional=True),
            wizard.Step("position_policy", "create.ask_position_policy", choices=_policies),
            wizard.Step("creator_share", "create.ask_creator_share", _share, _shares),
            # asked only where Stripe is configured (billing.billing_on)
            wizard.Step(
                "monthly_price",
                "billing.ask_price",
                billing.price_step,
                optional=True,
                when=lambda d: bool(d.get("billing_on")),
            ),
        ],
        _summary,
        _finish,
        confirm_label="create.confirm",
    )
)


async def create(ctx: Ctx, _: str = "") -> Response:
    return await wizard.start(ctx, FLOW, {"billing_on": billing.billing_on(ctx)})


async def create_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return await wizard.start(ctx, FLOW, {"billing_on": billing.billing_on(ctx)})
