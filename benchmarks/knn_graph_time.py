"""Seconds and memory of the TF-IDF k-NN graph (``features.knn_graph``) at several row chunk
sizes, in the same run, and whether every chunk size gives the same graph.

    python benchmarks/knn_graph_time.py --dataset 20ng --docs 10000 --chunks 1024,auto --repeat 3
    python benchmarks/knn_graph_time.py --dataset 20ng,reuters,tmc --all-splits --docs 50000

The graph rows (``Problem.graph_rows``) of the first ``--docs`` training documents (of every
``--dataset`` in turn; with ``--all-splits`` every document) are made once and saved
(``auto``: ``knn_graph``'s own chunk size for that many rows); each measurement is a fresh
child process that loads them and times ``knn_graph(rows, k, chunk)`` alone (``k``: the
default method's neighbours), reporting its seconds, the growth of its peak resident memory
over the loaded rows, and a checksum of the graph. Rounds alternate the order of the chunk
sizes. Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"

CHILD = """
import hashlib, resource, sys, time
import numpy as np, scipy.sparse as sp
sys.path.insert(0, sys.argv[1])
from nashcli.features import knn_graph
rows = sp.load_npz(sys.argv[2]).tocsr()
k, chunk = int(sys.argv[3]), (None if sys.argv[4] == "auto" else int(sys.argv[4]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
indices, sims = knn_graph(rows, k, chunk=chunk)
seconds = time.perf_counter() - start
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
digest = hashlib.sha256(indices.tobytes() + sims.tobytes()).hexdigest()[:16]
print(seconds, grown / 1024, digest)
"""


def measure(rows: Path, k: int, chunk: str) -> tuple[float, float, str]:
    """(seconds, peak memory growth in MB, graph checksum) of one child."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(rows), str(k), str(chunk)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1]), out[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="20ng", help="a corpus, or a comma list of them")
    parser.add_argument("--all-splits", action="store_true", help="test documents too")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", type=int, default=10_000, help="training documents to use")
    parser.add_argument("--chunks", default="1024,auto", help="comma list of chunk sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import scipy.sparse as sp

    from nashcli.datasets import load_dataset
    from nashcli.features import make_problem
    from nashcli.methods import DEFAULT_METHOD, SPECS

    texts: list[str] = []
    for name in args.dataset.split(","):
        dataset = load_dataset(name, args.data_dir)
        splits = zip(dataset.texts, dataset.split, strict=True)
        texts += [t for t, s in splits if args.all_splits or s == "train"]
    problem = make_problem(texts[: args.docs], [], [])
    k = SPECS[DEFAULT_METHOD].neighbors
    chunks = [c.strip() for c in args.chunks.split(",")]
    figures: dict[str, list[tuple[float, float, str]]] = {c: [] for c in chunks}
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.npz"
        sp.save_npz(rows, problem.graph_rows)
        for round_ in range(args.repeat):
            order = chunks if round_ % 2 == 0 else chunks[::-1]
            for chunk in order:
                figures[chunk].append(measure(rows, k, chunk))
                print(f"round {round_ + 1} chunk {chunk}: {figures[chunk][-1]}", flush=True)
    shape = problem.graph_rows.shape
    print(f"{args.dataset}: {shape[0]:,} rows × {shape[1]:,} words, k = {k}")
    summary = {}
    for chunk in chunks:
        seconds = statistics.median(f[0] for f in figures[chunk])
        memory = statistics.median(f[1] for f in figures[chunk])
        digests = sorted({f[2] for f in figures[chunk]})
        summary[chunk] = {"seconds": seconds, "peak_growth_mb": memory, "graph": digests}
        print(f"chunk {chunk:>5}: {seconds:7.2f} s, peak +{memory:6.0f} MB, graph {digests}")
    same = len({d for s in summary.values() for d in s["graph"]}) == 1
    print("same graph at every chunk size" if same else "GRAPHS DIFFER")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "dataset": args.dataset,
                    "rows": shape[0],
                    "words": shape[1],
                    "k": k,
                    "repeat": args.repeat,
                    "chunks": summary,
                    "same_graph": same,
                },
                indent=1,
            )  # fmt: skip
            + "\n"
        )


if __name__ == "__main__":
    main()
