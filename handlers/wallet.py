"""/link, /wallet, /unlink: the user's own wallet, linked by signing a Sign-In with Ethereum
message on the connect page or, without a browser wallet, in chat. /unlink closes live
positions first (or keeps the wallet linked while they are open)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from eth_utils import is_address, to_checksum_address
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from engine.events import WalletLinked
from engine.notify import write_outbox
from handlers import audit, callbacks, ostium_delegation, safe_module, wizard
from handlers.base import Button, Reply, Response, Services, UserError
from handlers.context import Ctx
from storage.enums import (
    CloseReason,
    DeploymentMode,
    DeploymentStatus,
    OrderPurpose,
    OrderStatus,
    PositionStatus,
)
from storage.models import Agent, AgentKey, Deployment, Order, Position, Wallet
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
    if outcome.reason == "joined":
        return Response([Reply(ctx.t("accounts.joined_by_wallet"))])
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
    async with ctx.services.sessions() as s:
        linked = await siwe_link.linked_wallet(s, ctx.user_id)
        open_live = [] if linked is None else await _open_live(s, ctx.user_id, linked.address)
    if linked is not None and open_live:
        # a new link replaces the wallet, which would strand its positions as /unlink would
        return Response(
            [
                Reply(
                    ctx.t(
                        "wallet.link_blocked",
                        address=linked.address,
                        count=ctx.tn("n.open_live_positions", len(open_live)),
                    )
                )
            ]
        )
    async with ctx.services.sessions() as s, s.begin():
        token = await siwe_link.start_link(s, ctx.user_id, ctx.services.clock())
    url = f"{ctx.services.public_url.rstrip('/')}/connect?t={token}"
    intro = ctx.t("wallet.link_intro", url=url)
    if linked is not None:  # said before anything is signed
        intro = ctx.t("wallet.link_replaces", address=linked.address) + "\n\n" + intro
    page = Reply(
        intro,
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
    ostium_line, ostium_rows = await ostium_delegation.wallet_part(ctx, linked.address)
    if ostium_line:
        text += "\n" + ostium_line
    rows = [*safe_rows, *ostium_rows, [Button(ctx.t("wallet.unlink"), callbacks.make("wu"))]]
    if hl is not None and hl.approved_at is None:
        rows.insert(0, [Button(ctx.t("wallet.check_approval"), callbacks.make("hc"))])
    return Response([Reply(text, rows)])


# /unlink never strands live positions: Hyperliquid closes are signed by the agent key that
# bot/live_trading.signer_lookup finds through the *linked* wallet, so once it is unlinked no
# close of a position on it can be signed. The wallet stays linked until they are closed.


async def _open_live(s: AsyncSession, user_id: int, account: str) -> list[tuple[Position, str]]:
    """The user's open live positions on this account, with their agents' names."""
    rows = await s.execute(
        select(Position, Agent.name)
        .join(Deployment, Deployment.id == Position.deployment_id)
        .join(Agent, Agent.id == Deployment.agent_id)
        .where(
            Deployment.user_id == user_id,
            Deployment.mode == DeploymentMode.LIVE,
            Position.status == PositionStatus.OPEN,
            func.lower(Position.account) == account.lower(),
        )
        .order_by(Position.id)
    )
    return [(p, name) for p, name in rows.all()]


async def _opens_in_flight(s: AsyncSession, user_id: int, account: str) -> int:
    """Live opens written but not settled: one may yet fill into a position on this account."""
    return (
        await s.execute(
            select(func.count(Order.id))
            .join(Deployment, Deployment.id == Order.deployment_id)
            .where(
                Deployment.user_id == user_id,
                Deployment.mode == DeploymentMode.LIVE,
                Order.purpose == OrderPurpose.OPEN,
                Order.status == OrderStatus.PENDING,
                func.lower(Order.account) == account.lower(),
            )
        )
    ).scalar_one()


async def _pause_live(s: AsyncSession, user_id: int) -> int:
    """Live deployments trade for the linked wallet: they stop taking trades."""
    paused = await s.execute(
        update(Deployment)
        .where(
            Deployment.user_id == user_id,
            Deployment.mode == DeploymentMode.LIVE,
            Deployment.status == DeploymentStatus.ACTIVE,
        )
        .values(status=DeploymentStatus.PAUSED)
    )
    return int(paused.rowcount)  # type: ignore[attr-defined]


def _positions_prompt(
    ctx: Ctx, wallet: Wallet, open_live: list[tuple[Position, str]], key: str, edit: bool
) -> Reply:
    lines = [
        ctx.t(
            "wallet.unlink_position_line",
            market=p.market,
            side=ctx.t(f"side.{p.side}"),
            size=format(p.size.normalize(), "f"),
            agent=agent,
        )
        for p, agent in open_live[:20]
    ]
    count = ctx.tn("n.open_live_positions", len(open_live))
    text = ctx.t(key, address=wallet.address, count=count, positions="\n".join(lines))
    close_all = Button(ctx.t("wallet.unlink_close_all"), callbacks.make("wuc", wallet.id))
    keep = Button(ctx.t("wallet.unlink_keep"), callbacks.make("wun", wallet.id))
    return Reply(text, [[close_all], [keep]], edit=edit)


async def _ask(ctx: Ctx, edit: bool) -> Response:
    async with ctx.services.sessions() as s:
        linked = await siwe_link.linked_wallet(s, ctx.user_id)
        open_live = [] if linked is None else await _open_live(s, ctx.user_id, linked.address)
    if linked is None:
        return Response([Reply(ctx.t("wallet.none"), edit=edit)])
    if open_live:
        return Response(
            [_positions_prompt(ctx, linked, open_live, "wallet.unlink_open_positions", edit)]
        )
    yes = Button(ctx.t("wallet.unlink_yes"), callbacks.make("wuy", linked.id))
    no = Button(ctx.t("wallet.unlink_no"), callbacks.make("wun", linked.id))
    text = ctx.t("wallet.unlink_ask", address=linked.address)
    return Response([Reply(text, [[yes, no]], edit=edit)])


async def unlink(ctx: Ctx, _: str = "") -> Response:
    return await _ask(ctx, edit=False)


async def unlink_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return await _ask(ctx, edit=True)


async def _own_wallet(ctx: Ctx, cb: callbacks.Callback) -> Wallet | Response | None:
    """The linked wallet this button is about; a refusal for someone else's; None for button
    data from before buttons named their wallet."""
    if not cb.args:
        return None
    async with ctx.services.sessions() as s:
        wallet = await s.get(Wallet, cb.int_arg())
    if wallet is None or wallet.user_id != ctx.user_id:
        return ctx.not_yours()
    if wallet.unlinked_at is not None:
        return Response([Reply(ctx.t("wallet.none"), edit=True)])
    return wallet


def _unlinked_text(ctx: Ctx, address: str, paused: int) -> str:
    text = ctx.t("wallet.unlinked", address=address)
    return text + (
        "\n" + ctx.t("wallet.live_paused", count=ctx.tn("n.live_deployments", paused))
        if paused
        else ""
    )


async def _unlink_if_clear(
    ctx: Ctx, wallet: Wallet
) -> tuple[bool, int, list[tuple[Position, str]]]:
    """Unlink only when nothing live is left on the wallet, checked in the same transaction.
    Returns (unlinked, deployments paused, live positions still open)."""
    async with ctx.services.sessions() as s, s.begin():
        open_live = await _open_live(s, ctx.user_id, wallet.address)
        if open_live or await _opens_in_flight(s, ctx.user_id, wallet.address):
            return False, 0, open_live
        paused = await _pause_live(s, ctx.user_id)
        address = await siwe_link.unlink(s, ctx.user_id, ctx.services.clock())
        await audit.record(
            s, ctx, "unlink", f"wallet:{wallet.id}", address=address, live_paused=paused
        )
    return True, paused, []


async def unlink_confirm_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    wallet = await _own_wallet(ctx, cb)
    if wallet is None:  # an old "Yes, unlink": ask again, with today's checks
        return await _ask(ctx, edit=True)
    if isinstance(wallet, Response):
        return wallet
    unlinked, paused, open_live = await _unlink_if_clear(ctx, wallet)
    if unlinked:
        return Response([Reply(_unlinked_text(ctx, wallet.address, paused), edit=True)])
    if open_live:  # opened since the question was asked
        prompt = _positions_prompt(ctx, wallet, open_live, "wallet.unlink_open_positions", True)
        return Response([prompt])
    return Response([Reply(ctx.t("wallet.unlink_in_flight"), edit=True)])


async def unlink_close_all_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    """Close every live position on the wallet (their closes are signed while it is still
    linked), then unlink; whatever did not close keeps the wallet linked."""
    wallet = await _own_wallet(ctx, cb)
    if wallet is None:
        return await _ask(ctx, edit=True)
    if isinstance(wallet, Response):
        return wallet
    async with ctx.services.sessions() as s, s.begin():
        paused = await _pause_live(s, ctx.user_id)  # no new position while we close
        open_live = await _open_live(s, ctx.user_id, wallet.address)
    if open_live:
        await ctx.services.engine.close_positions({p.id: CloseReason.MANUAL for p, _ in open_live})
    unlinked, also_paused, still_open = await _unlink_if_clear(ctx, wallet)
    await audit.record_after(
        ctx, "close_all", f"wallet:{wallet.id}", live_paused=paused,
        closed=[p.id for p, _ in open_live if p.id not in {q.id for q, _ in still_open}],
        still_open=[p.id for p, _ in still_open],
    )  # fmt: skip
    paused += also_paused
    closed = len(open_live) - len(still_open)
    done = ctx.t("wallet.unlink_closed", count=ctx.tn("n.positions", closed)) if closed else ""
    if unlinked:
        text = "\n".join(x for x in (done, _unlinked_text(ctx, wallet.address, paused)) if x)
        return Response([Reply(text, edit=True)])
    if not still_open:
        return Response(
            [Reply("\n".join(x for x in (done, ctx.t("wallet.unlink_in_flight")) if x), edit=True)]
        )
    prompt = _positions_prompt(ctx, wallet, still_open, "wallet.unlink_still_open", True)
    if done:
        prompt.text = done + "\n" + prompt.text
    if paused:
        prompt.text += "\n" + ctx.t(
            "wallet.live_paused", count=ctx.tn("n.live_deployments", paused)
        )
    return Response([prompt])


async def unlink_keep_button(ctx: Ctx, cb: callbacks.Callback) -> Response:
    wallet = await _own_wallet(ctx, cb)
    if isinstance(wallet, Response):
        return wallet
    return Response([Reply(ctx.t("wallet.unlink_kept"), edit=True)])
