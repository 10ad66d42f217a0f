"""`POST /stripe/webhook`: Stripe's events, signature checked (stripe's own verification, 5
minutes' tolerance) before anything is parsed or changed; the work is engine/subscriptions."""

from __future__ import annotations

import logging

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.subscriptions import Subscriptions

log = logging.getLogger(__name__)
MAX_EVENT_BYTES = 1 << 20


def routes(subscriptions: Subscriptions) -> list[Route]:
    async def webhook(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_EVENT_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            event = subscriptions.verify(body, request.headers.get("stripe-signature", ""))
        except stripe.SignatureVerificationError as exc:
            log.warning("stripe webhook refused from %s: %s", request.client, exc.user_message)
            return PlainTextResponse("bad signature", status_code=400)
        except (ValueError, UnicodeDecodeError):
            return PlainTextResponse("not an event", status_code=400)
        try:
            outcome = await subscriptions.handle(event)
        except Exception:  # Stripe delivers it again later
            log.exception("stripe event %s failed", event.get("id"))
            return PlainTextResponse("retry later", status_code=500)
        return JSONResponse({"received": True, "outcome": outcome})

    return [Route("/stripe/webhook", webhook, methods=["POST"])]
