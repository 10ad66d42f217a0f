"""A venue whose orders wait until the test lets them go: for tests of what the user sees
while a venue is slow, with no timing assertion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Hold:
    reached: asyncio.Event = field(default_factory=asyncio.Event)  # an order is at the venue
    release: asyncio.Event = field(default_factory=asyncio.Event)  # the venue may answer


@asynccontextmanager
async def orders_held(venue: Any) -> AsyncIterator[Hold]:
    """Every order placed inside waits at the venue until `release` (set on the way out
    whatever happens, so a bot stopping after a failed assertion does not wait forever)."""
    hold, place_order = Hold(), venue.place_order

    async def held_place_order(order: Any) -> Any:
        hold.reached.set()
        await hold.release.wait()
        return await place_order(order)

    venue.place_order = held_place_order
    try:
        yield hold
    finally:
        hold.release.set()
