"""Monitor benchmark on a realistic book: 200 markets, each a random walk; signals open along
it (one side and one set of levels each, the agent's, shared by the signal's ~50 followers),
and every position has seen every price since it opened: the book is built by replaying the
walk through the index itself, so trailing activations, peaks and moved stops are what they
would be. Positions a level closed during the replay are gone.

Then one update per market, scaled so that about 1% of open positions trigger, applied by:
- the index (engine/monitor.py);
- a Decimal loop: the reference rule (engine/levels.py) on every position;
- a float loop: the same rule on Python floats, position by position;
- numpy: the same rule on float64 arrays, every position of the market at once.
All four on the same positions and prices; the index must close exactly what the Decimal rule
closes (asserted); the float baselines' disagreements are counted.

    python -m bench.monitor_tick [--positions 100000] [--markets 200] [--trials 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from engine.levels import RiskLevels, RiskParams
from engine.monitor import PositionIndex

D = Decimal
STEPS = 400  # prices per market's walk


def _params(rng: random.Random) -> RiskParams:
    # what agents use: stops 1-5%, targets 3-15% or none, trailing after 1-4% by 0.5-2%
    trailing = rng.random() < 0.7
    return RiskParams(
        stop_loss_pct=D(rng.choice(["0.01", "0.015", "0.02", "0.03", "0.05"])),
        take_profit_pct=None
        if rng.random() < 0.3
        else D(rng.choice(["0.03", "0.05", "0.1", "0.15"])),
        trailing_activation_pct=D(rng.choice(["0.01", "0.02", "0.03", "0.04"]))
        if trailing
        else None,
        trailing_distance_pct=D(rng.choice(["0.005", "0.01", "0.02"])) if trailing else None,
    )


@dataclass
class Book:
    index: PositionIndex
    # per market: (levels stepped through the walk, follower position ids) of open signals
    signals: dict[str, list[tuple[RiskLevels, list[int]]]]
    last: dict[str, D]

    @property
    def positions(self) -> int:
        return sum(len(ids) for sigs in self.signals.values() for _, ids in sigs)


def build(n: int, markets: int, seed: int) -> Book:
    rng = random.Random(seed)
    index = PositionIndex()
    signals: dict[str, list[tuple[RiskLevels, list[int]]]] = {}
    last: dict[str, D] = {}
    quantum = D("0.000001")
    followers = 50
    # about a third of the signals opened survive the walk: open what leaves about n
    per_step = 2.75 * n / (markets * followers * STEPS)
    next_id = 1
    for m in range(markets):
        name = f"M{m}"
        price = D(rng.choice(["0.5", "3", "25", "180", "3000", "65000"]))
        live: list[tuple[RiskLevels, list[int]]] = []
        for _ in range(STEPS):
            price = (price * (1 + D(rng.randint(-40, 41)) / 10_000)).quantize(quantum)
            closed = {t.position_id for t in index.on_price(name, price)}
            still = []
            for levels, ids in live:
                reason = levels.step(price)
                gone = [i for i in ids if i in closed]
                assert (reason is not None) == bool(gone) and len(gone) in (0, len(ids))
                if reason is None:
                    still.append((levels, ids))
            live = still
            opens = int(per_step) + (rng.random() < per_step - int(per_step))
            for _ in range(opens):
                levels = RiskLevels.initial(rng.choice(["long", "short"]), price, _params(rng))
                ids = list(range(next_id, next_id + rng.randint(20, 80)))
                next_id += len(ids)
                for pid in ids:
                    index.add(pid, name, levels)
                live.append((levels, ids))
        signals[name] = live
        last[name] = price
    return Book(index, signals, last)


def choose_moves(book: Book, target: float, seed: int) -> dict[str, D]:
    """One update per market, scaled so about `target` of all positions trigger."""
    rng = random.Random(seed)
    direction = {m: rng.choice([1, -1]) * (0.5 + rng.random()) for m in book.last}
    total = book.positions

    def moves(size: float) -> dict[str, D]:
        return {m: p * (1 + D(str(round(direction[m] * size, 6)))) for m, p in book.last.items()}

    lo, hi = 0.0, 0.05
    for _ in range(25):
        mid = (lo + hi) / 2
        mv = moves(mid)
        hit = sum(
            len(ids)
            for m, sigs in book.signals.items()
            for lv, ids in sigs
            if copy.copy(lv).step(mv[m])
        )
        lo, hi = (mid, hi) if hit / total < target else (lo, mid)
    return moves(hi)


# ---- baselines: every position its own state, as a plain implementation would keep it ----


def decimal_book(book: Book) -> dict[str, list[tuple[int, RiskLevels]]]:
    return {
        m: [(pid, copy.copy(lv)) for lv, ids in sigs for pid in ids]
        for m, sigs in book.signals.items()
    }


def decimal_tick(positions: dict[str, list[tuple[int, RiskLevels]]], moves: dict[str, D]) -> set:
    closed = set()
    for market, price in moves.items():
        for pid, lv in positions[market]:
            if lv.step(price):
                closed.add(pid)
    return closed


def float_book(book: Book) -> dict[str, list[list]]:
    """[id, long, stop, tp, activation, distance, peak, active] per position, floats."""

    def f(x: D | None) -> float | None:
        return None if x is None else float(x)

    return {
        m: [
            [
                pid,
                lv.side == "long",
                float(lv.stop),
                f(lv.take_profit),
                f(lv.activation),
                f(lv.distance),
                float(lv.peak),
                lv.trailing_active,
            ]
            for lv, ids in sigs
            for pid in ids
        ]
        for m, sigs in book.signals.items()
    }


def float_tick(positions: dict[str, list[list]], moves: dict[str, D]) -> set:
    closed = set()
    for market, price_d in moves.items():
        price = float(price_d)
        for p in positions[market]:
            pid, long, stop, tp, act, dist, peak, active = p
            if long:
                if price > peak:
                    peak = p[6] = price
                if act is not None and not active and price >= act:
                    active = p[7] = True
                if active and dist is not None:
                    stop = p[2] = max(stop, peak * (1 - dist))
                if (tp is not None and price >= tp) or price <= stop:
                    closed.add(pid)
            else:
                if price < peak:
                    peak = p[6] = price
                if act is not None and not active and price <= act:
                    active = p[7] = True
                if active and dist is not None:
                    stop = p[2] = min(stop, peak * (1 + dist))
                if (tp is not None and price <= tp) or price >= stop:
                    closed.add(pid)
    return closed


def numpy_book(book: Book) -> dict[str, dict[str, np.ndarray]]:
    """Per market, columns in x-space (x = price for longs, -price for shorts)."""
    out = {}
    for m, rows in float_book(book).items():
        sign = np.array([1.0 if r[1] else -1.0 for r in rows])
        nan = float("nan")
        out[m] = {
            "id": np.array([r[0] for r in rows], dtype=np.int64),
            "sign": sign,
            "stop": sign * np.array([r[2] for r in rows]),
            "tp": sign * np.array([nan if r[3] is None else r[3] for r in rows]),
            "act": sign * np.array([nan if r[4] is None else r[4] for r in rows]),
            "dist": np.array([nan if r[5] is None else r[5] for r in rows]),
            "peak": sign * np.array([r[6] for r in rows]),
            "active": np.array([r[7] for r in rows], dtype=bool),
        }
    return out


def numpy_tick(columns: dict[str, dict[str, np.ndarray]], moves: dict[str, D]) -> set:
    closed: set = set()
    for market, price_d in moves.items():
        c = columns[market]
        x = c["sign"] * float(price_d)
        np.maximum(c["peak"], x, out=c["peak"])
        c["active"] |= x >= c["act"]  # NaN (no trailing) compares false
        trail = np.where(c["sign"] > 0, c["peak"] * (1 - c["dist"]), c["peak"] * (1 + c["dist"]))
        moved = c["active"] & (trail > c["stop"])
        c["stop"] = np.where(moved, trail, c["stop"])
        hit = (x >= c["tp"]) | (x <= c["stop"])
        closed.update(c["id"][hit].tolist())
    return closed


def _copy_of(index: Any) -> Any:
    """A deep copy of the index, in a thread with a large stack: level sets point to their
    book, whose lists point to other sets and their trailing groups, so the copy recurses
    far deeper than the default limit on a book of 100,000 positions."""
    copied: list[Any] = []
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    threading.stack_size(1 << 30)
    try:
        worker = threading.Thread(target=lambda: copied.append(copy.deepcopy(index)))
        worker.start()
        worker.join()
    finally:
        threading.stack_size(0)
        sys.setrecursionlimit(limit)
    if not copied:
        raise RuntimeError("copying the index failed (see the thread's traceback)")
    return copied[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.01)
    args = ap.parse_args()

    book = build(args.positions, args.markets, seed=1)
    moves = choose_moves(book, args.target, seed=2)
    names = ["index", "Decimal loop", "float loop", "numpy"]
    times: dict[str, list[float]] = {k: [] for k in names}
    expected: set = set()
    disagree = {"float loop": 0, "numpy": 0}
    for trial in range(args.trials):
        states = {
            "index": _copy_of(book.index),
            "Decimal loop": decimal_book(book),
            "float loop": float_book(book),
            "numpy": numpy_book(book),
        }
        ticks = {
            "index": lambda ix: {
                t.position_id for m, p in moves.items() for t in ix.on_price(m, p)
            },
            "Decimal loop": lambda st: decimal_tick(st, moves),
            "float loop": lambda st: float_tick(st, moves),
            "numpy": lambda st: numpy_tick(st, moves),
        }
        order = names[trial % 4 :] + names[: trial % 4]  # interleaved, rotating
        results = {}
        for name in order:
            gc.collect()
            gc.disable()
            t0 = time.perf_counter()
            results[name] = ticks[name](states[name])
            times[name].append(time.perf_counter() - t0)
            gc.enable()
        expected = results["Decimal loop"]
        assert results["index"] == expected, (len(results["index"]), len(expected))
        for name in disagree:
            disagree[name] = len(results[name] ^ expected)

    n = book.positions
    active = sum(
        len(ids) for sigs in book.signals.values() for lv, ids in sigs if lv.trailing_active
    )
    signals = sum(len(s) for s in book.signals.values())
    print(
        f"positions={n} signals={signals} markets={len(moves)} trailing active={active}"
        f" triggered={len(expected)} ({len(expected) / n:.2%}) trials={args.trials}"
    )
    idx = times["index"]
    for name in names:
        t = times[name]
        ratios = ", ".join(f"{x / i:.1f}x" for x, i in zip(t, idx, strict=True))
        extra = f"; disagrees with Decimal on {disagree[name]}" if name in disagree else ""
        print(
            f"  {name}: {statistics.median(t) * 1000:.2f} ms median"
            f" (per trial vs index: {ratios}){extra}"
        )


if __name__ == "__main__":
    main()
