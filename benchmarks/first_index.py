"""Seconds of a first `nash index` of a small folder (the model trains), this tree against git
revision REV, in the same run, and whether both trees store the same codes.

    python benchmarks/first_index.py --reference 197501f --docs 500 [--repeat 5] [--json F]

Writes ``--docs`` text files (``large_folder.write_folder``: the benchmark corpora), then runs
the whole ``nash index FOLDER`` command with each tree, REV's from a temporary git worktree,
each time into a new empty ``NASH_HOME``, alternating which tree goes first, ``--repeat`` times
each, training with ``NASH_TRAIN_THREADS`` (default 2) so both trees sum their floats in the
same order. Prints the medians and their ratio (this tree over REV's), and the SHA-256 of the
stored code planes of each tree's runs: what a user waits for the first time, and a check that
the codes did not change.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_folder import write_folder  # noqa: E402
from revisions import alternating, reference_worktree, timed_cli, write_comparison  # noqa: E402


def first_index(tree: Path, folder: Path, home: Path, threads: str) -> tuple[float, str]:
    """One whole ``nash index FOLDER`` into the empty ``home``: (seconds, codes' digest)."""
    env = dict(os.environ, NASH_HOME=str(home), NASH_TRAIN_THREADS=threads)
    took, _ = timed_cli(tree, env, "index", str(folder))
    digest = hashlib.sha256()
    for plane in sorted(home.glob("collections/*/gen-*/plane-*.u64")):
        digest.update(plane.read_bytes())
    return took, digest.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", default="2", help="NASH_TRAIN_THREADS for both trees")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
    digests: dict[str, set[str]] = {"reference": set(), "this tree": set()}
    with tempfile.TemporaryDirectory(prefix="nash-first-index-") as scratch:
        scratch = Path(scratch)
        folder = scratch / "docs"
        write_folder(folder, args.docs)
        with reference_worktree(args.reference, scratch, kernel=True) as reference:
            for repeat, name, tree in alternating(reference, args.repeat):
                home = scratch / f"home-{len(seconds[name])}-{name.replace(' ', '-')}"
                took, digest = first_index(tree, folder, home, args.threads)
                seconds[name].append(took)
                digests[name].add(digest)
                print(f"repeat {repeat + 1}, {name}: {took:.2f} s, codes {digest}", flush=True)

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = medians["this tree"] / medians["reference"]
    same = len(digests["reference"] | digests["this tree"]) == 1
    print(
        f"\nfirst nash index of {args.docs:,} files, median of {args.repeat}: "
        f"{args.reference} {medians['reference']:.2f} s -> this tree "
        f"{medians['this tree']:.2f} s (ratio {ratio:.2f}); "
        f"codes {'identical in every run' if same else 'DIFFER'}"
    )
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {
                "documents": args.docs,
                "train_threads": int(args.threads),
                "seconds": {k: [round(v, 3) for v in vs] for k, vs in seconds.items()},
                "medians": {k: round(v, 3) for k, v in medians.items()},
                "ratio": round(ratio, 3),
                "codes": {k: sorted(v) for k, v in digests.items()},
                "codes_identical": same,
            },
        )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
