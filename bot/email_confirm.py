"""The email confirmation link: GET shows a button, POST confirms. Mail scanners open links
in emails on their own; a GET that confirmed would turn on alerts nobody asked for."""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from handlers.base import Services
from handlers.channels import confirm_email
from handlers.i18n import t

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Maxxit</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:3em auto;padding:0 1em">
{body}</body></html>"""


def _page(body: str, status: int = 200) -> Response:
    return HTMLResponse(PAGE.format(body=body), status_code=status,
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def routes(services: Services) -> list[Route]:
    async def show(request: Request) -> Response:
        token = html.escape(request.query_params.get("t", "")[:64], quote=True)
        label = html.escape(t("en", "email.confirm_page"))
        form = (
            f'<form method="post" action="/email/confirm"><input type="hidden" name="t" '
            f'value="{token}"><button type="submit">{label}</button></form>'
        )
        return _page(form)

    async def confirm(request: Request) -> Response:
        # parsed by hand: request.form() needs python-multipart, a test-only dependency
        fields = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        token = (fields.get("t") or [""])[0][:64]
        user_id = await confirm_email(services, token)
        if user_id is None:
            return _page(html.escape(t("en", "email.confirm_invalid")), 400)
        return _page(html.escape(t("en", "email.confirmed_page")))

    return [
        Route("/email/confirm", show, methods=["GET"]),
        Route("/email/confirm", confirm, methods=["POST"]),
    ]
