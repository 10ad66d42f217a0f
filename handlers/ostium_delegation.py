"""Ostium in /wallet and on the connect page: whether the linked wallet made Maxxit's Ostium
key its delegate and let Ostium's trading storage take USDC, and the transactions its own
wallet sends to do so (built by wallets/ostium_delegation.py; the page asks the wallet to send
them). The agent key trades through Ostium's delegatedAction and cannot withdraw."""

from __future__ import annotations

import logging
from decimal import ROUND_UP, Decimal
from typing import Any

from sqlalchemy import select

from handlers import ostium_rotation
from handlers.base import Button, Services
from handlers.context import Ctx
from storage.models import AgentKey
from wallets import key_rotation, ostium_delegation, siwe_link

VENUE = "OSTIUM"
MIN_APPROVAL = Decimal(1000)  # USDC approved at least, so a few trades need no new approval
log = logging.getLogger(__name__)


def live_enabled(services: Services) -> bool:
    return services.vault is not None and services.ostium is not None


async def request(services: Services, user_id: int) -> dict[str, Any] | str:
    """The transactions for the user's wallet to send, or why there are none."""
    if not live_enabled(services):
        return "live_off"
    async with services.sessions() as s, s.begin():
        wallet = await siwe_link.linked_wallet(s, user_id)
        if wallet is None:
            return "no_wallet"
        agent, rotating = await key_rotation.key_to_approve(s, services.vault, user_id, VENUE)
    reader = services.ostium
    try:
        state = await reader.state(wallet.address)
    except Exception as exc:
        log.warning("ostium delegation state of %s unavailable: %r", wallet.address, exc)
        return "chain_unreachable"
    txs = []
    if not state.delegated_to(agent):
        txs.append(ostium_delegation.set_delegate_tx(reader.contracts, agent))
    wanted = max(MIN_APPROVAL, state.balance.to_integral_value(rounding=ROUND_UP))
    if state.allowance < wanted:
        txs.append(ostium_delegation.approve_usdc_tx(reader.contracts, wanted))
    return {
        "account": wallet.address,
        "agent": agent,
        "delegated": state.delegated_to(agent),
        "allowance": str(state.allowance),
        "transactions": [t.as_json() for t in txs],
        "rotation": rotating,
    }


async def wallet_part(ctx: Ctx, address: str) -> tuple[str, list[list[Button]]]:
    """The Ostium line of /wallet (empty when Ostium live trading is off) and, until the
    delegation is in place, a one-time link to the connect page's Ostium section."""
    services = ctx.services
    if not live_enabled(services):
        return "", []
    async with services.sessions() as s:
        agent = (
            await s.execute(
                select(AgentKey.address).where(
                    AgentKey.user_id == ctx.user_id, AgentKey.venue == VENUE
                )
            )
        ).scalar()
    try:
        state = await services.ostium.state(address)
    except Exception:  # the node is down: say so, never fail /wallet for it
        return ctx.t("wallet.ostium_unreachable"), []
    async with services.sessions() as s:
        rotation = await key_rotation.pending(s, ctx.user_id, VENUE)
    if rotation is not None and state.delegated_to(rotation.new_address):
        # the user's setDelegate of a rotation was mined: it is finished, and told
        await ostium_rotation.finish(
            services.sessions, services.clock(), rotation.id, ctx.user_id, address,
            ctx.request.platform,
        )  # fmt: skip
        agent, rotation = rotation.new_address, None
    if rotation is None and agent is not None and state.delegated_to(agent):
        line = ctx.t("wallet.ostium_delegated", agent=agent, allowance=f"{state.allowance:,.2f}")
        return line, []
    if rotation is not None:
        line = ctx.t("wallet.ostium_rotation_pending", agent=rotation.new_address)
    elif state.delegate is not None:
        line = ctx.t("wallet.ostium_other_delegate", delegate=state.delegate)
    else:
        line = ctx.t("wallet.ostium_not_delegated")
    async with services.sessions() as s, s.begin():
        token = await siwe_link.start_link(s, ctx.user_id, services.clock())
    url = f"{services.public_url.rstrip('/')}/connect?t={token}&ost=1"
    # Telegram accepts only public http(s) links on buttons; the text always has it
    rows = [[Button(ctx.t("wallet.ostium_setup"), url=url)]] if url.startswith("https://") else []
    return f"{line}\n{url}", rows
