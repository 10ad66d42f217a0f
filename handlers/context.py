"""Who is asking, in which language, with what services: built once per request."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.base import Request, Response, Services
from handlers.i18n import pick_language, t, tn
from handlers.known_users import Known
from handlers.reads import read_only
from storage.bulk import insert_ignore
from storage.models import Conversation, Identity, User

_CODE_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class Ctx:
    services: Services
    request: Request
    user_id: int
    identity_id: int
    language: str
    settings: dict[str, Any]
    new_user: bool = False
    # whether this chat had a half-finished wizard when the request came in (read with the
    # identity: most commands then need no read of their own to clear one); None: unknown
    wizard_open: bool | None = None
    kept: Known | None = None  # what handlers/known_users.py may keep of this read

    @property
    def key(self) -> tuple[str, str]:
        """This chat account, as handlers/known_users.py keeps it."""
        return self.request.platform, self.request.user_id

    def forget(self) -> None:
        """What is kept in memory of this account is stale (a wizard written or cleared)."""
        if self.services.known is not None:
            self.services.known.forget(self.key)

    def t(self, key: str, **fields: Any) -> str:
        return t(self.language, key, **fields)

    def tn(self, key: str, n: int, **fields: Any) -> str:
        """A counted phrase in the user's language: ctx.tn("n.trades", 2) -> "2 trades"."""
        return tn(self.language, key, n, **fields)

    def not_yours(self) -> Response:
        """The answer to a button press on something another user owns: nothing changes."""
        return Response(notice=self.t("refused.not_yours"), refused=True)


# a known user's identity, user and whether their chat has a wizard: one statement, built once
_KNOWN = (
    select(
        Identity.id,
        Identity.user_id,
        Identity.chat_id,
        Identity.reachable,
        User.language,
        User.settings,
        select(Conversation.id)
        .where(
            Conversation.identity_id == Identity.id,
            Conversation.chat_id == bindparam("chat_id"),
        )
        .exists()
        .label("wizard_open"),
    )
    .join(User, User.id == Identity.user_id)
    .where(Identity.platform == bindparam("platform"), Identity.external_id == bindparam("user"))
)


async def resolve(services: Services, req: Request) -> Ctx:
    """The user behind this chat account: from memory when known (handlers/known_users.py),
    else from the database (and then kept)."""
    known = services.known
    if known is None:
        return await _resolve(services, req)
    await known.current()
    key = (req.platform, req.user_id)
    hit = known.get(key)
    if hit is not None and hit.chat_id == req.chat_id:
        # a command only asks whether to leave a wizard behind; free text and buttons read
        # their wizard (a step of one started on another replica is never missed)
        wizard_open = hit.wizard_open if req.command is not None else None
        settings = dict(hit.settings)
        return Ctx(services, req, hit.user_id, hit.identity_id, hit.language, settings,
                   wizard_open=wizard_open)  # fmt: skip
    epoch = known.epoch
    ctx = await _resolve(services, req)
    if ctx.kept is not None:
        known.keep(key, ctx.kept, epoch)
    ctx.kept = None
    return ctx


async def _resolve(services: Services, req: Request) -> Ctx:
    """A known user (nearly every update) in one read, outside a transaction; else, in one,
    the user made or the identity brought up to date."""
    params = {"platform": req.platform, "user": req.user_id, "chat_id": req.chat_id}
    async with read_only(services) as conn:
        known = (await conn.execute(_KNOWN, params)).one_or_none()
    if known is not None and known.chat_id == req.chat_id and known.reachable:
        settings = known.settings or {}
        wizard_open = bool(known.wizard_open)
        kept = Known(known.id, known.user_id, known.chat_id, known.language, settings, wizard_open)
        return Ctx(services, req, known.user_id, known.id, known.language, dict(settings),
                   wizard_open=wizard_open, kept=kept)  # fmt: skip
    async with services.sessions() as s, s.begin():
        known = (await s.execute(_KNOWN, params)).one_or_none()  # again, in the transaction
        return await _first_contact(s, services, req, known)


async def _first_contact(
    session: AsyncSession, services: Services, req: Request, known: Any
) -> Ctx:
    """The user behind this chat account, created on first contact in their app's language;
    an identity written from another chat, or unreachable till now, brought up to date.
    Race-safe: two first messages at once still make one user (unique platform+external id)."""
    found = known
    new_user = False
    if found is None:
        user = User(
            display_name=(req.display_name or req.username or "")[:200],
            language=pick_language(req.language_code),
            referral_code="".join(secrets.choice(_CODE_ALPHABET) for _ in range(10)),
            settings={},
        )
        session.add(user)
        await session.flush()
        await insert_ignore(
            session,
            Identity,
            [
                {
                    "user_id": user.id,
                    "platform": req.platform,
                    "external_id": req.user_id,
                    "chat_id": req.chat_id,
                    "username": (req.username or "")[:100] or None,
                    "reachable": True,
                }
            ],
        )
        found = (
            await session.execute(
                select(Identity.id, Identity.user_id, Identity.chat_id, Identity.reachable).where(
                    Identity.platform == req.platform, Identity.external_id == req.user_id
                )
            )
        ).one()
        new_user = found.user_id == user.id
        if not new_user:  # another request won the race: drop our orphan
            await session.delete(user)
    elif found.chat_id != req.chat_id or not found.reachable:
        # the user wrote to us again: they can be reached (again) in this chat
        await session.execute(
            update(Identity)
            .where(Identity.id == found.id)
            .values(chat_id=req.chat_id, reachable=True)
        )
    language, settings = (
        await session.execute(select(User.language, User.settings).where(User.id == found.user_id))
    ).one()
    return Ctx(services, req, found.user_id, found.id, language, dict(settings or {}), new_user)
