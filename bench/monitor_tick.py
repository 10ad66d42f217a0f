"""Monitor benchmark: 100,000 open positions over 200 markets, one price update per market,
about 1% of positions triggering; the index against a naive Decimal loop in the same run.

    python -m bench.monitor_tick [--positions 100000] [--markets 200] [--trials 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import random
import statistics
import time
import tracemalloc
from decimal import Decimal

from engine.levels import RiskLevels, RiskParams
from engine.monitor import PositionIndex

D = Decimal


def _params(rng: random.Random) -> RiskParams:
    # what agents really use: stops 1-5%, targets 3-15% or none, trailing after 1-4% by 0.5-2%
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


def build(
    n: int, markets: int, seed: int
) -> tuple[list[tuple[int, str, RiskLevels]], dict[str, D]]:
    """Positions opened along each market's random walk and stepped through the prices that
    followed, so trailing state, peaks and moved stops are realistic; closed ones drop out."""
    rng = random.Random(seed)
    out: list[tuple[int, str, RiskLevels]] = []
    last: dict[str, D] = {}
    per = n // markets
    quantum = D("0.000001")
    for m in range(markets):
        name = f"M{m}"
        price = D(rng.choice(["0.5", "3", "25", "180", "3000", "65000"]))
        opened: list[RiskLevels] = []
        while len(opened) < per:
            price = (price * (1 + D(rng.randint(-40, 41)) / 10_000)).quantize(quantum)
            # the most recent positions see this price (older ones have settled)
            opened[-200:] = [o for o in opened[-200:] if not o.step(price)]
            opened.append(RiskLevels.initial(rng.choice(["long", "short"]), price, _params(rng)))
        out += [(len(out) + i + 1, name, lv) for i, lv in enumerate(opened)]
        last[name] = price
    return out, last


def choose_moves(
    positions: list[tuple[int, str, RiskLevels]], last: dict[str, D], target: float, seed: int
) -> dict[str, D]:
    """One update per market, scaled so about `target` of all positions trigger."""
    rng = random.Random(seed)
    direction = {m: rng.choice([1, -1]) * (0.5 + rng.random()) for m in last}
    lo, hi = 0.0, 0.05
    for _ in range(30):
        mid = (lo + hi) / 2
        moves = {m: (p * (1 + D(str(round(direction[m] * mid, 6))))) for m, p in last.items()}
        hit = sum(1 for _, m, lv in positions if copy.copy(lv).step(moves[m]))
        if hit / len(positions) < target:
            lo = mid
        else:
            hi = mid
    return {m: (p * (1 + D(str(round(direction[m] * hi, 6))))) for m, p in last.items()}


def naive_tick(positions: list[tuple[int, str, RiskLevels]], moves: dict[str, D]) -> int:
    closed = 0
    for _, market, lv in positions:
        if lv.step(moves[market]):
            closed += 1
    return closed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=100_000)
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--target", type=float, default=0.01)
    args = ap.parse_args()

    positions, last = build(args.positions, args.markets, seed=1)
    moves = choose_moves(positions, last, args.target, seed=2)
    index_times, naive_times, triggered = [], [], 0
    for _ in range(args.trials):
        fresh = [(pid, m, copy.copy(lv)) for pid, m, lv in positions]
        index = PositionIndex()
        for pid, m, lv in fresh:
            index.add(pid, m, copy.copy(lv))
        gc.collect()
        gc.disable()
        t0 = time.perf_counter()
        triggered = sum(len(index.on_price(m, p)) for m, p in moves.items())
        index_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        naive_closed = naive_tick(fresh, moves)
        naive_times.append(time.perf_counter() - t0)
        gc.enable()
        assert naive_closed == triggered, (naive_closed, triggered)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = PositionIndex()
    for pid, m, lv in positions:
        index.add(pid, m, lv)
    per_position = (tracemalloc.get_traced_memory()[0] - before) / len(positions)
    tracemalloc.stop()

    idx, naive = statistics.median(index_times), statistics.median(naive_times)
    print(
        f"positions={len(positions)} markets={len(moves)} triggered={triggered} "
        f"({triggered / len(positions):.2%})"
    )
    print(f"index tick: {idx * 1000:.2f} ms (median of {args.trials})")
    print(f"naive Decimal loop: {naive * 1000:.2f} ms")
    print(f"speed-up: {naive / idx:.1f}x")
    print(f"index memory: {per_position:.0f} bytes per open position")


if __name__ == "__main__":
    main()
