"""What replicas of `maxxit run` sharing one database coordinate through: lease rows for what
one replica must own at a time (a shard of markets under watch, a singleton job), and the
installation's own identity.

Lease rows, not session advisory locks: those belong to a connection, and break behind
transaction-pooling proxies (PgBouncer) that hand each transaction another connection.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base
from storage.types import UTCDateTime


class Lease(Base):
    """`name` is held by `holder` until `expires_at`; a holder renews before then, anyone
    may take it after."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstallationSetting(Base):
    """Facts about this installation, created once (e.g. the random namespace that makes
    client order ids unique across databases trading on one venue account)."""

    __tablename__ = "installation"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class SendBudgetSlot(Base):
    """Messages sent to the chat API in one second, overall (`all:<second>`) or to one chat
    (`chat:<id>:<second>`), by every replica together (engine/coordination/send_budget.py)."""

    __tablename__ = "send_budget"
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    taken: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
