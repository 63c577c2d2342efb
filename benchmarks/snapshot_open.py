"""Milliseconds to open a snapshot of a collection (what every `nash similar` and every `nash
index` does first), with and without the index on its tombstoned rows, in the same run.

    NASH_HOME=... python benchmarks/snapshot_open.py COLLECTION [--repeat 21] [--json F]

Copies the collection into a temporary NASH_HOME twice, drops ``docs_dead`` from one copy's
``meta.sqlite`` (a collection as made before it existed), then opens and closes a snapshot of
each copy in turn, ``--repeat`` times, and prints the medians and their ratio. Build a large
collection first, e.g. with ``benchmarks/large_folder.py`` or ``nash index``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import write_comparison  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    from nashcli.index import Collection, collections_dir

    source = collections_dir() / args.collection
    with tempfile.TemporaryDirectory(prefix="nash-snapshot-") as scratch:
        homes = {name: Path(scratch) / name for name in ("with index", "without index")}
        for home in homes.values():
            shutil.copytree(source, home / "collections" / args.collection)
        with sqlite3.connect(
            homes["without index"] / "collections" / args.collection / "meta.sqlite"
        ) as con:
            con.execute("DROP INDEX IF EXISTS docs_dead")
        seconds: dict[str, list[float]] = {name: [] for name in homes}
        for repeat in range(args.repeat):
            for name, home in homes.items() if repeat % 2 == 0 else list(homes.items())[::-1]:
                os.environ["NASH_HOME"] = str(home)
                collection = Collection.open(args.collection)
                start = time.perf_counter()
                collection.snapshot().close()
                seconds[name].append(time.perf_counter() - start)
            documents = collection.summary()["documents"]
    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    ratio = medians["with index"] / medians["without index"]
    print(
        f"snapshot open, {documents:,} documents, median of {args.repeat}: without the index "
        f"{medians['without index']:.2f} ms, with it {medians['with index']:.2f} ms "
        f"(ratio {ratio:.3f})"
    )
    if args.json:
        write_comparison(
            args.json,
            "this tree, without the docs_dead index",
            {
                "documents": documents,
                "milliseconds": {k: [round(v * 1000, 3) for v in vs] for k, vs in seconds.items()},
                "medians_ms": {k: round(v, 3) for k, v in medians.items()},
                "ratio": round(ratio, 4),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
