"""/link, /wallet, /unlink: the user's own wallet, linked by signing a Sign-In with Ethereum
message on the connect page or, without a browser wallet, in chat."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from eth_utils import is_address, to_checksum_address
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import WalletLinked
from engine.notify import write_outbox
from handlers import callbacks, safe_module, wizard
from handlers.base import Button, Reply, Response, Services, UserError
from handlers.context import Ctx
from storage.enums import DeploymentMode, DeploymentStatus
from storage.models import AgentKey, Deployment
from wallets import siwe_link


def siwe_config(services: Services) -> siwe_link.SiweConfig:
    base = services.public_url.rstrip("/")
    return siwe_link.SiweConfig(urlsplit(base).netloc, f"{base}/connect", services.siwe_chain_ids)


async def complete_link(
    session: AsyncSession, services: Services, message: str, signature: str, token: str | None
) -> siwe_link.LinkOutcome:
    """Verify and link; the user hears about it in chat through the outbox."""
    outcome = await siwe_link.verify_and_link(
        session, siwe_config(services), message, signature, services.clock(), token
    )
    if outcome.ok and outcome.user_id is not None and outcome.address is not None:
        await write_outbox(session, [WalletLinked(outcome.user_id, outcome.address)])
    return outcome


# -- /link ---------------------------------------------------------------------------------


async def _address(ctx: Ctx, text: str, data: dict[str, Any]) -> wizard.Extra:
    candidate = text.strip()
    if not is_address(candidate):
        raise UserError("wallet.bad_address")
    address = to_checksum_address(candidate)
    async with ctx.services.sessions() as s, s.begin():
        issued = await siwe_link.issue_message(
            s, siwe_config(ctx.services), data["token"], address, 1, ctx.services.clock()
        )
    if isinstance(issued, str):
        raise UserError(f"wallet.reason.{issued}")
    return wizard.Extra(address, {"message": issued[1]})


async def _signature(ctx: Ctx, text: str, data: dict[str, Any]) -> str:
    signature = text.strip()
    if not signature.startswith("0x") or len(signature) != 132:
        raise UserError("wallet.bad_signature_format")
    return signature


async def _finish_chat_link(ctx: Ctx, data: dict[str, Any]) -> Response:
    async with ctx.services.sessions() as s, s.begin():
        outcome = await siwe_link.verify_and_link(
            s,
            siwe_config(ctx.services),
            data["message"],
            data["signature"],
            ctx.services.clock(),
            data["token"],
        )
    if not outcome.ok:
        return Response(
            [Reply(ctx.t("wallet.refused", reason=ctx.t(f"wallet.reason.{outcome.reason}")))]
        )
    return Response([Reply(ctx.t("wallet.linked", address=outcome.address))])


async def _no_summary(ctx: Ctx, data: dict[str, Any]) -> str:
    return ""


LINK_FLOW = wizard.register(
    wizard.Flow(
        "link",
        [
            wizard.Step("address", "wallet.ask_address", _address),
            wizard.Step("signature", "wallet.ask_signature", _signature),
        ],
        _no_summary,
        _finish_chat_link,
        confirm=False,
    )
)


async def link(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s, s.begin():
        token = await siwe_link.start_link(s, ctx.user_id, ctx.services.clock())
    url = f"{ctx.services.public_url.rstrip('/')}/connect?t={token}"
    page = Reply(
        ctx.t("wallet.link_intro", url=url),
        # Telegram accepts only public http(s) links on buttons; the text always has it
        [[Button(ctx.t("wallet.open_page"), url=url)]] if url.startswith("https://") else [],
    )
    started = await wizard.start(ctx, LINK_FLOW, {"token": token})
    return Response([page, *started.replies])


# -- /wallet and /unlink -------------------------------------------------------------------


async def wallet(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s:
        linked = await siwe_link.linked_wallet(s, ctx.user_id)
        keys = {
            k.venue: k
            for k in (
                await s.execute(select(AgentKey).where(AgentKey.user_id == ctx.user_id))
            ).scalars()
        }
    if linked is None:
        return Response([Reply(ctx.t("wallet.none"))])
    hl = keys.get("HYPERLIQUID")
    hl_state = (
        ctx.t("wallet.hl_none")
        if hl is None
        else ctx.t(
            "wallet.hl_approved" if hl.approved_at else "wallet.hl_pending", agent=hl.address
        )
    )
    arb_state, safe_rows = await safe_module.safe_lines(ctx, linked.address)
    text = ctx.t("wallet.view", address=linked.address, hyperliquid=hl_state, arbitrum=arb_state)
    rows = [*safe_rows, [Button(ctx.t("wallet.unlink"), callbacks.make("wu"))]]
    if hl is not None and hl.approved_at is None:
        rows.insert(0, [Button(ctx.t("wallet.check_approval"), callbacks.make("hc"))])
    return Response([Reply(text, rows)])


async def unlink(ctx: Ctx, _: str = "") -> Response:
    async with ctx.services.sessions() as s:
        linked = await siwe_link.linked_wallet(s, ctx.user_id)
    if linked is None:
        return Response([Reply(ctx.t("wallet.none"))])
    yes = Button(ctx.t("wallet.unlink_yes"), callbacks.make("wuy"))
    no = Button(ctx.t("wallet.unlink_no"), callbacks.make("wun"))
    return Response([Reply(ctx.t("wallet.unlink_ask", address=linked.address), [[yes, no]])])


async def unlink_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    response = await unlink(ctx)
    for r in response.replies:
        r.edit = True
    return response


async def unlink_confirm_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    async with ctx.services.sessions() as s, s.begin():
        address = await siwe_link.unlink(s, ctx.user_id, ctx.services.clock())
        # live deployments trade for that wallet: they stop taking trades
        paused = await s.execute(
            update(Deployment)
            .where(
                Deployment.user_id == ctx.user_id,
                Deployment.mode == DeploymentMode.LIVE,
                Deployment.status == DeploymentStatus.ACTIVE,
            )
            .values(status=DeploymentStatus.PAUSED)
        )
    if address is None:
        return Response([Reply(ctx.t("wallet.none"), edit=True)])
    text = ctx.t("wallet.unlinked", address=address)
    if paused.rowcount:  # type: ignore[attr-defined]
        text += "\n" + ctx.t("wallet.live_paused", count=paused.rowcount)  # type: ignore[attr-defined]
    return Response([Reply(text, edit=True)])


async def unlink_keep_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return Response([Reply(ctx.t("wallet.unlink_kept"), edit=True)])
