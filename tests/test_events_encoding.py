"""Alert payloads are encoded from one shared part per distinct value (engine/events.py
`encoded_payloads`): each stored payload must read back as exactly the event's own."""

from __future__ import annotations

import json
from decimal import Decimal

from engine.events import (
    OrderFailed,
    PositionClosed,
    PositionOpened,
    SignalRejected,
    StopMoved,
    encoded_payloads,
)

D = Decimal


def opened(user: int, pid: int, size: Decimal, agent: str, **more: object) -> PositionOpened:
    return PositionOpened(
        user, pid, agent, "HYPERLIQUID", "ETH", "long", size, D("3000.000000000000000000"),
        D(3), D("100.00"), D("2850"), None, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def closed(user: int, pid: int, size: Decimal, agent: str) -> PositionClosed:
    return PositionClosed(
        user, pid, agent, "HYPERLIQUID", "ETH", "long", size, D(3000), D(3100), "take_profit",
        D("0.27"), D("9.73"), None, "paper",
    )  # fmt: skip


def test_each_payload_reads_back_as_the_events_own_whatever_it_shares() -> None:
    agent = "Hawk"
    size = D("0.1000")
    events = [
        opened(1, 10, size, agent),
        opened(2, 11, size, agent),  # shares every object but its ids with the first
        opened(3, 12, D("0.2"), agent),  # another size
        opened(4, 13, size, 'Ha"wk \u00e9', rationale="a\nb"),  # text that needs escaping
        opened(5, 14, size, agent, call_entry=D("2990.5"), levels_from_call="entry"),
        closed(6, 15, size, agent),
        OrderFailed(7, 99, agent, "ETH", "long", "open", "no_price"),
        SignalRejected(8, 5, agent, "ETH", "long", "held"),
        StopMoved(9, 16, "ETH", "long", D("2900.10")),
        SignalRejected(None, 5, agent, "ETH", "long", "held"),  # type: ignore[arg-type]
        opened(10, 17, D("0.10000"), agent),  # equal to the first's size, another exponent
    ]
    encoded = encoded_payloads(events)
    assert len(encoded) == len(events)
    for e, text in zip(events, encoded, strict=True):
        assert json.loads(text.text) == e.payload(), e
    # one user's payload never carries another's ids or amounts
    assert json.loads(encoded[1].text)["user_id"] == 2
    assert json.loads(encoded[2].text)["size"] == "0.2"
