"""Agent-key rotations: the new key waits here, sealed, until the user approves it at the
venue; then it replaces the old one in agent_keys (which the venue revoked by that approval)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, CreatedAt
from storage.types import BigId, UTCDateTime


class AgentKeyRotation(CreatedAt, Base):
    __tablename__ = "agent_key_rotations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    venue: Mapped[str] = mapped_column(String(16))
    old_address: Mapped[str] = mapped_column(String(42))
    new_address: Mapped[str] = mapped_column(String(42))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(32))
    # set once the venue lists the new key and it replaced the old one; or given up
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
