"""A fan-out left half way while the service runs (a part that failed; a replica that died
mid-way) is finished without a restart: the sweep (Engine.resume_stalled_fan_outs, run by
bot/stalled_fanouts.py) serves the followers not served yet, once each, and leaves alone a
fan-out still being written, here or elsewhere."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

import engine.signal_writing
from bot.stalled_fanouts import StalledFanOuts
from engine.coordination import leases
from engine.coordination.ownership import WholeBook
from engine.pipeline import Engine
from engine.prices import PriceTick
from engine.signal_writing import RESUME_TRIES
from storage.enums import SignalStatus
from storage.models import Lease, Order, OutboxMessage, Position, Signal
from storage.types import utcnow
from tests.test_fanout_parts import _engine_on
from tests.test_pipeline import NOW, _count, _engine, post

FOLLOWERS = [{"collateral_usd": "100", "leverage": "2"}] * 5


def _in_parts_of_two(engine_: Engine) -> Engine:
    engine_.config = replace(engine_.config, fanout_part=2)
    return engine_


def _die_in_the_next_part(monkeypatch: pytest.MonkeyPatch) -> None:
    async def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("killed while writing a part")

    monkeypatch.setattr(engine.signal_writing, "write_next_part", killed)


async def _stalled(sessions, monkeypatch) -> tuple[Engine, list[datetime]]:
    """A fan-out whose second part failed at NOW: two of five followers served, the
    signal routed; the engine and its clock, to move."""
    clock = [NOW]
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS, clock=clock))
    _die_in_the_next_part(monkeypatch)
    with pytest.raises(RuntimeError):
        await engine_.ingest(post())
    monkeypatch.undo()
    assert await _count(sessions, Position) == 2
    return engine_, clock


async def _signal_status(sessions) -> str:
    async with sessions() as s:
        return (await s.execute(select(Signal.status))).scalar_one()


async def _one_order_each(sessions) -> int:
    async with sessions() as s:
        served = (await s.execute(select(Order.deployment_id))).scalars().all()
    assert sorted(served) == sorted(set(served)), "a follower got two orders"
    return len(served)


async def test_a_fan_out_a_failed_part_stopped_is_finished_without_a_restart(
    sessions, monkeypatch
) -> None:
    engine_, clock = await _stalled(sessions, monkeypatch)
    assert await _signal_status(sessions) == SignalStatus.ROUTED
    # a minute on, it may still be being written (by another replica): left alone
    clock[0] = NOW + timedelta(minutes=1)
    assert await engine_.resume_stalled_fan_outs() == 0
    assert await _count(sessions, Position) == 2
    clock[0] = NOW + timedelta(minutes=3)
    assert await engine_.resume_stalled_fan_outs() == 1
    assert await _one_order_each(sessions) == 5
    assert await _count(sessions, Position) == 5
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_opened") == 5
    assert len(engine_.index) == 5  # the monitor watches what the sweep opened
    assert len(engine_.venues["HYPERLIQUID"]._fills) == 5
    assert await engine_.resume_stalled_fan_outs() == 0  # finished: nothing more


async def test_another_replicas_stalled_fan_out_is_finished_by_the_sweep(
    sessions, monkeypatch
) -> None:
    dead, _ = await _stalled(sessions, monkeypatch)
    # another process on the same database, whose books never held the dead one's
    survivor = _in_parts_of_two(await _engine_on(sessions, dead))
    survivor.clock = lambda: NOW + timedelta(minutes=5)
    sweep = StalledFanOuts(survivor)
    sweep.check()
    await asyncio.wait_for(sweep._task, 10)  # type: ignore[arg-type]
    assert await _one_order_each(sessions) == 5
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
    assert len(survivor.venues["HYPERLIQUID"]._fills) == 3  # only those not served
    await sweep.stop()


async def test_a_signal_being_written_here_is_never_resumed_alongside(
    sessions, monkeypatch
) -> None:
    clock = [NOW]
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS, clock=clock))
    real = engine.signal_writing.write_next_part
    resumed: list[int] = []
    first_part = [True]

    async def slow_part(*args, **kwargs):  # type: ignore[no-untyped-def]
        if first_part and first_part.pop():
            # minutes pass while this part is written: the sweep runs meanwhile
            clock[0] = NOW + timedelta(minutes=10)
            resumed.append(await engine_.resume_stalled_fan_outs())
        return await real(*args, **kwargs)

    monkeypatch.setattr(engine.signal_writing, "write_next_part", slow_part)
    await engine_.ingest(post())
    assert resumed == [0]
    assert await _one_order_each(sessions) == 5
    assert await _signal_status(sessions) == SignalStatus.EXECUTED


async def test_the_sweep_runs_only_where_its_job_is_held(sessions) -> None:
    engine_ = await _engine(sessions, FOLLOWERS)

    class NotOurs(WholeBook):
        def runs(self, job: str) -> bool:
            return job != "fanouts"

    engine_.ownership = NotOurs()
    sweep = StalledFanOuts(engine_)
    sweep.check()
    assert sweep._task is None


async def test_a_fan_out_written_to_lately_is_left_to_its_writer(sessions, monkeypatch) -> None:
    first, clock = await _stalled(sessions, monkeypatch)
    # another replica resumed it at +2.5 min, wrote one part, and is (as far as anyone can
    # tell) still writing: its part's orders are recent
    other = _in_parts_of_two(await _engine_on(sessions, first))
    other.clock = lambda: NOW + timedelta(minutes=2, seconds=30)
    _die_in_the_next_part(monkeypatch)  # after its first part, which routes nothing new
    async with sessions() as s:
        signal_id = (await s.execute(select(Signal.id))).scalar_one()
    with pytest.raises(RuntimeError):
        await other._route_and_execute(signal_id)  # as its own sweep would
    monkeypatch.undo()
    assert await _count(sessions, Position) == 4
    clock[0] = NOW + timedelta(minutes=3)  # its routing is old, its last part is not
    assert await first.resume_stalled_fan_outs() == 0
    clock[0] = NOW + timedelta(minutes=5)
    assert await first.resume_stalled_fan_outs() == 1
    assert await _one_order_each(sessions) == 5
    assert await _signal_status(sessions) == SignalStatus.EXECUTED


async def test_a_fan_out_another_replica_has_claimed_is_left_to_it(sessions, monkeypatch) -> None:
    engine_, clock = await _stalled(sessions, monkeypatch)
    async with sessions() as s:
        signal_id = (await s.execute(select(Signal.id))).scalar_one()
    clock[0] = NOW + timedelta(minutes=3)
    # another replica's sweep claimed it a moment ago (and is resuming it)
    claim = f"fanout:{signal_id}"
    assert await leases.acquire(sessions, [claim], "replica-b", timedelta(minutes=2), clock[0])
    assert await engine_.resume_stalled_fan_outs() == 0
    assert await _count(sessions, Position) == 2
    clock[0] = NOW + timedelta(minutes=6)  # its claim lapsed, and nothing was written since
    assert await engine_.resume_stalled_fan_outs() == 1
    assert await _one_order_each(sessions) == 5
    async with sessions() as s:  # the claim is given back once the fan-out is finished
        assert (await s.execute(select(Lease).where(Lease.name == claim))).first() is None


async def test_a_fan_out_that_cannot_be_resumed_does_not_hold_up_the_others(
    sessions, monkeypatch, caplog
) -> None:
    clock = [NOW]
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS, clock=clock))
    engine_.prices.update(PriceTick(NOW, "BTC", Decimal("90000")))
    _die_in_the_next_part(monkeypatch)
    for text, pid in (("Long $ETH now", "1"), ("Long $BTC now", "2")):
        with pytest.raises(RuntimeError):
            await engine_.ingest(post(text, pid=pid))
    monkeypatch.undo()
    async with sessions() as s:
        first, second = (await s.execute(select(Signal.id).order_by(Signal.id))).scalars()
    real = engine_._write_signal
    tried: list[int] = []

    async def broken_first(signal_id: int):  # type: ignore[no-untyped-def]
        tried.append(signal_id)
        if signal_id == first:
            raise KeyError("a market the venue no longer lists")
        return await real(signal_id)

    engine_._write_signal = broken_first  # type: ignore[method-assign]
    clock[0] = NOW + timedelta(minutes=3)
    assert await engine_.resume_stalled_fan_outs() == 1  # the second, despite the first
    async with sessions() as s:
        status = dict((await s.execute(select(Signal.id, Signal.status))).all())
    assert status == {first: SignalStatus.ROUTED, second: SignalStatus.EXECUTED}
    for _ in range(RESUME_TRIES + 2):  # tried by the next sweeps, then left to a restart
        await engine_.resume_stalled_fan_outs()
    assert tried.count(first) == RESUME_TRIES
    assert "left to a restart" in caplog.text


async def test_a_signal_left_new_by_a_crash_before_routing_is_routed_and_written(
    sessions, monkeypatch
) -> None:
    """A signal made but never routed (its process died in between) waits for no restart
    either. Its age is its row's (the database's clock), so the engine's clock is now."""
    clock = [utcnow()]
    engine_ = await _engine(sessions, FOLLOWERS, clock=clock)

    async def died_before_routing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("killed before routing")

    monkeypatch.setattr(engine.signal_writing, "route_and_write_orders", died_before_routing)
    with pytest.raises(RuntimeError):
        await engine_.ingest(post())
    monkeypatch.undo()
    assert await _signal_status(sessions) == SignalStatus.NEW
    assert await engine_.resume_stalled_fan_outs() == 0  # just made: maybe still on its way
    clock[0] = utcnow() + timedelta(minutes=3)
    assert await engine_.resume_stalled_fan_outs() == 1
    assert await _one_order_each(sessions) == 5
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
