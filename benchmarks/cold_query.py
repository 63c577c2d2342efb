"""What one `nash similar --text` reads from a collection's stored vectors with the page cache
emptied first, this tree against git revision REV, in the same run.

    python benchmarks/cold_query.py --home /tmp/big/home --reference 8a7d017 [--repeat 2]

``--home`` is a ``NASH_HOME`` holding one collection (a large one: ``large_folder.py`` makes
them). Before every run the collection's files are dropped from the page cache
(``posix_fadvise(DONTNEED)``); after it, ``mincore`` says how much of ``tfidf.indices`` and
``tfidf.data`` the query brought in. Prints, per tree, the wall seconds, the peak resident
memory and the megabytes of each file read (medians), alternating which tree goes first.
Linux only.
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from revisions import alternating, cli_command, reference_worktree, write_comparison  # noqa: E402

QUERY = "the space shuttle launch was delayed by nasa because of the weather"
FILES = ("tfidf.indices", "tfidf.data")


def evict(folder: Path) -> None:
    """Drop every file under ``folder`` from the page cache."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def resident_mb(path: Path) -> float:
    """Megabytes of ``path`` in the page cache (``mincore`` of a map of it)."""
    import numpy as np

    size = path.stat().st_size
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as mapped:
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        vector = (ctypes.c_ubyte * pages)()
        view = np.frombuffer(mapped, dtype=np.uint8)
        libc.mincore(ctypes.c_void_p(view.ctypes.data), ctypes.c_size_t(size), vector)
        del view
    return sum(v & 1 for v in vector) * mmap.PAGESIZE / 2**20


def one_query(tree: Path, env: dict, generation: Path) -> dict:
    """Evict, query once with ``tree``'s nash, and measure."""
    evict(generation)
    start = time.perf_counter()
    child = subprocess.Popen(
        cli_command(tree, "similar", "--text", QUERY, "-n", "3"),
        env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(child.stderr.read().decode())
    figures = {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}
    figures.update({name: resident_mb(generation / name) for name in FILES})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a NASH_HOME of one collection")
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    collections = sorted((args.home / "collections").iterdir())
    generation = sorted(collections[0].glob("gen-*"))[-1]
    env = dict(os.environ, NASH_HOME=str(args.home))
    runs: dict[str, list[dict]] = {"reference": [], "this tree": []}
    with (
        tempfile.TemporaryDirectory(prefix="nash-cold-") as scratch,
        reference_worktree(args.reference, Path(scratch), kernel=True) as reference,
    ):
        for repeat, name, tree in alternating(reference, args.repeat):
            runs[name].append(one_query(tree, env, generation))
            print(f"repeat {repeat + 1}, {name}: {runs[name][-1]}", flush=True)
    sizes = {name: (generation / name).stat().st_size / 2**20 for name in FILES}
    medians = {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for name, rs in runs.items()
    }
    print(f"\n{collections[0].name}: {', '.join(f'{k} {v:.1f} MB' for k, v in sizes.items())}")
    for name, m in medians.items():
        read = ", ".join(f"{f} {m[f]:.1f} MB read" for f in FILES)
        print(f"{name}: {m['seconds']:.2f} s, peak {m['peak_mb']:.0f} MB, {read}")
    if args.json:
        write_comparison(
            args.json,
            args.reference,
            {"collection": collections[0].name, "file_mb": sizes, "runs": runs, "medians": medians},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
