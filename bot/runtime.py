"""Process-wide runtime settings of every `maxxit` command.

The engine allocates many short-lived, acyclic objects (row dicts, tuples, Decimals: tens of
thousands per fan-out), so CPython's default cyclic-GC thresholds (a collection every 700
allocations) spend about a fifth of a fan-out scanning. A higher first threshold and freezing
what start-up created out of the full scans keep collection for the rare real cycles
(bench/fanout.py measures both ways).
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


_tuned = False


def tune_gc() -> None:
    """Once per process: what is alive at the first call is start-up, frozen for good."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()  # modules, metadata, compiled statements: never garbage, never rescanned
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
