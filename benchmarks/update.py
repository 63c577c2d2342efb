"""Milliseconds of a watcher's update of one edited file (``indexing.apply_changes``) in a large
collection, this tree against git revision REV, in the same run.

    python benchmarks/update.py --reference 3866506 [--docs 100000] [--updates 9] [--rounds 3]

Writes ``--docs`` text files (``large_folder.write_folder``) and indexes them once with this tree
(one training epoch). Then, ``--rounds`` times, each tree in turn (REV's from a temporary git
worktree, in a child process of its own, alternating which goes first) edits one file and
applies the change ``--updates`` times, as a running ``nash watch`` does (one model load, kept
between updates; the first update, which loads it, is not counted). Prints the median update of
each tree and their ratio: the CPU a watcher spends on every saved file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import alternating, indexed_folder, reference_worktree, write_comparison  # noqa: E402

UPDATES = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from nashcli.indexing import HasherCache, apply_changes

path, updates = Path(sys.argv[2]), int(sys.argv[3])
original, hashers, seconds = path.read_text(encoding="utf-8"), HasherCache(), []
try:
    for i in range(updates + 1):
        path.write_text(original + f"\nedit {i}\n", encoding="utf-8")
        start = time.perf_counter()
        report = apply_changes("docs", upserts=[path], hashers=hashers)
        assert report.documents > 0, report
        seconds.append(time.perf_counter() - start)
finally:
    path.write_text(original, encoding="utf-8")
    apply_changes("docs", upserts=[path], hashers=hashers)
print(json.dumps(seconds[1:]))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="nash-update-") as scratch:
        scratch = Path(scratch)
        folder, env, documents = indexed_folder(scratch, args.docs, epochs=1)
        edited = sorted((folder / "d0000").iterdir())[7]
        with reference_worktree(args.reference, scratch, kernel=True) as reference:
            for round_, name, tree in alternating(reference, args.rounds):
                out = subprocess.run(
                    [sys.executable, "-c", UPDATES, str(tree), str(edited), str(args.updates)],
                    env=env,
                    cwd=tree,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                seconds[name] += json.loads(out.stdout.strip().splitlines()[-1])
                print(f"round {round_ + 1}, {name}: done", flush=True)

    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    ratio = medians["this tree"] / medians["reference"]
    print(
        f"\napply_changes of one edited file among {documents:,} documents, median of "
        f"{len(seconds['this tree'])}: {args.reference} {medians['reference']:.1f} ms -> "
        f"this tree {medians['this tree']:.1f} ms (ratio {ratio:.3f})"
    )
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {
                "documents": documents,
                "milliseconds": {k: [round(v * 1000, 2) for v in vs] for k, vs in seconds.items()},
                "medians_ms": {k: round(v, 2) for k, v in medians.items()},
                "ratio": round(ratio, 4),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
