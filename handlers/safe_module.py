"""The Arbitrum part of /wallet: the Safes the linked wallet owns and whether Maxxit's module is
enabled on each. Informative only: enabling the module is not offered.

Why: the "module" would be Maxxit's own server key, and a Safe module may make any call from
the Safe (`execTransactionFromModule`, DELEGATECALL included), so it could move all the Safe's
funds. The module path is removed (wallets/safe.py): a Safe trades on Ostium by delegation
instead (wallets/ostium_delegation.safe_setup_txs, signed by its owners in the Safe app). The
chat never asks a user to enable a module, and warns anyone who already did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from handlers import callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from storage.models import AgentKey

VENUE = "OSTIUM"
# No key yet: no Maxxit module can be enabled anywhere. The Safes are still listed, asked about
# a module nobody can enable (address zero is never an enabled module in a Safe).
NO_MODULE = "0x" + "00" * 20


async def _module(ctx: Ctx) -> str | None:
    """The address a Maxxit module on this user's Safes would have; never creates a key."""
    async with ctx.services.sessions() as s:
        return (
            await s.execute(
                select(AgentKey.address).where(
                    AgentKey.user_id == ctx.user_id, AgentKey.venue == VENUE
                )
            )
        ).scalar()


async def safe_lines(ctx: Ctx, owner: str) -> tuple[str, list[list[Button]]]:
    """A line per Safe; a Safe with Maxxit's module enabled gets a warning and how to remove it.
    No buttons: there is nothing to enable yet."""
    lookup = ctx.services.safes
    if lookup is None:
        return ctx.t("wallet.safe_unchecked"), []
    module = await _module(ctx)
    try:
        statuses: list[Any] = await lookup.statuses(owner, module or NO_MODULE)
    except Exception:  # the node is down: say so, never fail /wallet for it
        return ctx.t("wallet.safe_unreachable"), []
    if not statuses:
        return ctx.t("wallet.safe_none_found"), []
    lines = []
    for st in statuses[:5]:
        if module is not None and st.module_enabled:
            lines.append(ctx.t("wallet.safe_enabled", safe=st.address, module=module))
            lines.append(ctx.t("wallet.safe_module_warning", safe=st.address, module=module))
        else:
            lines.append(ctx.t("wallet.safe_disabled", safe=st.address))
    lines.append(ctx.t("wallet.safe_not_offered"))
    return "\n".join(lines), []


async def enable_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    """An "Enable module" button from an older /wallet message: not offered any more."""
    return Response([Reply(ctx.t("wallet.safe_not_offered"))], refused=True)
