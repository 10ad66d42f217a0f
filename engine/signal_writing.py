"""A signal's orders written: routed, then one open per active follower, in parts on the
paper venue (engine/fanout_parts.py), each part filled and recorded in its transaction
(engine/immediate.py); and fan-outs a failed part or a dead replica left half way, resumed.
Mixed into the Engine (engine/pipeline.py), whose attributes these are."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.coordination import leases
from engine.execute import Part
from engine.fanout_parts import write_in_parts
from engine.immediate import Immediate
from engine.prices import PriceBook
from engine.route_cost import prepare_costs, routes_by_cost
from engine.routing_step import (
    Routed,
    RoutedSignal,
    route_and_write_orders,
    stalled_signals,
    write_next_part,
)
from engine.sending import OrderSending
from storage.enums import OrderPurpose
from storage.models import Order, Signal

if TYPE_CHECKING:
    from engine.pipeline import EngineConfig

log = logging.getLogger(__name__)

RESUME_TRIES = 3  # a stalled fan-out whose resume failed this often here waits for a restart


# what became of a signal: its venue (None: not traded) and why
SignalOutcome = RoutedSignal


class SignalWriting(OrderSending):
    prices: PriceBook
    config: EngineConfig
    # signals this process routes now or will next (a post's, one after the other)
    _writing_signals: set[int]
    # stalled fan-outs whose resume failed here, by signal: how many times
    _resume_failures: dict[int, int]

    async def resume_stalled_fan_outs(self) -> int:
        """Finish the fan-outs a failed part or a dead replica left half way, as a restart
        does: the followers not served yet. Each is claimed first (a lease named for the
        signal, for as long as it may stall before another may take it), so two replicas
        never resume one together; one that fails is retried by the next sweeps, then left
        to a restart (RESUME_TRIES), and never stops the others. Returns those resumed."""
        before = self.clock() - self.config.fanout_stalled_after
        me, ttl = self.ownership.replica_id, self.config.fanout_stalled_after
        resumed = 0
        for signal_id in await stalled_signals(self.sessions, before):
            tries = self._resume_failures.get(signal_id, 0)
            if signal_id in self._writing_signals or tries >= RESUME_TRIES:
                continue
            claim = f"fanout:{signal_id}"
            if claim not in await leases.acquire(self.sessions, [claim], me, ttl, self.clock()):
                continue  # another replica is resuming it
            try:
                await self.resume_signal(signal_id)
            except Exception:
                tries = self._resume_failures[signal_id] = tries + 1
                log.exception(
                    "resuming the fan-out of signal %s failed (try %d of %d%s)",
                    signal_id,
                    tries,
                    RESUME_TRIES,
                    "; left to a restart" if tries >= RESUME_TRIES else "",
                )
                continue
            finally:
                await leases.release(self.sessions, [claim], me)
            self._resume_failures.pop(signal_id, None)
            resumed += 1
        return resumed

    async def resume_signal(self, signal_id: int) -> SignalOutcome:
        """Route (if it is not yet) and write a signal another life of a process, or another
        replica, left unfinished; a MULTI agent's signal not routed yet reads the venues'
        costs first, as `Engine.ingest` does, with no transaction open."""
        async with self.sessions() as s:
            market = (
                await s.execute(select(Signal.market).where(Signal.id == signal_id))
            ).scalar_one()
            multi = await routes_by_cost(s, [signal_id])
        if multi:
            await prepare_costs(self.venues, market)
        return await self._route_and_execute(signal_id)

    async def _route_and_execute(self, signal_id: int) -> SignalOutcome:
        self._writing_signals.add(signal_id)
        try:
            return await self._write_signal(signal_id)
        finally:
            self._writing_signals.discard(signal_id)

    async def _write_signal(self, signal_id: int) -> SignalOutcome:
        namespace = await self.namespace()
        where = (Order.signal_id == signal_id, Order.purpose == OrderPurpose.OPEN)

        def work_on(part: Part | None) -> Callable[[AsyncSession, Immediate], Any]:
            """The transaction of the fan-out's first part (None: it routes the signal too)
            or of a later one."""

            async def work(s: AsyncSession, immediate: Immediate) -> tuple[Any, ...]:
                # the first batch is written claimed: no UPDATE ... RETURNING to claim it
                claim = self._insert_claim(immediate)
                args = (s, signal_id, self.venues, self.prices, self.clock())
                args += (self.config.approval_ttl, namespace, claim)
                if part is None:
                    size = self.config.fanout_part
                    routed = await route_and_write_orders(*args, part_size=size)
                else:
                    routed = await write_next_part(*args, part)
                # on the paper venue: filled before they were written (written filled), and
                # recorded before this transaction commits
                claimed = len(routed.claimed)
                left = await immediate.record_written(s, routed.claimed, self.clock())
                if claimed < routed.marked or not routed.marked:
                    # rows a unique key already held (written before): claimed the usual way
                    more = await self._claim(s, *where, limit=claim.limit - claimed)
                    left, claimed = left + more, claimed + len(more)
                if not routed.close_signal_ids:
                    left = await self._fill_now(s, immediate, left)
                return routed, left, claimed, claim.next_batch()

            return work

        async def write(part: Part | None) -> Routed:
            (routed, left, claimed, batch_size), filled = await self._one_transaction(work_on(part))
            self._emit(routed.events)
            # [position policy] closes of held positions (policy close/flip) go out before
            # the opens; a flip's open waits for its close to fill (engine/fills.py releases)
            if routed.close_signal_ids:
                await self._send_claimed(
                    Order.signal_id.in_(routed.close_signal_ids),
                    Order.purpose == OrderPurpose.CLOSE,
                )
            # a part's pending rows were all claimed: the sweep for more after the last
            last = routed.next_after is None and (part is None or part.upto is None)
            await self._finish(
                filled, where, left, claimed, batch_size, after_price_path=True, rest_may_wait=last
            )
            return routed

        dialect = getattr(self.sessions.kw.get("bind"), "dialect", None)
        on_postgresql = getattr(dialect, "name", "") == "postgresql"
        in_flight = self.config.fanout_parts_in_flight if on_postgresql else 1
        size, wait_turn = self.config.fanout_part, self.price_path.wait_turn
        last = await write_in_parts(write, self.sessions, signal_id, size, in_flight, wait_turn)
        return last.outcome
