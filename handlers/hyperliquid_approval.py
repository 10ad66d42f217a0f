"""Approving Maxxit's agent key on Hyperliquid: the user's own wallet signs `approveAgent`
(on the connect page) or the user approves the shown address in Hyperliquid's app; either
way the approval counts only once Hyperliquid's `extraAgents` lists the agent."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select, update

from engine.events import AgentApproved
from engine.notify import write_outbox
from handlers import callbacks
from handlers.base import Reply, Response, Services
from handlers.context import Ctx
from storage.audit import write_audit
from storage.models import AgentKey
from wallets import hyperliquid_agent, key_rotation, siwe_link

VENUE = "HYPERLIQUID"
log = logging.getLogger(__name__)


def live_enabled(services: Services) -> bool:
    return services.vault is not None and services.hyperliquid_url is not None


async def request(services: Services, user_id: int) -> dict[str, Any] | str:
    """The typed data for the user's wallet to sign, or why there is none."""
    if not live_enabled(services):
        return "live_off"
    async with services.sessions() as s, s.begin():
        wallet = await siwe_link.linked_wallet(s, user_id)
        if wallet is None:
            return "no_wallet"
        agent, _ = await key_rotation.key_to_approve(s, services.vault, user_id, VENUE)
    action = hyperliquid_agent.approve_action(
        agent, int(time.time() * 1000), services.hyperliquid_mainnet
    )
    return {
        "action": action,
        "typedData": hyperliquid_agent.typed_data(action),
        "agent": agent,
        "account": wallet.address,
    }


async def confirm(services: Services, user_id: int, transport: str = "web") -> str:
    """Ask Hyperliquid whether the agent is approved; record it. Returns a reason code."""
    if not live_enabled(services):
        return "live_off"
    async with services.sessions() as s:
        wallet = await siwe_link.linked_wallet(s, user_id)
        key = (
            await s.execute(
                select(AgentKey).where(AgentKey.user_id == user_id, AgentKey.venue == VENUE)
            )
        ).scalar_one_or_none()
        rotation = await key_rotation.pending(s, user_id, VENUE)
    if wallet is None:
        return "no_wallet"
    if key is None:
        return "no_agent"
    assert services.hyperliquid_url is not None
    if rotation is not None and await hyperliquid_agent.is_approved(
        services.hyperliquid_url, wallet.address, rotation.new_address
    ):
        return await _finish_rotation(services, user_id, rotation.id, wallet.address, transport)
    if not await hyperliquid_agent.is_approved(
        services.hyperliquid_url, wallet.address, key.address
    ):
        return "not_approved"
    async with services.sessions() as s, s.begin():
        done = await s.execute(
            update(AgentKey)
            .where(AgentKey.id == key.id, AgentKey.approved_at.is_(None))
            .values(approved_at=services.clock())
        )
        if done.rowcount:  # type: ignore[attr-defined]
            await write_outbox(s, [AgentApproved(user_id, key.address)])
            await write_audit(
                s, user_id, "approve_agent_key", transport, f"agent:{VENUE}",
                agent_key_address=key.address, account=wallet.address,
            )  # fmt: skip
    return "approved"


async def _finish_rotation(
    services: Services, user_id: int, rotation_id: int, account: str, transport: str
) -> str:
    """The venue lists the new key (and, by approving it under our agent name, dropped the
    old one): it replaces the old key here, on the record, in one transaction."""
    async with services.sessions() as s, s.begin():
        swapped = await key_rotation.complete(s, rotation_id, services.clock())
        if swapped is not None:
            await write_outbox(s, [AgentApproved(user_id, swapped.new_address)])
            await write_audit(
                s, user_id, "rotate_agent_key", transport, f"agent:{VENUE}",
                old_agent=swapped.old_address, new_agent=swapped.new_address, account=account,
            )  # fmt: skip
    if swapped is not None:
        assert services.hyperliquid_url is not None
        if await hyperliquid_agent.is_approved(
            services.hyperliquid_url, account, swapped.old_address
        ):  # approved in Hyperliquid's app under another name: only the user can remove it
            log.warning(
                "user %s: old agent %s is still approved on Hyperliquid under another name",
                user_id,
                swapped.old_address,
            )
    return "approved"


async def submit(
    services: Services, user_id: int, action: dict[str, Any], signature: str, transport: str = "web"
) -> str:
    """Forward the user's signed approval to Hyperliquid, then confirm it there."""
    if not live_enabled(services):
        return "live_off"
    async with services.sessions() as s:
        key = (
            await s.execute(
                select(AgentKey.address).where(AgentKey.user_id == user_id, AgentKey.venue == VENUE)
            )
        ).scalar()
        rotation = await key_rotation.pending(s, user_id, VENUE)
    if key is not None and rotation is not None:
        key = rotation.new_address
    # only our own agent for this user may be approved through us
    if key is None or str(action.get("agentAddress", "")).lower() != key.lower():
        return "wrong_agent"
    if action.get("type") != "approveAgent":
        return "wrong_agent"
    assert services.hyperliquid_url is not None
    try:
        ok, answer = await hyperliquid_agent.submit_approval(
            services.hyperliquid_url, action, signature
        )
    except ValueError:
        return "bad_signature"
    if not ok:
        log.info("Hyperliquid refused an agent approval for user %s: %s", user_id, answer)
        return "hl_refused"
    return await confirm(services, user_id, transport)


async def check_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    verdict = await confirm(ctx.services, ctx.user_id, ctx.request.platform)
    if verdict == "approved":
        return Response([Reply(ctx.t("approval_hl.approved"), edit=True)])
    return Response(notice=ctx.t(f"approval_hl.{verdict}"), refused=verdict != "approved")
