"""Closed vocabularies stored as plain strings (portable, readable in SQL)."""

from __future__ import annotations

from enum import StrEnum


class VenueChoice(StrEnum):
    HYPERLIQUID = "HYPERLIQUID"
    OSTIUM = "OSTIUM"
    MULTI = "MULTI"


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


class DeploymentStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


class DeploymentMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class SignalStatus(StrEnum):
    NEW = "new"
    ROUTED = "routed"
    REJECTED = "rejected"
    EXECUTED = "executed"


class OrderPurpose(StrEnum):
    OPEN = "open"
    CLOSE = "close"


class OrderStatus(StrEnum):
    PENDING = "pending"  # written, venue not yet (known to be) called
    AWAITING_APPROVAL = "awaiting_approval"
    FILLED = "filled"
    REJECTED = "rejected"  # the venue or a rule said no; final
    SKIPPED = "skipped"  # the user said no, or approval expired; final


class PositionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    END_OF_REPLAY = "end_of_replay"
    MANUAL = "manual"
    EXTERNAL = "external"  # closed outside Maxxit (by hand in the venue's app)
    LIQUIDATION = "liquidation"


class LedgerKind(StrEnum):
    CREATOR_SHARE = "creator_share"
    SOURCE_SHARE = "source_share"
    FEE = "fee"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # undeliverable (user blocked the bot, too many attempts)
