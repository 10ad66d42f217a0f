"""Wall clock and this process's CPU time of one benchmark step. On a shared machine the wall
clock also counts the time other processes held the CPU; the process's CPU time (every
thread of it, so SQLite's work in aiosqlite's thread is in it; PostgreSQL's server is not)
does not, so both are reported."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timed:
    wall: float
    cpu: float


class Stopwatch:
    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def read(self) -> Timed:
        return Timed(time.perf_counter() - self.wall0, time.process_time() - self.cpu0)


def ratios(subject: list[Timed], base: list[Timed]) -> str:
    """Per trial: subject / baseline, wall clock (CPU time)."""
    return "; ".join(
        f"{s.wall * 1000:.0f}/{b.wall * 1000:.0f} ms = {s.wall / b.wall:.2f}x"
        f" (cpu {s.cpu * 1000:.0f}/{b.cpu * 1000:.0f} ms = {s.cpu / b.cpu:.2f}x)"
        for s, b in zip(subject, base, strict=True)
    )
