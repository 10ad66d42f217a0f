"""What the engine tells the outside world. The notifier turns these into outbox rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import Any, ClassVar

from storage.types import EncodedJSON

_FIELDS: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True)
class Event:
    kind: ClassVar[str] = "event"
    user_id: int

    @property
    def dedupe_key(self) -> str:
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        # shallow on purpose: every field is a scalar, and a fan-out makes thousands of these
        names = _FIELDS.get(type(self))
        if names is None:
            names = _FIELDS[type(self)] = tuple(f.name for f in fields(self))
        out = {}
        for name in names:
            v = getattr(self, name)
            out[name] = decimal_text(v) if isinstance(v, Decimal) else v
        return out


# what differs from follower to follower among a fan-out's (or a tick's) alerts: the rest of
# each payload is shared by many of them, and encoded once
_OWN = ("user_id", "position_id", "order_id")


@dataclass(frozen=True, slots=True)
class _Split:
    """How an event class's payload is encoded: its own ids, and the rest (shared)."""

    own: tuple[str, ...]
    rest: tuple[str, ...]
    own_values: Callable[[Any], tuple[Any, ...]]  # C-speed attribute reads, as tuples
    rest_values: Callable[[Any], tuple[Any, ...]]
    fmt: str  # the own ids' part, for ids that are ints (always, but for a test's None)


_SPLIT: dict[type, _Split] = {}
_INT = {int}


def _values_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda e: (one(e),)
    return attrgetter(*names) if names else lambda e: ()


def _split_of(cls: type) -> _Split:
    """An event class's split, made the first time the class is encoded."""
    names = tuple(f.name for f in fields(cls))
    own = tuple(n for n in names if n in _OWN)
    rest = tuple(n for n in names if n not in _OWN)
    fmt = "{" + ", ".join(f'"{n}": %d' for n in own)
    split = _SPLIT[cls] = _Split(own, rest, _values_of(own), _values_of(rest), fmt)
    return split


def encoded_payloads(events: Sequence[Event]) -> list[EncodedJSON]:
    """Each event's payload as JSON text, equal to `json.dumps(e.payload())` but for the
    order of its keys: the part the followers of a fan-out share (agent, market, prices,
    levels, sizes by their collateral) is encoded once per distinct part, and only each
    follower's own ids are written per event. Equal Decimals give one text whatever their
    exponent (`decimal_text`), so keying them by value is exact."""
    shared: dict[tuple[Any, ...], str] = {}
    out = []
    for e in events:
        cls = type(e)
        split = _SPLIT.get(cls) or _split_of(cls)
        values = split.rest_values(e)
        # by value and type: a fan-out's fills give each follower equal amounts in objects
        # of their own; the type keeps 1, True and Decimal(1) apart
        key = (cls, values, tuple(map(type, values)))
        body = shared.get(key)
        if body is None:
            plain = [decimal_text(v) if isinstance(v, Decimal) else v for v in values]
            body = shared[key] = json.dumps(dict(zip(split.rest, plain, strict=True)))
        if not split.own:
            out.append(EncodedJSON(body))
            continue
        ids = split.own_values(e)
        head = (
            split.fmt % ids
            if set(map(type, ids)) == _INT
            else "{"
            + ", ".join(f'"{n}": {json.dumps(i)}' for n, i in zip(split.own, ids, strict=True))
        )
        out.append(EncodedJSON(head + (", " + body[1:] if body != "{}" else "}")))
    return out


@lru_cache(maxsize=4096)  # equal values share one text whatever their exponent: exact
def decimal_text(value: Decimal) -> str:
    """One text per amount whichever database it came from ("3", never "3.000000")."""
    return format(value.normalize(), "f")


@dataclass(slots=True)
class PositionOpened(Event):
    kind: ClassVar[str] = "position_opened"
    position_id: int
    agent: str
    venue: str
    market: str
    side: str
    size: Decimal
    entry_price: Decimal
    leverage: Decimal
    collateral_usd: Decimal
    stop_price: Decimal
    take_profit_price: Decimal | None
    rationale: str = ""  # why the model read the post as a call (LLM classifications)
    # MULTI routed by cost: the next cheapest eligible venue and how much dearer it was
    # (percent of the notional), for "Ostium: 0.06% cheaper than Hyperliquid for this size"
    route_runner_up: str = ""
    route_saving_pct: str = ""
    call_entry: Decimal | None = None  # the entry the call stated, when it stated one
    # which levels came from the call ("entry,stop_loss,take_profit") and which the agent's
    # risk limit refused; empty when the agent's own percentages set them
    levels_from_call: str = ""
    levels_refused: str = ""
    mode: str = ""  # "paper" or "live" (engine/venues/routed.mode_of); "" in older rows
    call_entry_to: Decimal | None = None  # an entry range's other end ("3,150-3,200")

    @property
    def dedupe_key(self) -> str:
        return f"opened:{self.position_id}"


