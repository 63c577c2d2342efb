"""Seconds of ``nash eval``'s features (``evaluation.prepare``: vocabulary, TF-IDF and count
rows, the k-NN graph's rows) of benchmark corpora, this tree against git revision REV, in the
same run, and whether both trees make the same graph rows.

    python benchmarks/features_time.py --reference eb84d27 --datasets reuters,20ng --repeat 3

Each measurement is a fresh child process that loads the corpus, then times ``prepare`` alone
(REV's from a temporary git worktree); rounds alternate which tree goes first. Prints the
medians and their ratio (this tree over REV's), and a checksum of the graph rows of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import ROOT, alternating, reference_worktree, write_comparison  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"

CHILD = """
import hashlib, sys, time
sys.path.insert(0, sys.argv[1])
from nashcli.datasets import load_dataset
from nashcli.evaluation import prepare
dataset = load_dataset(sys.argv[2], sys.argv[3])
start = time.perf_counter()
problem, _ = prepare(dataset)
seconds = time.perf_counter() - start
g = problem.G_train
digest = "none" if g is None else hashlib.sha256(
    g.indptr.tobytes() + g.indices.tobytes() + g.data.tobytes()
).hexdigest()[:16]
print(seconds, digest)
"""


def measure(tree: Path, dataset: str, data_dir: Path) -> tuple[float, str]:
    """``prepare``'s seconds and the graph rows' checksum, in a child with ``tree``'s engine."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), dataset, str(data_dir)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--datasets", default="reuters,20ng")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    figures: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        reference_worktree(args.reference, Path(scratch)) as reference,
    ):
        for dataset in args.datasets.split(","):
            seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
            digests: dict[str, set[str]] = {"reference": set(), "this tree": set()}
            for round_, name, tree in alternating(reference, args.repeat):
                took, digest = measure(tree, dataset, args.data_dir)
                seconds[name].append(round(took, 3))
                digests[name].add(digest)
                print(f"{dataset}, repeat {round_ + 1}, {name}: {took:.2f} s, graph {digest}")
            medians = {name: statistics.median(values) for name, values in seconds.items()}
            ratio = medians["this tree"] / medians["reference"]
            one = digests["reference"]
            same = one == digests["this tree"] and len(one) == 1
            figures[dataset] = {
                "seconds": seconds,
                "medians": medians,
                "ratio": round(ratio, 2),
                "graph_rows": {name: sorted(d) for name, d in digests.items()},
                "graph_rows_identical": same,
            }
            print(
                f"{dataset} features, median of {args.repeat}: {args.reference} "
                f"{medians['reference']:.2f} s -> this tree {medians['this tree']:.2f} s "
                f"(ratio {ratio:.2f}); graph rows {'identical' if same else 'DIFFER'}\n"
            )
    if args.json:
        write_comparison(args.json, args.reference, {"repeat": args.repeat, **figures})


if __name__ == "__main__":
    main()
