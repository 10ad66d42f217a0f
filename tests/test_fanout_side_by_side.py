"""On PostgreSQL the parts of a big fan-out after the first are written two at a time
(engine/fanout_parts.py): ranges of followers fixed before any is written, so two parts
never meet; each follower gets one order; a part that fails leaves the signal unfinished
(never executed by a later part that committed first) and a restart serves exactly the
followers it missed; a follower who joins during the fan-out is served by the last part."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import select, update

import engine.signal_writing
from engine.execute import Part
from engine.pipeline import Engine
from storage.enums import DeploymentStatus, SignalStatus
from storage.models import Deployment, Order, OutboxMessage, Position, Signal
from tests.test_fanout_parts import _engine_on
from tests.test_pipeline import _count, _engine, post

FOLLOWERS = [{"collateral_usd": "100", "leverage": "2"}] * 7  # parts: 2 | 2, 2, 1 | none


@pytest.fixture(autouse=True)
def _postgresql_only(sessions) -> None:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: its parts are written one after another")


def _in_parts_of_two(engine_: Engine) -> Engine:
    engine_.config = replace(engine_.config, fanout_part=2, fanout_parts_in_flight=2)
    return engine_


class Parts:
    """Watches `write_next_part`: the parts begun, how many part transactions were open at
    once (counted from a part's start until its rows are written, before its commit), and a
    part that fails (the process dies while writing it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail: int | None = None) -> None:
        self.begun: list[Part] = []
        self.in_flight = self.most_in_flight = 0
        real = engine.signal_writing.write_next_part

        async def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
            part = args[-1]
            self.begun.append(part)
            number = len(self.begun)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if number == fail:
                    raise RuntimeError("killed while writing a part")
                written = await real(*args, **kwargs)
                # still inside the part's transaction (it commits after this returns): a
                # while here, and the next part's transaction opens meanwhile
                await asyncio.sleep(0.01)
                return written
            finally:
                self.in_flight -= 1

        monkeypatch.setattr(engine.signal_writing, "write_next_part", watched)


async def _one_order_each(sessions) -> list[int]:
    async with sessions() as s:
        served = (await s.execute(select(Order.deployment_id))).scalars().all()
    assert sorted(served) == sorted(set(served)), "a follower got two orders"
    return sorted(served)


async def _signal_status(sessions) -> str:
    async with sessions() as s:
        return (await s.execute(select(Signal.status))).scalar_one()


async def test_parts_side_by_side_serve_every_follower_once(sessions, monkeypatch) -> None:
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS))
    parts = Parts(monkeypatch)
    await engine_.ingest(post())
    assert parts.most_in_flight == 2, "the parts were written one after another"
    bounded = [p for p in parts.begun if p.upto is not None]
    assert len(bounded) == 3 and parts.begun[-1].upto is None  # then the part that ends it
    spans = sorted((p.after, p.upto) for p in bounded)
    assert all(a[1] <= b[0] for a, b in pairwise(spans)), spans
    assert len(await _one_order_each(sessions)) == 7
    assert await _count(sessions, Position) == 7
    assert await _count(sessions, OutboxMessage, OutboxMessage.kind == "position_opened") == 7
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
    async with sessions() as s:
        assert set((await s.execute(select(Order.status))).scalars()) == {"filled"}
    assert len(engine_.index) == 7
    assert len(engine_.venues["HYPERLIQUID"]._fills) == 7


async def test_a_failed_part_leaves_the_signal_unfinished_and_a_restart_serves_the_rest(
    sessions, monkeypatch
) -> None:
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS))
    Parts(monkeypatch, fail=1)  # the first part written side by side dies
    with pytest.raises(RuntimeError, match="killed while writing a part"):
        await engine_.ingest(post())
    # the parts after it committed, but none of them may end the fan-out
    assert await _count(sessions, Position) == 7 - 2
    assert await _signal_status(sessions) == SignalStatus.ROUTED
    monkeypatch.undo()
    again = _in_parts_of_two(await _engine_on(sessions, engine_))
    await again.start()  # a new life of the process resumes the signal
    assert len(await _one_order_each(sessions)) == 7
    assert await _count(sessions, Position) == 7
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
    assert len(again.venues["HYPERLIQUID"]._fills) == 2  # only the two it missed
    async with sessions() as s:
        kinds = set((await s.execute(select(OutboxMessage.kind))).scalars())
    assert kinds == {"position_opened"}  # nobody served before was decided again


async def test_a_follower_who_joins_during_the_fan_out_is_served_by_the_last_part(
    sessions, monkeypatch
) -> None:
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS))
    real = engine.signal_writing.write_next_part
    joined: list[int] = []
    first_call = [True]

    async def join_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if first_call.pop() if first_call else False:
            # the ranges are laid out by now: the newcomer comes after all of them
            async with sessions() as s, s.begin():
                first = (await s.execute(select(Deployment).limit(1))).scalar_one()
                newcomer = Deployment(
                    user_id=first.user_id,
                    agent_id=first.agent_id,
                    account="paper:newcomer",  # an account of its own: nothing held there
                    collateral_usd=Decimal(100),
                    leverage=Decimal(2),
                    status=first.status,
                )
                s.add(newcomer)
                await s.flush()
                joined.append(newcomer.id)
        return await real(*args, **kwargs)

    monkeypatch.setattr(engine.signal_writing, "write_next_part", join_once)
    await engine_.ingest(post())
    served = await _one_order_each(sessions)
    assert joined[0] in served and len(served) == 8
    assert await _signal_status(sessions) == SignalStatus.EXECUTED


async def test_a_follower_resumed_after_the_layout_is_served_and_nobody_dropped(
    sessions, monkeypatch
) -> None:
    """A range is laid out with the followers active then; one paused at the layout and
    resumed before its range is written makes the range longer: every active follower,
    the resumed one included, gets an order (a limit of the part's size dropped the range's
    last follower, and the signal ended executed without them)."""
    engine_ = _in_parts_of_two(await _engine(sessions, FOLLOWERS))
    async with sessions() as s:
        ids = sorted((await s.execute(select(Deployment.id))).scalars())
    paused = ids[2]  # in the first range laid out (the first part writes ids[0:2])
    async with sessions() as s, s.begin():
        await s.execute(
            update(Deployment).where(Deployment.id == paused).values(status=DeploymentStatus.PAUSED)
        )
    real = engine.signal_writing.write_next_part
    first_part = [True]

    async def resumed_meanwhile(*args, **kwargs):  # type: ignore[no-untyped-def]
        if first_part and first_part.pop():
            async with sessions() as s, s.begin():
                await s.execute(
                    update(Deployment)
                    .where(Deployment.id == paused)
                    .values(status=DeploymentStatus.ACTIVE)
                )
        return await real(*args, **kwargs)

    monkeypatch.setattr(engine.signal_writing, "write_next_part", resumed_meanwhile)
    await engine_.ingest(post())
    assert await _one_order_each(sessions) == ids
    assert await _signal_status(sessions) == SignalStatus.EXECUTED
