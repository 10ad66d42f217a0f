"""/start (onboarding, deep links `agent_<id>` and `ref_<code>`) and /help."""

from __future__ import annotations

from sqlalchemy import select, update

from handlers import callbacks
from handlers.agents import agent_card
from handlers.base import Button, Reply, Response
from handlers.context import Ctx
from handlers.price_note import no_prices_note
from storage.models import Agent, User


def _menu(ctx: Ctx) -> list[list[Button]]:
    return [
        [
            Button(ctx.t("start.browse"), callbacks.make("al")),
            Button(ctx.t("start.create"), callbacks.make("cr")),
        ],
        [Button(ctx.t("start.help"), callbacks.make("hp"))],
    ]


async def start(ctx: Ctx, payload: str) -> Response:
    replies: list[Reply] = []
    notes: list[str] = []
    async with ctx.services.sessions() as s, s.begin():
        code = (await s.execute(select(User.referral_code).where(User.id == ctx.user_id))).scalar()
        if payload.startswith("ref_"):
            referrer = (
                await s.execute(select(User.id).where(User.referral_code == payload[4:][:32]))
            ).scalar()
            if referrer is not None and referrer != ctx.user_id:
                done = await s.execute(
                    update(User)
                    .where(User.id == ctx.user_id, User.referred_by_id.is_(None))
                    .values(referred_by_id=referrer)
                )
                if done.rowcount:  # type: ignore[attr-defined]
                    notes.append(ctx.t("start.referred"))
        listed = (await s.execute(select(Agent.id).where(Agent.status == "active"))).first()
    link = f"https://t.me/{ctx.services.bot_username}?start=ref_{code}"
    welcome = ctx.t("start.welcome_new" if ctx.new_user else "start.welcome_back")
    if listed is None:  # never "pick an agent" followed by "no agents yet"
        welcome = ctx.t("start.welcome_empty")
    note = no_prices_note(ctx)
    if note:
        notes.append(note)
    text = "\n\n".join([welcome, *notes, ctx.t("start.referral_link", link=link)])
    replies.append(Reply(text, _menu(ctx)))
    if payload.startswith("agent_"):
        replies.append(await agent_card(ctx, payload[6:]))
    return Response(replies)


async def help_(ctx: Ctx, _: str = "") -> Response:
    return Response([Reply(ctx.t("help.text"))])


async def help_button(ctx: Ctx, _: callbacks.Callback) -> Response:
    return await help_(ctx)
