"""The one web server of the process: health for the PaaS, Telegram's webhook (secret
checked before anything is parsed), and the wallet-connect page (bot/web_wallet.py)."""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20  # Telegram updates are small; refuse anything absurd


def make_app(
    telegram_feed: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    telegram_secret: str | None = None,
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    extra: list[Route] | None = None,
) -> Starlette:
    async def healthz(_: Request) -> Response:
        body = {"status": "ok"} | (await health() if health else {})
        return JSONResponse(body)

    async def telegram_webhook(request: Request) -> Response:
        if telegram_feed is None or not telegram_secret:
            return PlainTextResponse("not found", status_code=404)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), telegram_secret.encode()):
            log.warning("telegram webhook call with a wrong secret from %s", request.client)
            return PlainTextResponse("forbidden", status_code=403)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            payload = await request.json()
        except ValueError:
            return PlainTextResponse("bad json", status_code=400)
        if not isinstance(payload, dict) or "update_id" not in payload:
            return PlainTextResponse("not an update", status_code=400)
        await telegram_feed(payload)
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
            *(extra or []),
        ]
    )


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our own event loop; our process owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server(app: Starlette, host: str, port: int) -> EmbeddedServer:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    return EmbeddedServer(config)


def bound_port(srv: uvicorn.Server) -> int:
    """The port actually bound (PORT=0 asks the system for a free one, as tests do)."""
    return int(srv.servers[0].sockets[0].getsockname()[1])
