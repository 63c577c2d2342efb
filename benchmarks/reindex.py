"""Seconds of `nash index` on a large folder where nothing (or ``--edited`` files) changed,
this tree against git revision REV, in the same run.

    python benchmarks/reindex.py --reference 98ca4b4 --docs 100000 [--repeat 5] [--json F]
    python benchmarks/reindex.py --reference 646e764 --docs 500 --edited 1   # one file edited

Writes ``--docs`` text files (``large_folder.write_folder``: the benchmark corpora, then
variations of them), indexes them once with this tree (the model trains one epoch: what is timed
never trains), then runs the whole ``nash index FOLDER`` command with each tree, REV's from a
temporary git worktree, alternating which goes first, ``--repeat`` times each, on the same index.
Every run must report every document unchanged. Prints the medians and their ratio (this tree
over REV's): what a user waits for when re-indexing a large folder, or when a watcher starts;
and each tree's peak resident memory (the largest of its runs).
With ``--edited N``, N files get a new line before every run, which must report them updated
(encoded with the saved model): the re-index after editing a note.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import (  # noqa: E402
    alternating,
    indexed_folder,
    measured_cli,
    reference_worktree,
    timing_figures,
    write_comparison,
)


def nash_index(tree: Path, folder: Path, env: dict) -> tuple[float, float, str]:
    """One whole ``nash index FOLDER`` with the package under ``tree``: (seconds, peak MB,
    summary)."""
    took, peak, out = measured_cli(tree, env, "index", str(folder))
    return took, peak, out.splitlines()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--edited", type=int, default=0, help="files to edit before each run")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
    peaks: dict[str, list[float]] = {"reference": [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="nash-reindex-") as scratch:
        scratch = Path(scratch)
        folder, env, documents = indexed_folder(scratch, args.docs, epochs=1)
        with reference_worktree(args.reference, scratch, kernel=True) as reference:
            edited = sorted(folder.rglob("*.txt"))[: args.edited]
            for repeat, name, tree in alternating(reference, args.repeat):
                for path in edited:
                    with open(path, "a", encoding="utf-8") as f:
                        f.write(f"\nedited before run {repeat} of {name}\n")
                took, peak, summary = nash_index(tree, folder, env)
                expected = f"{documents - len(edited):,} unchanged"
                if expected not in summary or (edited and f"{len(edited)} updated" not in summary):
                    raise SystemExit(
                        f"{name}: not {args.edited} updated, the rest unchanged: {summary}"
                    )
                seconds[name].append(took)
                peaks[name].append(peak)
                print(f"repeat {repeat + 1}, {name}: {took:.2f} s, peak {peak:.0f} MB", flush=True)

    figures = timing_figures(seconds)
    medians, ratio = figures["medians"], figures["ratio"]
    what = f"{args.edited} edited, the rest" if args.edited else "all"
    print(
        f"\nnash index of {documents:,} documents, {what} unchanged, median of {args.repeat}: "
        f"{args.reference} {medians['reference']:.2f} s -> this tree "
        f"{medians['this tree']:.2f} s (ratio {ratio:.2f}); peak resident memory "
        f"{max(peaks['reference']):.0f} MB -> {max(peaks['this tree']):.0f} MB"
    )
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {
                "documents": documents,
                "edited": args.edited,
                **figures,
                "peak_mb": {name: [round(p, 1) for p in runs] for name, runs in peaks.items()},
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
