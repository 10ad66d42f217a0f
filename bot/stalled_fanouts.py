"""Fan-outs left half way while the service runs (a part that failed, a replica that died
mid-way) are finished in the background, by one replica at a time (the "fanouts" job), as a
restart would finish them (Engine.resume_stalled_fan_outs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine.pipeline import Engine

log = logging.getLogger(__name__)

JOB = "fanouts"


class StalledFanOuts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Start a resume unless one runs (a big fan-out takes seconds: never waited for
        by the service's loop)."""
        if not self.engine.ownership.runs(JOB):
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._resume())

    async def _resume(self) -> None:
        try:
            resumed = await self.engine.resume_stalled_fan_outs()
        except Exception:
            log.exception("resuming stalled fan-outs failed; the next check retries")
            return
        if resumed:
            log.info("resumed %d stalled fan-out(s)", resumed)

    async def stop(self) -> None:
        """A resume cut short is rolled back whole, part by part: the next start resumes it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
