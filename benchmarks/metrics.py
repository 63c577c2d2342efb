"""How fast precision@100 finds each query's 100th Hamming distance, counted against partitioned.

    python benchmarks/metrics.py            # table
    python benchmarks/metrics.py --json     # one JSON object on stdout

Training scores the validation queries against the training codes every epoch, and early in
training the codes collapse (at 8-32 bits nearly every document gets one code for the first
epochs), so nearly every distance ties: ``np.partition``'s worst case. ``metrics.kth_smallest``
counts each row's distances instead. Both run on the same distance matrices, interleaved,
``--runs`` times each; the figures are medians and the ratio is partition / counting (same run,
same machine). Shapes are canonical Reuters's (777 validation queries, 6,992 training codes).
Cases: ``collapsed`` (3 distinct codes, 95 % of documents on one), ``clustered`` (codes of 40
topics with 5 % of bits flipped), ``random`` (independent fair bits), at 8, 32 and 128 bits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nashcli.metrics import hamming_distance_matrix, kth_smallest  # noqa: E402

QUERIES, DATABASE, K = 777, 6992, 100


def codes(case: str, n: int, bits: int, rng: np.random.Generator) -> np.ndarray:
    if case == "collapsed":
        pool = rng.random((3, bits)) < 0.5
        return pool[rng.choice(3, n, p=[0.95, 0.03, 0.02])]
    if case == "clustered":
        topics = rng.random((40, bits)) < 0.5
        return topics[rng.integers(0, 40, n)] ^ (rng.random((n, bits)) < 0.05)
    return rng.random((n, bits)) < 0.5


def median_ms(fn, runs: int) -> list[float]:
    return [statistics.median(t) * 1000 for t in zip(*(fn() for _ in range(runs)), strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for case in ("collapsed", "clustered", "random"):
        for bits in (8, 32, 128):
            seen = codes(case, QUERIES + DATABASE, bits, rng)
            distances = hamming_distance_matrix(seen[:QUERIES], seen[QUERIES:])

            def both(distances=distances):
                t0 = time.perf_counter()
                partitioned = np.partition(distances, K - 1, axis=1)[:, K - 1]
                t1 = time.perf_counter()
                counted = kth_smallest(distances, K)
                t2 = time.perf_counter()
                assert np.array_equal(partitioned, counted)
                return t1 - t0, t2 - t1

            partition_ms, counting_ms = median_ms(both, args.runs)
            rows.append(
                {
                    "case": case,
                    "bits": bits,
                    "partition_ms": round(partition_ms, 2),
                    "counting_ms": round(counting_ms, 2),
                    "ratio": round(partition_ms / counting_ms, 2),
                }
            )
    if args.json:
        print(json.dumps({"queries": QUERIES, "database": DATABASE, "k": K, "rows": rows}))
        return
    print(f"{QUERIES} queries x {DATABASE} codes, k = {K}, median of {args.runs} runs")
    print(f"{'case':<10} {'bits':>4} {'partition ms':>13} {'counting ms':>12} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['case']:<10} {r['bits']:>4} {r['partition_ms']:>13.2f} "
            f"{r['counting_ms']:>12.2f} {r['ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
