"""/settings: language, which alerts to receive, personal risk limits (max leverage, max
collateral per trade, daily loss limit that pauses the user's deployments)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from engine.notify import ALERT_DEFAULTS, wants
from handlers import audit, callbacks, inputs, wizard
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.format import lev, money
from handlers.i18n import SUPPORTED, t
from storage.models import User

LIMITS = {  # setting key -> (callback arg, parser)
    "max_leverage": ("lev", inputs.leverage),
    "max_collateral_usd": ("usd", inputs.usd),
    "daily_loss_limit_usd": ("loss", inputs.usd),
}
_BY_ARG = {arg: key for key, (arg, _) in LIMITS.items()}


def _shown(ctx: Ctx, key: str, value: Any) -> str:
    if value in (None, ""):
        return ctx.t("settings.no_limit")
    return lev(value) if key == "max_leverage" else money(value)


def _view(ctx: Ctx) -> Reply:
    s = ctx.settings
    alerts = "\n".join(
        f"{'✅' if wants(s, kind) else '▫️'} {ctx.t(f'settings.alert.{kind}')}"
        for kind in ALERT_DEFAULTS
    )
    text = ctx.t(
        "settings.view",
        language=t(ctx.language, "language.name"),
        alerts=alerts,
        max_leverage=_shown(ctx, "max_leverage", s.get("max_leverage")),
        max_collateral=_shown(ctx, "max_collateral_usd", s.get("max_collateral_usd")),
        daily_loss=_shown(ctx, "daily_loss_limit_usd", s.get("daily_loss_limit_usd")),
    )
    rows = [[Button(t(lang, "language.name"), callbacks.make("sl", lang)) for lang in SUPPORTED]]
    kinds = list(ALERT_DEFAULTS)
    for i in range(0, len(kinds), 2):
        rows.append(
            [
                Button(
                    ("✅ " if wants(s, k) else "▫️ ") + ctx.t(f"settings.alert.{k}"),
                    callbacks.make("sa", i + j),
                )
                for j, k in enumerate(kinds[i : i + 2])
            ]
        )
    rows.append(
        [
            Button(ctx.t(f"settings.limit.{key}"), callbacks.make("sx", arg))
            for key, (arg, _) in LIMITS.items()
        ]
    )
    return Reply(text, rows)


async def settings(ctx: Ctx, _: str = "") -> Response:
    return Response([_view(ctx)])


async def _store(ctx: Ctx, **changes: Any) -> None:
    """Read-modify-write of the settings JSON in one transaction."""
    async with ctx.services.sessions() as s, s.begin():
        current = (
            await s.execute(select(User.settings).where(User.id == ctx.user_id))
        ).scalar_one()
        merged = dict(current or {})
        language = changes.pop("language", None)
        alerts = changes.pop("alerts", None)
        if alerts:
            merged["alerts"] = {**(merged.get("alerts") or {}), **alerts}
        merged.update(changes)
        values: dict[str, Any] = {"settings": merged}
        if language:
            values["language"] = language
        await s.execute(update(User).where(User.id == ctx.user_id).values(**values))
        for key in changes.keys() & LIMITS.keys():  # personal risk limits are on the record
            await audit.record(
                s, ctx, "risk_setting", f"setting:{key}", before=current.get(key) if current
                else None, after=changes[key],
            )  # fmt: skip
    ctx.forget()  # once committed too: a read racing the commit may have kept the old ones
    ctx.settings = merged
    if language:
        ctx.language = language


async def language_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    lang = cb.args[0] if cb.args else ""
    if lang not in SUPPORTED:
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    await _store(ctx, language=lang)
    reply = _view(ctx)
    reply.edit = True
    return Response([reply], notice=ctx.t("settings.saved"))


async def alert_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    kinds = list(ALERT_DEFAULTS)
    try:
        kind = kinds[cb.int_arg()]
    except (ValueError, IndexError):
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    await _store(ctx, alerts={kind: not wants(ctx.settings, kind)})
    reply = _view(ctx)
    reply.edit = True
    return Response([reply], notice=ctx.t("settings.saved"))


async def _parse_limit(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    return LIMITS[data["setting"]][1](text)


async def _limit_summary(ctx: Ctx, data: dict[str, Any]) -> str:
    key = data["setting"]
    return ctx.t(
        "settings.limit_confirm",
        name=ctx.t(f"settings.limit.{key}"),
        value=_shown(ctx, key, data.get("value")),
    )


async def _limit_finish(ctx: Ctx, data: dict[str, Any]) -> Response:
    await _store(ctx, **{data["setting"]: data.get("value")})
    reply = _view(ctx)
    reply.edit = True
    return Response([reply], notice=ctx.t("settings.saved"))


LIMIT_FLOW = wizard.register(
    wizard.Flow(
        "limit",
        [wizard.Step("value", "settings.ask_limit", _parse_limit, optional=True)],
        _limit_summary,
        _limit_finish,
        confirm_label="settings.save",
    )
)


async def limit_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    key = _BY_ARG.get(cb.args[0] if cb.args else "")
    if key is None:
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    name = ctx.t(f"settings.limit.{key}")
    return await wizard.start(
        ctx,
        LIMIT_FLOW,
        {"setting": key, "name": name, "current": _shown(ctx, key, ctx.settings.get(key))},
    )
