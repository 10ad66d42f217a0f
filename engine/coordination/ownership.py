"""Who watches which markets, and who runs each singleton job.

Markets are hashed into a fixed number of shards. Each replica keeps a heartbeat lease
(`replica:<id>`), counts the live replicas, and holds its fair part of the shards: it takes
free or lapsed ones up to that part and hands back extras when a replica joins. When a replica
dies its leases lapse after `ttl`, and the others take its shards on their next round, so every
open position is watched by exactly one live replica (a lapse plus one round: under 15 s with
the defaults). Singleton jobs (pollers, reconciliation, alert delivery) are leases too.

`WholeBook` is the single-process default: it owns everything, with no database round trips.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.coordination import leases
from storage.types import utcnow

log = logging.getLogger(__name__)

SHARDS = 32  # the same on every replica: it decides which shard a market is in


def shard_of(market: str, shards: int = SHARDS) -> int:
    # crc32, not hash(): Python salts str hashes per process, and replicas must agree
    return zlib.crc32(market.encode()) % shards


class Ownership(Protocol):
    replica_id: str

    def owns(self, market: str) -> bool: ...

    def runs(self, job: str) -> bool: ...


@dataclass(slots=True)
class WholeBook:
    """One process owns every market and runs every job."""

    replica_id: str = "single"

    def owns(self, market: str) -> bool:
        return True

    def runs(self, job: str) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Rebalance:
    gained: frozenset[int]
    lost: frozenset[int]


@dataclass(slots=True)
class ShardLeases:
    sessions: async_sessionmaker[AsyncSession]
    replica_id: str
    jobs: tuple[str, ...] = ()
    shards: int = SHARDS
    ttl: timedelta = timedelta(seconds=8)
    clock: Callable[[], datetime] = utcnow
    held_shards: set[int] = field(default_factory=set)
    held_jobs: set[str] = field(default_factory=set)
    # past this instant (last successful renewal + ttl) nothing is believed held: a replica
    # that stalls stops acting before another could have taken over
    valid_until: datetime | None = None

    def owns(self, market: str) -> bool:
        return self._valid() and shard_of(market, self.shards) in self.held_shards

    def runs(self, job: str) -> bool:
        return self._valid() and job in self.held_jobs

    def _valid(self) -> bool:
        return self.valid_until is not None and self.clock() < self.valid_until

    async def round(self) -> Rebalance:
        """Renew, count replicas, take or hand back shards to hold a fair part; take free
        singleton jobs. Call every `ttl / 4` or so."""
        now = self.clock()
        me = f"replica:{self.replica_id}"
        ours = {me} | {_shard_name(n) for n in self.held_shards} | {_job(j) for j in self.held_jobs}
        kept = await leases.acquire(self.sessions, ours, self.replica_id, self.ttl, now)
        before = set(self.held_shards) if self._valid() else set()
        if me not in kept:  # our heartbeat row was taken: we had lapsed; start over
            log.warning("replica %s lapsed; rejoining", self.replica_id)
            kept = await leases.acquire(self.sessions, [me], self.replica_id, self.ttl, now)
        held = {n for n in self.held_shards if _shard_name(n) in kept}
        replicas = await leases.live_holders(self.sessions, "replica:", now)
        fair = math.ceil(self.shards / max(1, len(replicas)))
        if len(held) > fair:
            extra = sorted(held)[fair:]
            await leases.release(self.sessions, map(_shard_name, extra), self.replica_id)
            held -= set(extra)
        elif len(held) < fair:
            taken = await leases.live_holders(self.sessions, "shard:", now)
            free = [n for n in self._preference() if _shard_name(n) not in taken]
            want = free[: fair - len(held)]
            got = await leases.acquire(
                self.sessions, map(_shard_name, want), self.replica_id, self.ttl, now
            )
            held |= {n for n in want if _shard_name(n) in got}
        jobs = {j for j in self.held_jobs if _job(j) in kept}
        missing = [j for j in self.jobs if j not in jobs]
        if missing:
            taken = await leases.live_holders(self.sessions, "job:", now)
            free_jobs = [j for j in missing if _job(j) not in taken]
            got = await leases.acquire(
                self.sessions, map(_job, free_jobs), self.replica_id, self.ttl, now
            )
            jobs |= {j for j in free_jobs if _job(j) in got}
        self.held_shards, self.held_jobs = held, jobs
        self.valid_until = now + self.ttl
        return Rebalance(frozenset(held - before), frozenset(before - held))

    def _preference(self) -> list[int]:
        # replicas start looking at different shards, so they rarely race for the same ones
        start = zlib.crc32(self.replica_id.encode()) % self.shards
        return [(start + i) % self.shards for i in range(self.shards)]

    async def resign(self) -> None:
        """A clean stop hands everything back at once, instead of after a lapse."""
        names: Iterable[str] = [
            f"replica:{self.replica_id}",
            *map(_shard_name, self.held_shards),
            *map(_job, self.held_jobs),
        ]
        await leases.release(self.sessions, names, self.replica_id)
        self.held_shards, self.held_jobs, self.valid_until = set(), set(), None

    def describe(self) -> dict[str, object]:
        return {
            "replica": self.replica_id,
            "shards": sorted(self.held_shards) if self._valid() else [],
            "of_shards": self.shards,
            "jobs": sorted(self.held_jobs) if self._valid() else [],
        }


def _shard_name(n: int) -> str:
    return f"shard:{n}"


def _job(name: str) -> str:
    return f"job:{name}"
