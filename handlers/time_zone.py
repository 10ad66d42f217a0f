"""Times as the user reads them: in the time zone they chose (/timezone Europe/Madrid), or in
UTC, always with the zone written out."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.base import Reply, Response, UserError
from handlers.context import Ctx
from handlers.settings import _store

KEY = "time_zone"


def zone_of(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when(moment: datetime | str, zone_name: str | None = None) -> str:
    """'2026-11-20 11:05 Europe/Madrid', or '2026-11-20 10:05 UTC' without a zone."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:  # stored as UTC
        moment = moment.replace(tzinfo=UTC)
    zone = zone_of(zone_name)
    if zone is None:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + str(zone.key)


def user_when(ctx: Ctx, moment: datetime) -> str:
    return when(moment, ctx.settings.get(KEY))


async def time_zone(ctx: Ctx, args: str) -> Response:
    name = args.strip()
    if not name:
        current = ctx.settings.get(KEY) or "UTC"
        return Response([Reply(ctx.t("tz.current", zone=current))])
    if name.upper() == "UTC":
        await _store(ctx, **{KEY: None})
        return Response(
            [Reply(ctx.t("tz.saved", zone="UTC", now=user_when(ctx, ctx.services.clock())))]
        )
    zone = zone_of(name)
    if zone is None:
        raise UserError("tz.unknown", zone=name[:64])
    await _store(ctx, **{KEY: zone.key})
    return Response(
        [Reply(ctx.t("tz.saved", zone=zone.key, now=user_when(ctx, ctx.services.clock())))]
    )
