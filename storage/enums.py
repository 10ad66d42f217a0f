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
    # a paid agent's subscription is not (or no longer) paid: no trades; only a payment
    # turns it active again (the user's Resume does not)
    UNPAID = "unpaid"


class DeploymentMode(StrEnum):
    PAPER = "paper"
    LIVE = "live"


class PositionPolicy(StrEnum):
    """A signal in a market where the deployment already holds a position (engine/
    position_policy.py): the venue holds one net position per account and market."""

    IGNORE = "ignore"  # skip the signal, say why
    ADD = "add"  # same side: add to the position, up to a cap; other side: skip
    CLOSE = "close"  # other side: close the position; same side: skip
    FLIP = "flip"  # other side: close the position, then open the new side; same side: skip


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
    SKIPPED = "skipped"  # the user said no, approval expired, or the position policy; final
    # an open that waits for the close of the position it replaces (policy "flip"); pending
    # once that position is closed, refused if the close cannot be made (engine/fills.py)
    WAITING = "waiting"


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
    OPPOSITE_SIGNAL = "opposite_signal"  # the agent called the other side (policy close/flip)


class LedgerKind(StrEnum):
    CREATOR_SHARE = "creator_share"
    SOURCE_SHARE = "source_share"
    FEE = "fee"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"  # undeliverable (user blocked the bot, too many attempts)
