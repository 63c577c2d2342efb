"""Seconds of `nash index` after every file of a folder was renamed (same bytes: all moves),
where the files are all of one size, this tree against git revision REV, in the same run.

    python benchmarks/rename_many.py --reference de44e22 --docs 8000 --repeat 2

Writes ``--docs`` files of 1,000 bytes each (20 Newsgroups articles, cut or padded), indexes
them once with this tree (one epoch of training), then before every run renames each file to
a new name (``r1-...``, ``r2-...``), the names in the reverse order of the files' rows, and
runs the whole ``nash index FOLDER`` with a tree, alternating which goes first; every run must
report every document moved. So many new paths made a retrain look due, and before 2026-12-07
the update first counted which of them were moves by comparing each new file with every gone
one of its size (``indexing._to_encode``, quadratic where sizes are equal); since then the
update is committed first (moves found by their bytes) and only what it encoded counts.
Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import (  # noqa: E402
    ROOT,
    alternating,
    reference_worktree,
    timed_cli,
    timing_figures,
    write_comparison,
)

SIZE = 1000
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"


def write_equal_files(folder: Path, docs: int, data_dir: Path) -> list[Path]:
    """``docs`` distinct texts of exactly :data:`SIZE` bytes, written as ``r0-NNNNN.txt`` (the
    first index gives file i row i); their paths."""
    sys.path.insert(0, str(ROOT))
    from nashcli.datasets import load_dataset

    texts = load_dataset("20ng", data_dir).texts
    folder.mkdir(parents=True)
    paths = []
    for i in range(docs):
        text = f"{i}\n{texts[i % len(texts)]}".encode("ascii", "replace")
        paths.append(folder / f"r0-{i:05d}.txt")
        paths[-1].write_bytes((text + b" filler" * (SIZE // 7 + 1))[:SIZE])
    return paths


def rename_all(paths: list[Path], run: int) -> None:
    """Row i's file (``paths[i]``, updated) to ``r{run}-{docs - 1 - i}.txt``: new names that
    sort in the reverse order of the rows, on every run."""
    docs = len(paths)
    for i, path in enumerate(paths):
        paths[i] = path.with_name(f"r{run}-{docs - 1 - i:05d}.txt")
        os.rename(path, paths[i])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=8000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="nash-rename-") as scratch:
        scratch = Path(scratch)
        folder, env = scratch / "docs", dict(os.environ, NASH_HOME=str(scratch / "home"))
        paths = write_equal_files(folder, args.docs, args.data_dir)
        first = (
            "import sys; from nashcli.indexing import index_folder; "
            "print(index_folder(sys.argv[1], hasher_options={'max_epochs': 1}).documents)"
        )
        subprocess.run(
            [sys.executable, "-c", first, str(folder)], env=env, cwd=ROOT, check=True,
            capture_output=True,
        )  # fmt: skip
        with reference_worktree(args.reference, scratch, kernel=True) as reference:
            for run, (repeat, name, tree) in enumerate(alternating(reference, args.repeat), 1):
                rename_all(paths, run)
                took, out = timed_cli(tree, env, "index", str(folder))
                summary = out.splitlines()[0]
                if f"{args.docs:,} moved" not in summary:
                    raise SystemExit(f"{name}: not every document moved: {summary}")
                seconds[name].append(took)
                print(f"repeat {repeat + 1}, {name}: {took:.2f} s", flush=True)

    figures = timing_figures(seconds)
    medians, ratio = figures["medians"], figures["ratio"]
    print(
        f"\nnash index after renaming all {args.docs:,} files of {SIZE} bytes, median of "
        f"{args.repeat}: {args.reference} {medians['reference']:.2f} s -> this tree "
        f"{medians['this tree']:.2f} s (ratio {ratio:.2f})"
    )
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {
                "documents": args.docs,
                "bytes_each": SIZE,
                **figures,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