@dataclass(slots=True)
class PositionClosed(Event):
    kind: ClassVar[str] = "position_closed"
    position_id: int
    agent: str
    venue: str
    market: str
    side: str
    size: Decimal
    entry_price: Decimal
    exit_price: Decimal
    close_reason: str
    fees: Decimal
    realized_pnl: Decimal
    # for the closed-trade card's return on margin (None in alerts written before it)
    leverage: Decimal | None = None
    mode: str = ""  # "paper" or "live"

    @property
    def dedupe_key(self) -> str:
        return f"closed:{self.position_id}"


@dataclass(slots=True)
class StopMoved(Event):
    kind: ClassVar[str] = "stop_moved"
    position_id: int
    market: str
    side: str
    stop_price: Decimal
    mode: str = ""  # "paper" or "live"

    @property
    def dedupe_key(self) -> str:
        return f"stop:{self.position_id}:{self.stop_price}"


@dataclass(slots=True)
class OrderFailed(Event):
    kind: ClassVar[str] = "order_failed"
    order_id: int
    agent: str
    market: str
    side: str
    purpose: str
    reason: str

    @property
    def dedupe_key(self) -> str:
        return f"order_failed:{self.order_id}:{self.reason}"


@dataclass(slots=True)
class SignalRejected(Event):
    kind: ClassVar[str] = "signal_rejected"
    signal_id: int
    agent: str
    market: str
    side: str
    reason: str

    @property
    def dedupe_key(self) -> str:
        return f"rejected:{self.signal_id}:{self.user_id}"


@dataclass(slots=True)
class LimitEntryPlaced(Event):
    """The call's stated entry is not reached: the open rests at it until `expires_at`."""

    kind: ClassVar[str] = "limit_entry_placed"
    signal_id: int
    agent: str
    market: str
    side: str
    limit_price: Decimal
    expires_at: str  # ISO 8601, UTC

    @property
    def dedupe_key(self) -> str:
        return f"limit_entry:{self.signal_id}:{self.user_id}"


@dataclass(slots=True)
class ApprovalRequested(Event):
    kind: ClassVar[str] = "approval_requested"
    order_id: int
    agent: str
    market: str
    side: str
    leverage: Decimal
    collateral_usd: Decimal
    mode: str = ""  # "paper" or "live"
    # what the user decides on: the reference price, the size and the levels at that price
    price: Decimal | None = None
    size: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    expires_at: str = ""  # ISO 8601, UTC

    @property
    def dedupe_key(self) -> str:
        return f"approval:{self.order_id}"


@dataclass(slots=True)
class ApprovalExpired(Event):
    kind: ClassVar[str] = "approval_expired"
    order_id: int
    agent: str
    market: str
    side: str

    @property
    def dedupe_key(self) -> str:
        return f"approval_expired:{self.order_id}"


@dataclass(slots=True)
class DeploymentsPaused(Event):
    """The user's daily loss limit was reached: their deployments stop taking new trades."""

    kind: ClassVar[str] = "deployments_paused"
    day: str
    loss: Decimal
    limit: Decimal
    count: int

    @property
    def dedupe_key(self) -> str:
        return f"paused:{self.user_id}:{self.day}"


@dataclass(slots=True)
class WalletLinked(Event):
    kind: ClassVar[str] = "wallet_linked"
    address: str

    @property
    def dedupe_key(self) -> str:
        return f"linked:{self.user_id}:{self.address}"


@dataclass(slots=True)
class AgentApproved(Event):
    """Hyperliquid lists Maxxit's agent key for the user's account: live trading can start."""

    kind: ClassVar[str] = "agent_approved"
    agent: str

    @property
    def dedupe_key(self) -> str:
        return f"agent_approved:{self.user_id}:{self.agent}"


@dataclass(slots=True)
class SourceFailing(Event):
    """A source agents follow keeps failing; the agents' creators are told once."""

    kind: ClassVar[str] = "source_failing"
    handle: str
    error: str

    @property
    def dedupe_key(self) -> str:
        return f"source_failing:{self.handle}:{self.user_id}"


@dataclass(slots=True)
class AgentKeyRotating(Event):
    """An operator started rotating the user's agent key: the user approves the new one
    (Hyperliquid: approveAgent; Ostium: setDelegate from the trader's wallet or Safe)."""

    kind: ClassVar[str] = "agent_key_rotating"
    agent: str
    url: str
    venue: str = "HYPERLIQUID"

    @property
    def dedupe_key(self) -> str:
        return f"agent_key_rotating:{self.user_id}:{self.agent}"


@dataclass(slots=True)
class AgentKeyRotated(Event):
    """The venue names the new agent key (Ostium: the trader's delegate): it replaced the old
    one, which can no longer act; the trades and their levels are unchanged."""

    kind: ClassVar[str] = "agent_key_rotated"
    venue: str
    agent: str
    old_agent: str

    @property
    def dedupe_key(self) -> str:
        return f"agent_key_rotated:{self.user_id}:{self.agent}"


@dataclass(slots=True)
class PausedSkipped(Event):
    """A call came for an agent the user deployed but paused: nothing was traded (sent only
    to users who switched this alert on)."""

    kind: ClassVar[str] = "paused_skipped"
    signal_id: int
    deployment_id: int
    agent: str
    market: str
    side: str

    @property
    def dedupe_key(self) -> str:
        return f"paused_skipped:{self.signal_id}:{self.deployment_id}"
