"""Reconciliation runs: what the venue closed without us (a resting trigger, a close in the
venue's app, a liquidation) closed in our books at the venue's own fills, once; and the prompt
run after a close the venue refused because it was already flat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from engine import reconcile
from engine.close import write_close_orders
from storage.enums import OrderPurpose
from storage.models import Order

if TYPE_CHECKING:
    from engine.pipeline import Engine

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._runs: dict[str, asyncio.Task[int]] = {}
        self._raced: set[str] = set()  # venues that refused closes as already flat
        self._race_tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self, venue_name: str) -> int:
        """Close in our books what the venue closed without us: first positions our resting
        triggers closed (at the trigger's fill, as stop loss, take profit or trailing stop),
        then those closed outside Maxxit (engine/reconcile.py); then finish orders whose
        outcome we never learned. Returns positions closed.

        One run per venue at a time, without a lock across the venue reads: a caller that
        finds a run in progress waits for it and then starts its own (the venue may have
        changed since that run read it). Two runs at once would only waste reads: the guarded
        updates keep the books right either way."""
        running = self._runs.get(venue_name)
        if running is not None and not running.done():
            with contextlib.suppress(Exception):  # its caller hears of its failure
                await asyncio.shield(running)
        task = self._runs.get(venue_name)
        if task is None or task.done() or task is running:
            task = self._runs[venue_name] = asyncio.create_task(self._run(venue_name))
        return await asyncio.shield(task)

    async def _run(self, venue_name: str) -> int:
        engine = self.engine
        venue = engine.venues.get(venue_name)
        if venue is None or not hasattr(venue, "user_fills"):
            return 0
        closes: list[reconcile.ExternalClose] = []
        protection = None if engine.protection is None else engine.protection.for_venue(venue_name)
        if protection is not None:
            triggered = await protection.triggered(await engine.namespace())
            if triggered:
                sizes = await reconcile.open_sizes(
                    engine.sessions, [t.position_id for t in triggered]
                )
                closes = [
                    t.as_external_close(sizes[t.position_id])
                    for t in triggered
                    if t.position_id in sizes
                ]
        by_trigger = {c.position_id for c in closes}
        found = await reconcile.find_external_closes(engine.sessions, venue)  # type: ignore[arg-type]
        closes += [c for c in found if c.position_id not in by_trigger]
        if closes:
            reasons = {c.position_id: c.reason for c in closes}
            async with engine.sessions() as s, s.begin():
                written = await write_close_orders(
                    s, reasons, engine.clock(), await engine.namespace()
                )
                signal_ids = written.signal_ids
                cloids = await reconcile.close_cloids(s, list(reasons))
            fills = reconcile.fills_for(closes, cloids)
            adopt = reconcile.AdoptVenue(venue_name, fills)
            await engine._send_claimed(
                Order.signal_id.in_(signal_ids),
                Order.purpose == OrderPurpose.CLOSE,
                Order.client_order_id.in_(list(fills)),
                look_up_first=True,
                place=False,
                venues={venue_name: adopt},
            )
        await engine.resume_pending()
        return len(closes)

    def soon(self, venue_name: str) -> None:
        """A close refused because the venue no longer holds the position: a resting trigger
        (or a close outside Maxxit) got there first. Reconcile now, in the background (a tick's
        closes must not wait for it), so the books close at the venue's own fill; a refusal
        during a run asks for one more run."""
        self._raced.add(venue_name)
        task = self._race_tasks.get(venue_name)
        if task is None or task.done():
            self._race_tasks[venue_name] = asyncio.create_task(self._settle(venue_name))

    async def _settle(self, venue_name: str) -> None:
        while venue_name in self._raced:
            self._raced.discard(venue_name)
            try:
                await self.run(venue_name)
            except Exception:  # the refused close is retried; its next refusal asks again
                log.exception("reconciling %s after a refused close failed", venue_name)

    async def settle(self) -> None:
        """Wait for the reconciliations refused closes started (tests, shutdown)."""
        for task in list(self._race_tasks.values()):
            await task
