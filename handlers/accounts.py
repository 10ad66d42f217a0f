"""/linkaccount: one Maxxit account across Telegram and Discord. Without a code it shows a
one-time code (10 minutes); that code entered with /linkaccount in the other app joins that
chat account to this one (storage/accounts.py decides what may be joined)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update

from handlers.base import Reply, Response, UserError
from handlers.context import Ctx
from storage import accounts
from storage.models import AccountLinkCode

TTL = timedelta(minutes=10)
# no 0/O, 1/I/L, U: easy to read out and type; 8 characters, about 39 bits
ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
LENGTH = 8


def _hash(code: str) -> str:
    return hashlib.sha256(f"maxxit-link:{code}".encode()).hexdigest()


def _normalized(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())[:32]


def _app(platform: str) -> str:
    return {"telegram": "Telegram", "discord": "Discord"}.get(platform, platform)


async def link_account(ctx: Ctx, args: str) -> Response:
    if args.strip():
        return await _redeem(ctx, _normalized(args))
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    now = ctx.services.clock()
    async with ctx.services.sessions() as s, s.begin():
        # one live code per user: a new one replaces any earlier, unused one
        await s.execute(
            delete(AccountLinkCode).where(
                AccountLinkCode.user_id == ctx.user_id, AccountLinkCode.used_at.is_(None)
            )
        )
        s.add(
            AccountLinkCode(
                code_hash=_hash(code),
                user_id=ctx.user_id,
                platform=ctx.request.platform,
                expires_at=now + TTL,
            )
        )
    shown = f"{code[:4]}-{code[4:]}"
    minutes = int(TTL.total_seconds() // 60)
    return Response([Reply(ctx.t("accounts.code", code=shown, minutes=minutes))])


async def _redeem(ctx: Ctx, code: str) -> Response:
    now = ctx.services.clock()
    async with ctx.services.sessions() as s, s.begin():
        row = (
            await s.execute(
                select(AccountLinkCode).where(
                    AccountLinkCode.code_hash == _hash(code),
                    AccountLinkCode.used_at.is_(None),
                    AccountLinkCode.expires_at > now,
                )
            )
        ).scalar_one_or_none()
        if row is None:
            raise UserError("accounts.bad_code")
        result = await accounts.join(s, ctx.user_id, row.user_id)
        if result != "joined":
            raise UserError(f"accounts.{result}", app=_app(ctx.request.platform))
        used = await s.execute(
            update(AccountLinkCode)
            .where(AccountLinkCode.id == row.id, AccountLinkCode.used_at.is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]  # entered twice at once
            raise UserError("accounts.bad_code")
        other = _app(row.platform)
    # these accounts are another user's now: forgotten once committed too (the write itself
    # forgot them, but a read racing the commit may have kept the old user again)
    if ctx.services.known is not None:
        ctx.services.known.forget_users({ctx.user_id})
    return Response([Reply(ctx.t("accounts.joined", app=_app(ctx.request.platform), other=other))])
