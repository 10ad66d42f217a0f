"""One-time codes that join a chat account to another one's Maxxit account (a code shown in
Telegram, entered in Discord, or the other way round)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, UTCDateTime


class AccountLinkCode(CreatedAt, Base):
    """Only the code's SHA-256 is kept: a database reader cannot take over an account."""

    __tablename__ = "account_link_codes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # where it was shown
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
