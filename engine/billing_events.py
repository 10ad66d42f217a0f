"""What billing and the notification channels tell users (as engine/events.py's events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.events import Event


@dataclass(slots=True)
class SubscriptionActive(Event):
    """A paid agent's subscription is paid: the user's deployment of it trades."""

    kind: ClassVar[str] = "subscription_active"
    subscription_id: int
    agent: str
    period_end: str  # ISO date, or empty
    as_of: int

    @property
    def dedupe_key(self) -> str:
        return f"sub_active:{self.subscription_id}:{self.as_of}"


@dataclass(slots=True)
class SubscriptionLapsed(Event):
    """A renewal failed or the subscription was canceled: the deployment stops trading."""

    kind: ClassVar[str] = "subscription_lapsed"
    subscription_id: int
    agent: str
    status: str  # Stripe's: past_due, unpaid, canceled, ...
    paused: int  # deployments paused by it
    as_of: int

    @property
    def dedupe_key(self) -> str:
        return f"sub_lapsed:{self.subscription_id}:{self.as_of}"


@dataclass(slots=True)
class ChannelDisabled(Event):
    """A webhook kept failing and was switched off."""

    kind: ClassVar[str] = "channel_disabled"
    channel_id: int
    address: str
    error: str

    @property
    def dedupe_key(self) -> str:
        return f"channel_disabled:{self.channel_id}:{self.address}"
