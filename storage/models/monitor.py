"""The pinned trade monitor of /monitor: one message per user and chat app that lists the
user's open positions and is edited as prices move (bot/telegram_monitor.py edits it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, UTCDateTime


class TradeMonitor(CreatedAt, Base):
    __tablename__ = "trade_monitors"
    __table_args__ = (UniqueConstraint("user_id", "platform"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    # None until the editor has sent (and pinned) it; kept, so a restart edits the same one
    message_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")  # what the message shows now
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopping: Mapped[bool] = mapped_column(Boolean, default=False)  # /monitor off: unpin
    # the one replica that edits it, until lease_until (then any replica may take it over)
    editor: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
