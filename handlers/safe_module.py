"""The Maxxit module on the user's Safe (Arbitrum, for Ostium): which Safes the linked wallet
owns, whether the module is enabled on each, and how to enable it in the Safe app."""

from __future__ import annotations

from typing import Any

from handlers import callbacks
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from wallets import siwe_link
from wallets.vault import ensure_agent_key

VENUE = "OSTIUM"


async def _module(ctx: Ctx) -> str | None:
    if ctx.services.vault is None:
        return None
    async with ctx.services.sessions() as s, s.begin():
        return await ensure_agent_key(s, ctx.services.vault, ctx.user_id, VENUE)


async def safe_lines(ctx: Ctx, owner: str) -> tuple[str, list[list[Button]]]:
    """The Arbitrum part of /wallet: a line per Safe, an Enable button where needed."""
    lookup = ctx.services.safes
    module = await _module(ctx) if lookup is not None else None
    if lookup is None or module is None:
        return ctx.t("wallet.safe_unchecked"), []
    try:
        statuses: list[Any] = await lookup.statuses(owner, module)
    except Exception:  # the node is down: say so, never fail /wallet for it
        return ctx.t("wallet.safe_unreachable"), []
    if not statuses:
        return ctx.t("wallet.safe_none_found"), []
    lines, rows = [], []
    for i, st in enumerate(statuses[:5]):
        key = "wallet.safe_enabled" if st.module_enabled else "wallet.safe_disabled"
        lines.append(ctx.t(key, safe=st.address, module=module))
        if not st.module_enabled:
            rows.append([Button(ctx.t("wallet.safe_enable", n=i + 1), callbacks.make("se", i))])
    return "\n".join(lines), rows


async def enable_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    lookup = ctx.services.safes
    module = await _module(ctx) if lookup is not None else None
    async with ctx.services.sessions() as s:
        wallet = await siwe_link.linked_wallet(s, ctx.user_id)
    if lookup is None or module is None or wallet is None:
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    statuses = await lookup.statuses(wallet.address, module)
    index = cb.int_arg()
    if index >= len(statuses):
        return Response(notice=ctx.t("wizard.stale"), refused=True)
    st = statuses[index]
    if st.module_enabled:
        return Response(notice=ctx.t("wallet.safe_already"))
    request = await lookup.enable_tx(st.address, module)
    text = ctx.t(
        "wallet.safe_how",
        safe=st.address,
        module=module,
        data=request.data,
        hash=request.safe_tx_hash,
        nonce=request.nonce,
    )
    return Response([Reply(text)])
