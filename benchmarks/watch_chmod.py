"""How long the watcher takes over the chmod events that make skipped files readable again,
with this tree's watcher against git revision REV's, in the same run.

    python benchmarks/watch_chmod.py --reference 030e7c2 --skips 2000 --order files

A folder of ``--skips`` files (``--per-folder`` to a sub-folder, 100 by default) that the
watcher has noted as skipped for "unreadable: permission denied" (as a full pass notes them);
then the attribute-change events a chmod of each of them sends (``--order files``: file by
file, as ``find -exec chmod`` or a chmod of each; ``--order tree``: each folder and then its
files, as ``chmod -R``) are fed to the watcher's event loop (``Watcher._feed``, what its queue
hands over). Prints the seconds each watcher spent, the ratio, and that both queued every file
to be read again. Each watcher runs in a child process from its own tree (REV's from a
temporary git worktree).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from revisions import alternating, reference_worktree

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
tree, skips, order, per = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
from nashcli.watching import Coalescer, Watcher
with tempfile.TemporaryDirectory() as scratch:
    folder = Path(scratch)
    files = []
    for i in range(skips):
        sub = folder / f"part{i // per}"
        sub.mkdir(exist_ok=True)
        files.append(sub / f"note{i}.txt")
        files[-1].write_text("words")
    watcher = Watcher(folder, apply=lambda *a, **k: None, catch_up=lambda *a, **k: None)
    watcher._remember_unreadable([(f, "unreadable: permission denied") for f in files])
    events = [("attrib", str(f), "", False) for f in files]
    if order == "tree":
        events = []
        for sub in sorted({f.parent for f in files}):
            events.append(("attrib", str(sub), "", True))
            events += [("attrib", str(f), "", False) for f in files if f.parent == sub]
    coalescer = Coalescer()
    start = time.perf_counter()
    for event in events:
        watcher._feed(coalescer, event)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "events": len(events), "queued": len(coalescer)}))
"""


def run(tree: Path, args: argparse.Namespace) -> dict:
    """One watcher's pass over the events, in a child process with ``tree``'s package."""
    command = [sys.executable, "-c", CHILD, str(tree), str(args.skips), args.order]
    command.append(str(args.per_folder))
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tree)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--skips", type=int, default=2000, help="files noted as unreadable")
    parser.add_argument("--order", choices=("files", "tree"), default="files")
    parser.add_argument("--per-folder", type=int, default=100, help="skipped files a folder")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each watcher")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"reference": [], "this tree": []}
    with (
        tempfile.TemporaryDirectory() as scratch,
        reference_worktree(args.reference, Path(scratch)) as reference,
    ):
        for _, name, tree in alternating(reference, args.rounds):
            result = run(tree, args)
            if result["queued"] != args.skips:
                sys.exit(f"{name}: queued {result['queued']} of {args.skips} files")
            seconds[name].append(result["seconds"])
            print(f"{name:>9}: {result['seconds']:.3f} s for {result['events']} chmod events")
    ref, this = min(seconds["reference"]), min(seconds["this tree"])
    print(
        f"{args.skips} skips ({args.per_folder} a folder), order {args.order}: {ref:.3f} s "
        f"({args.reference}) -> "
        f"{this:.3f} s (this tree), ratio {this / ref:.4f}; every file queued by both"
    )


if __name__ == "__main__":
    main()
