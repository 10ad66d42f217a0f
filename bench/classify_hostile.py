"""The rules classifier on huge and hostile posts (100,000 characters of one symbol, NFKC
expansions, repeated calls): its time against the bare reading of the same text (NFKC
normalisation, lower-casing and splitting into words, the least any reader of a post does),
interleaved in each trial. A regular expression that backtracks shows as a ratio in the
thousands; tests hold only that such posts get a valid reading.

    python -m bench.classify_hostile [--trials 3]
"""

from __future__ import annotations

import argparse
import re
import time
import unicodedata

from engine.classify.rules import RulesClassifier

HOSTILE = {
    "$ x100k": "$" * 100_000,
    "a x100k": "a" * 100_000,
    "1. x50k": "1." * 50_000,
    "- x100k": "-" * 100_000,
    "a/ x50k": "a/" * 50_000,
    "? x100k": "?" * 100_000,
    "rocket x100k": "\U0001f680" * 100_000,
    "U+FDFA x100k (NFKC x18)": "\ufdfa" * 100_000,
    "mixed sentence x2.5k": "not long BTC, short ETH? maybe \U0001f680 $FOO s&p 500 " * 2_500,
    "long BTC x11k": "long BTC " * 11_000,
    "surrogates and marks x25k": "\ud800 \x00 \u200b \u0301" * 25_000,
}


def bare_read(text: str) -> int:
    return len(re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    clf = RulesClassifier()
    print(f"{'input':28} {'classify ms':>12} {'bare ms':>9} {'ratio':>7}")
    for name, text in HOSTILE.items():
        ratios, ours, bare = [], [], []
        for _ in range(args.trials):
            t0 = time.perf_counter()
            clf.classify_sync(text)
            t1 = time.perf_counter()
            bare_read(text)
            t2 = time.perf_counter()
            ours.append(t1 - t0)
            bare.append(t2 - t1)
            ratios.append((t1 - t0) / max(t2 - t1, 1e-9))
        print(
            f"{name:28} {min(ours) * 1000:12.1f} {min(bare) * 1000:9.1f} "
            f"{min(ratios):7.1f}  per trial: {', '.join(f'{r:.1f}' for r in ratios)}"
        )


if __name__ == "__main__":
    main()
