"""The parts of a big fan-out on PostgreSQL written side by side, two transactions in flight.

A part's transaction is Python (sizing, paper fills, rows, alerts) and server work (the
COPYs, index updates, the commit) one after the other; written one part after another, each
waits for the other: on PostgreSQL about half of a fan-out's time is the server's. With two
parts in flight, one part's rows are built while the other's are written.

Parts in flight must never meet. Each is a range of follower ids, fixed before any is written
(`part_ranges`), so no two claim the same follower; their rows (orders, positions, alerts)
differ by key, and the rows they share (the signal, the agent) they only read. The paper
venue's fills of two parts touch different accounts; one account in both (two deployments
trading one account) is not filled twice at once: the send sequencer gives its turn to one
transaction, and the other's orders go the usual way after commit.

A range is written whole, with no limit on its size: a follower paused at the layout and
resumed before its range is written makes the range one longer, and is served with the rest
(a limit of the part's size would drop the range's last follower, whom nothing after would
serve). A bounded part never marks the signal executed: parts commit in any order, and a
crash may leave an earlier part unwritten. The caller writes one unbounded part after them
(the followers after the last range: those who joined meanwhile, or none), which does. As
with parts one after another (keyset paging), a deployment whose row commits during the
fan-out with an id below the part being written is not served: it came after the signal.

SQLite has one writer: a second transaction would only wait for the first's lock, so there
the parts stay one after another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execute import Part
from engine.routing_step import Routed
from storage.enums import DeploymentStatus
from storage.models import Deployment, Signal


async def write_in_parts(
    write: Callable[[Part | None], Awaitable[Routed]],
    sessions: async_sessionmaker[AsyncSession],
    signal_id: int,
    size: int,
    in_flight: int,
    wait_turn: Callable[[], Awaitable[None]],
) -> Routed:
    """A signal's fan-out: `write` its first part (None: it routes the signal too), then
    the next ones, each after a tick's closes in flight (`wait_turn`). With `in_flight` > 1,
    the parts after the first are laid out at once and written side by side, then one
    unbounded part ends the fan-out. Returns what the last part wrote."""
    routed = await write(None)
    side_by_side = in_flight > 1
    while routed.next_after is not None:
        after = routed.next_after
        await wait_turn()
        if side_by_side:
            side_by_side = False
            async with sessions() as s:
                parts = await part_ranges(s, signal_id, after, size)
            await write_side_by_side(parts, write, wait_turn, in_flight)
            if parts and parts[-1].upto is not None:
                after = parts[-1].upto  # the last part: whoever joined meanwhile, or none
        routed = await write(Part(after, size))
    return routed


async def part_ranges(s: AsyncSession, signal_id: int, after: int, size: int) -> list[Part]:
    """The signal's active followers after deployment `after`, as ranges of `size`."""
    agent_id = (await s.execute(select(Signal.agent_id).where(Signal.id == signal_id))).scalar()
    ids = (
        await s.execute(
            select(Deployment.id)
            .where(
                Deployment.agent_id == agent_id,
                Deployment.status == DeploymentStatus.ACTIVE,
                Deployment.id > after,
            )
            .order_by(Deployment.id)
        )
    ).scalars()
    ordered = list(ids)
    parts = []
    for start in range(0, len(ordered), size):
        last = ordered[min(start + size, len(ordered)) - 1]
        parts.append(Part(ordered[start - 1] if start else after, size, last))
    return parts


async def write_side_by_side(
    parts: list[Part],
    write: Callable[[Part], Awaitable[object]],
    wait_turn: Callable[[], Awaitable[None]],
    in_flight: int,
) -> None:
    """`write` each part (its transaction and what follows its commit), at most `in_flight`
    at once; each starts after a tick's closes in flight (`wait_turn`). A part that fails
    does not stop the others (each is a transaction of its own): the first failure is raised
    once all have ended. Cancelled, the parts running are cancelled (each rolls back whole,
    its paper fills undone) and awaited: none is left running."""
    slots = asyncio.Semaphore(in_flight)

    async def one(part: Part) -> None:
        try:
            await write(part)
        finally:
            slots.release()

    tasks: list[asyncio.Task[None]] = []
    try:
        for part in parts:
            await slots.acquire()
            await wait_turn()
            tasks.append(asyncio.create_task(one(part)))
    except BaseException:  # cancelled (a shutdown) while parts run: none is left behind
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
