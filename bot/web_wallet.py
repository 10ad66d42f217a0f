"""The wallet-connect page and its two endpoints (Sign-In with Ethereum). The page is ours
and served by us, with no external script, so it works offline and as a Telegram Mini App."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.telegram_webapp import validate_init_data
from bot.web_limits import WebLimits
from handlers import hyperliquid_approval, ostium_delegation, ostium_rotation
from handlers.base import Services
from handlers.wallet import complete_link, siwe_config
from storage.db import is_transient_conflict
from storage.models import Identity
from wallets import siwe_link

log = logging.getLogger(__name__)


def _static(name: str) -> str:
    return resources.files("bot").joinpath("static", name).read_text("utf-8")


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _refuse(reason: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": "refused", "reason": reason}, status_code=status)


async def verify_once(
    services: Services, message: str, signature: str, token: str | None
) -> siwe_link.LinkOutcome:
    """One verify in its own transaction. Two verifies of one link race on the link row; on
    SQLite the loser's stale snapshot may be refused with "database is locked" instead of
    waiting: run it again, and it sees the link spent."""
    for attempt in range(3):
        try:
            async with services.sessions() as s, s.begin():
                return await complete_link(s, services, message, signature, token)
        except DBAPIError as exc:
            if attempt == 2 or not is_transient_conflict(exc):
                raise
    raise AssertionError("unreachable")


def routes(
    services: Services, bot_token: str | None = None, limits: WebLimits | None = None
) -> list[Route]:
    async def limited(request: Request, route: str, token: str = "") -> Response | None:
        return None if limits is None else await limits.refuse(request, route, token)

    async def token_user(request: Request, route: str, token: str) -> int | Response:
        """The user a live link token speaks for, or the refusal (rate limited, or a token
        spent or expired: 403)."""
        if (refused := await limited(request, route, token)) is not None:
            return refused
        async with services.sessions() as s:
            user_id = await siwe_link.token_owner(s, token, services.clock())
        return _refuse("link_expired", 403) if user_id is None else user_id

    async def page(_: Request) -> Response:
        return HTMLResponse(_static("connect.html"), headers={"Cache-Control": "no-store"})

    async def script(_: Request) -> Response:
        return Response(_static("connect.js"), media_type="text/javascript")

    async def token_from_mini_app(init_data: str) -> str | None:
        if not bot_token:
            return None
        tg_user = validate_init_data(init_data, bot_token, services.clock())
        if tg_user is None:
            return None
        async with services.sessions() as s, s.begin():
            user_id = (
                await s.execute(
                    select(Identity.user_id).where(
                        Identity.platform == "telegram", Identity.external_id == str(tg_user["id"])
                    )
                )
            ).scalar()
            if user_id is None:
                return None
            return await siwe_link.start_link(s, user_id, services.clock())

    async def nonce(request: Request) -> Response:
        body = await _json(request)
        if body is None:
            return _refuse("bad_request")
        token = str(body.get("token") or "")
        if (refused := await limited(request, "nonce", token)) is not None:
            return refused
        if not token and body.get("initData"):
            token = await token_from_mini_app(str(body["initData"])) or ""
            if not token:
                return _refuse("bad_init_data", 403)
        try:
            chain_id = int(body.get("chainId") or 1)
        except (TypeError, ValueError):
            return _refuse("wrong_chain")
        async with services.sessions() as s, s.begin():
            issued = await siwe_link.issue_message(
                s, siwe_config(services), token, str(body.get("address") or ""), chain_id,
                services.clock(),
            )  # fmt: skip
        if isinstance(issued, str):
            return _refuse(issued, 403 if issued == "link_expired" else 400)
        return JSONResponse({"nonce": issued[0], "message": issued[1], "token": token})

    async def verify(request: Request) -> Response:
        body = await _json(request)
        if body is None:
            return _refuse("bad_request")
        message, signature = str(body.get("message") or ""), str(body.get("signature") or "")
        token = str(body.get("token") or "") or None
        if (refused := await limited(request, "verify", token or "")) is not None:
            return refused
        outcome = await verify_once(services, message, signature, token)
        if not outcome.ok or outcome.user_id is None:
            log.info("wallet link refused: %s", outcome.reason)
            return _refuse(outcome.reason)
        # the link token is spent: the page's next step (agent approval) gets its own
        async with services.sessions() as s, s.begin():
            fresh = await siwe_link.start_link(s, outcome.user_id, services.clock())
        return JSONResponse({"address": outcome.address, "token": fresh})

    async def asked_by(request: Request, route: str) -> tuple[str, int] | Response:
        """(link token, its user) of a JSON request carrying the token, or the refusal."""
        body = await _json(request)
        if body is None:
            return _refuse("bad_request")
        token = str(body.get("token") or "")
        user_id = await token_user(request, route, token)
        return user_id if not isinstance(user_id, int) else (token, user_id)

    async def hl_request(request: Request) -> Response:
        asked = await asked_by(request, "hl")
        if not isinstance(asked, tuple):
            return asked
        requested = await hyperliquid_approval.request(services, asked[1])
        if isinstance(requested, str):
            return _refuse(requested)
        return JSONResponse(requested)

    async def hl_approve(request: Request) -> Response:
        body = await _json(request)
        if body is None or not isinstance(body.get("action"), dict):
            return _refuse("bad_request")
        token = str(body.get("token") or "")
        user_id = await token_user(request, "hl", token)
        if not isinstance(user_id, int):
            return user_id
        verdict = await hyperliquid_approval.submit(
            services, user_id, body["action"], str(body.get("signature") or ""), "web"
        )
        if verdict != "approved":
            return _refuse(verdict)
        async with services.sessions() as s, s.begin():  # done: the link authorises no more
            await siwe_link.spend_token(s, token, services.clock())
        return JSONResponse({"approved": True})

    async def ostium_request(request: Request) -> Response:
        asked = await asked_by(request, "ostium")
        if not isinstance(asked, tuple):
            return asked
        requested = await ostium_delegation.request(services, asked[1])
        if isinstance(requested, str):
            return _refuse(requested)
        return JSONResponse(requested)

    async def ostium_confirm(request: Request) -> Response:
        """After the wallet sent a key rotation's setDelegate: finished once the chain names
        the new key ("rotated"; the link is then spent), else "waiting" (the page asks again)."""
        asked = await asked_by(request, "ostium")
        if not isinstance(asked, tuple):
            return asked
        token, user_id = asked
        verdict = await ostium_rotation.confirm(services, user_id, "web")
        if verdict == "rotated":
            async with services.sessions() as s, s.begin():
                await siwe_link.spend_token(s, token, services.clock())
        elif verdict != "waiting":
            return _refuse(verdict)
        return JSONResponse({"rotated": verdict == "rotated"})

    return [
        Route("/api/ostium/delegation", ostium_request, methods=["POST"]),
        Route("/api/ostium/confirm", ostium_confirm, methods=["POST"]),
        Route("/api/hyperliquid/approval", hl_request, methods=["POST"]),
        Route("/api/hyperliquid/approve", hl_approve, methods=["POST"]),
        Route("/connect", page, methods=["GET"]),
        Route("/static/connect.js", script, methods=["GET"]),
        Route("/api/siwe/nonce", nonce, methods=["POST"]),
        Route("/api/siwe/verify", verify, methods=["POST"]),
    ]
