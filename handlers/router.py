"""One entry point for every chat app: `Bot.handle(Request) -> Response`.

Finds (or creates) the user, then dispatches a command, a button press or free text (the
answer to the current wizard step). Bad input gets a clear message; a bug gets an apology
and a log line, never a crash of the transport.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from handlers import (
    accounts,
    agents,
    approvals,
    audit,
    billing,
    billing_cancel,
    callbacks,
    channels,
    create,
    deploy,
    hyperliquid_approval,
    my_agents,
    performance,
    positions,
    positions_close_all,
    safe_module,
    settings,
    start,
    wallet,
    wizard,
)
from handlers.approvals_list import pending_approvals
from handlers.balance import balance
from handlers.base import MAX_TEXT, Reply, Request, Response, Services, UserError
from handlers.calls import call
from handlers.context import Ctx, resolve
from handlers.format import LANGUAGE
from handlers.i18n import t
from handlers.known_users import KnownUsers
from handlers.limits import Admission, slow_down
from handlers.monitor import monitor
from handlers.time_zone import time_zone

log = logging.getLogger(__name__)

Command = Callable[[Ctx, str], Awaitable[Response]]
ButtonHandler = Callable[[Ctx, callbacks.Callback], Awaitable[Response]]

COMMANDS: dict[str, Command] = {
    "start": start.start,
    "help": start.help_,
    "agents": agents.list_agents,
    "create": create.create,
    "deploy": deploy.deploy,
    "deployments": deploy.list_deployments,
    "positions": positions.positions,
    "monitor": monitor,
    "history": positions.history,
    "pnl": performance.pnl,
    "call": call,
    "settings": settings.settings,
    "link": wallet.link,
    "wallet": wallet.wallet,
    "balance": balance,
    "unlink": wallet.unlink,
    "billing": billing.billing,
    "price": billing.price,
    "email": channels.email,
    "webhook": channels.webhook,
    "linkaccount": accounts.link_account,
    "audit": audit.audit,
    "daily": performance.daily,
    "myagents": my_agents.my_agents,
    "approvals": pending_approvals,
    "timezone": time_zone,
}
# shown in the app's command menu (setMyCommands), in this order; /start is implied
MENU = (
    "agents",
    "create",
    "myagents",
    "deploy",
    "deployments",
    "positions",
    "monitor",
    "approvals",
    "history",
    "pnl",
    "daily",
    "call",
    "link",
    "wallet",
    "balance",
    "unlink",
    "billing",
    "audit",
    "linkaccount",
    "timezone",
    "settings",
    "help",
    "cancel",
)

BUTTONS: dict[str, ButtonHandler] = {
    "al": agents.list_button,
    "ap": agents.page_button,
    "ad": agents.details_button,
    "cr": create.create_button,
    "hp": start.help_button,
    "dp": deploy.deploy_button,
    "dpp": deploy.pause_button,
    "dpr": deploy.resume_button,
    "dps": deploy.stop_button,
    "dpx": deploy.stop_confirm_button,
    "dpk": deploy.stop_keep_button,
    "pc": positions.close_button,
    "pcy": positions.close_confirm_button,
    "pcn": positions.close_keep_button,
    "hi": positions.history_button,
    "ok": approvals.confirm_button,
    "sk": approvals.skip_button,
    "sl": settings.language_button,
    "sa": settings.alert_button,
    "sx": settings.limit_button,
    "wz": wizard.on_button,
    "wu": wallet.unlink_button,
    "hc": hyperliquid_approval.check_button,
    "se": safe_module.enable_button,
    "wuy": wallet.unlink_confirm_button,
    "wuc": wallet.unlink_close_all_button,
    "wun": wallet.unlink_keep_button,
    "ct": channels.toggle_button,
    "cx": channels.remove_button,
    "dy": performance.daily_button,
    "mae": my_agents.edit_button,
    "map": my_agents.pause_button,
    "mar": my_agents.resume_button,
    "mat": my_agents.retire_button,
    "maty": my_agents.retire_confirm_button,
    "mak": my_agents.keep_button,
    "pf": positions.refresh_button,
    "pr": positions.refresh_all_button,
    "pca": positions_close_all.close_all_button,
    "pcay": positions_close_all.close_all_confirm_button,
    "pcan": positions_close_all.close_all_keep_button,
    "bc": billing_cancel.cancel_button,
    "bcy": billing_cancel.cancel_confirm_button,
    "bcn": billing_cancel.cancel_keep_button,
    "bm": billing_cancel.portal_button,
}

# presses whose work waits on a venue or a chain (a close, an order, an approval check): chat
# apps acknowledge them before the handler runs, so the button's spinner stops at once
WAITS_ON_VENUE = frozenset({"pcy", "pcay", "ok", "wuc", "hc", "se"})


def acknowledge_first(button: str) -> bool:
    cb = callbacks.parse(button)
    return cb is not None and cb.action in WAITS_ON_VENUE


class Bot:
    def __init__(self, services: Services) -> None:
        self.services = services
        if services.known is None:  # who is writing, kept in memory (one per process)
            services.known = KnownUsers(services.sessions)

    async def handle(self, req: Request) -> Response:
        lang = "en"
        limits = self.services.limits
        if limits is not None:  # before the database: a flood costs a counter, nothing more
            try:
                admission = await limits.admit(req.platform, req.user_id, req.chat_id)
            except Exception:  # the counters' store (Redis) is away: serve, do not go silent
                log.exception("chat limits unavailable; request let through")
                admission = Admission.OK
            if admission is not Admission.OK:
                return slow_down(req, admission)
        try:
            ctx = await resolve(self.services, req)
            lang = ctx.language
            LANGUAGE.set(lang)  # amounts formatted for the user (handlers/format.py)
            response = await self._dispatch(ctx, req)
            lang = ctx.language  # /settings may have changed it
        except UserError as e:
            response = Response([Reply(t(lang, e.key, **e.fields))])
            if req.button is not None:  # a button's error shows as its pop-up answer
                response = Response(notice=t(lang, e.key, **e.fields), refused=True)
        except Exception:
            log.exception("handler failed on %s request", req.platform)
            response = Response([Reply(t(lang, "error.internal"))])
            if req.button is not None:
                response = Response(notice=t(lang, "error.internal"), refused=True)
        for r in response.replies:
            if len(r.text) > MAX_TEXT:
                r.text = r.text[: MAX_TEXT - 1] + "…"
        return response

    async def _dispatch(self, ctx: Ctx, req: Request) -> Response:
        if req.button is not None:
            cb = callbacks.parse(req.button)
            handler = BUTTONS.get(cb.action) if cb else None
            if cb is None or handler is None:
                return Response(notice=ctx.t("wizard.stale"), refused=True)
            try:
                return await handler(ctx, cb)
            except ValueError:  # a malformed argument in button data
                return Response(notice=ctx.t("wizard.stale"), refused=True)
        command = req.command
        if command is not None:
            name, args = command
            if name == "cancel":
                gone = await wizard.clear(ctx)
                return Response([Reply(ctx.t("wizard.cancelled" if gone else "wizard.nothing"))])
            handler = COMMANDS.get(name)
            if handler is None:
                return Response([Reply(ctx.t("error.unknown_command", command=name[:32]))])
            if name != "start":
                # a new command leaves any half-finished wizard behind
                await wizard.clear(ctx)
            return await handler(ctx, args)
        conv = await wizard.load(ctx)
        if conv is not None:
            return await wizard.on_text(ctx, conv, req.text)
        return Response([Reply(ctx.t("error.not_understood"))])
