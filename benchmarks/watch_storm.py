"""What `nash watch` makes of storms of renames, with this tree's watcher against git revision
REV's, in the same run.

    python benchmarks/watch_storm.py --reference 78be0a8 --storms 3,40,3,10 --rotations 3

A folder of ``--docs`` 20 Newsgroups articles (from ``../shared/datasets``), ``--renamed`` of
them in a sub-folder, is indexed and watched by each tree's own ``nash`` (child processes, a
temporary ``NASH_HOME`` each). Each storm renames every file of the sub-folder to a temporary
name and back, ROUNDS times, then renames half of them to new names (what a sync tool or a
script does in well under a second: hundreds of renames, their events arriving after the disk
has moved on). After each storm the watcher is left until its log has been quiet for
``--settle`` seconds. Prints, for each tree, what its log said of the storms: documents removed
(each taken out of the index for a while, though its file was only renamed), re-indexed
(encoded again as new) and moved; a background refit's lines; and that the index then holds
exactly the files on disk. A storm's renamed files are all moves; anything removed or
re-indexed is a fault.

Then ``--rotations`` rotations as logrotate does them: the last name of the sub-folder moves
away, every other file moves to the name after its own (each onto the name the one before just
left), and a new file is written at the first name: all moves but for the one new file a
rotation, which is indexed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revisions import cli_command, reference_worktree

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
COUNTED = re.compile(r"\b(indexed|moved|removed) ([\d,]+)\b")  # an update's line
PASS_COUNTED = re.compile(r"\b([\d,]+) (added|updated|moved|removed)\b")  # a full pass's


def make_folder(folder: Path, docs: int, renamed: int) -> None:
    """``docs`` articles as text files, the first ``renamed`` of them in ``folder/storm``."""
    (folder / "storm").mkdir(parents=True)
    with gzip.open(DATASETS / "20newsgroups_bydate.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in zip(range(docs), f, strict=False):
            text = json.loads(line)["text"]
            where = folder / "storm" if i < renamed else folder
            (where / f"a{i:05d}.txt").write_text(text, encoding="utf-8")


def storm(folder: Path, rounds: int) -> None:
    """Every file of ``folder`` renamed away and back ``rounds`` times, then half renamed."""
    names = sorted(os.listdir(folder))
    for _ in range(rounds):
        for name in names:
            os.rename(folder / name, folder / f"{name}.tmp")
            os.rename(folder / f"{name}.tmp", folder / name)
    for name in names[: len(names) // 2]:
        os.rename(folder / name, folder / f"r{name}")


def rotate(folder: Path, rotation: int) -> None:
    """Each file of ``folder`` to the next name in order (the last one away), a new first one."""
    names = sorted(name for name in os.listdir(folder) if not name.startswith("rotated"))
    os.rename(folder / names[-1], folder / f"rotated{rotation:03d}-{names[-1]}")
    for older, newer in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
        os.rename(folder / older, folder / newer)
    (folder / names[0]).write_text(f"a new first file, rotation {rotation}", encoding="utf-8")


def wait_quiet(log: Path, settle: float, limit: float = 300.0) -> None:
    """Until ``log`` has not grown for ``settle`` seconds, nor waits for a background refit (the
    watcher holds its changes meanwhile), or until ``limit`` passed."""
    deadline, size, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
            lines = log.read_text(errors="replace").splitlines()
            refitting = bool(lines) and "retraining the model in the background" in lines[-1]
        elif time.monotonic() - since >= settle and not refitting:
            return
        time.sleep(0.1)


def run(tree: Path, scratch: Path, args: argparse.Namespace) -> dict:
    """One tree's watcher through the storms: its log's counts, and the index against the disk."""
    folder, home = scratch / "notes", scratch / "home"
    make_folder(folder, args.docs, args.renamed)
    env = {**os.environ, "NASH_HOME": str(home)}
    subprocess.run(
        cli_command(tree, "index", str(folder)), env=env, check=True, capture_output=True
    )
    log = scratch / "watch.log"
    with open(log, "wb") as out:
        watcher = subprocess.Popen(
            cli_command(tree, "watch", str(folder)), env=env, stdout=out, stderr=out, cwd=tree
        )
    try:
        while "up to date" not in log.read_text(errors="replace"):
            if watcher.poll() is not None:
                sys.exit(f"{tree}: the watcher ended: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        start = log.stat().st_size
        for rounds in args.storms:
            storm(folder / "storm", rounds)
            wait_quiet(log, args.settle)
        for rotation in range(args.rotations):
            rotate(folder / "storm", rotation)
            wait_quiet(log, args.settle)
    finally:
        watcher.terminate()
        watcher.wait(30)
    lines = log.read_bytes()[start:].decode(errors="replace").splitlines()
    counts = {"indexed": 0, "moved": 0, "removed": 0}
    for line in lines:
        if line.startswith(" ") or "retrained:" in line:  # (file lists; a refit's own pass)
            continue
        found = COUNTED.findall(line)
        if "up to date" in line:  # (the pass after a refit, or after lost events)
            found = [(what, n) for n, what in PASS_COUNTED.findall(line)]
        for what, n in found:
            what = "indexed" if what in ("added", "updated") else what
            counts[what] += int(n.replace(",", ""))
    status = subprocess.run(
        cli_command(tree, "status", "--json"), env=env, check=True, capture_output=True, text=True
    )
    (entry,) = json.loads(status.stdout)["collections"]
    on_disk = sum(len(files) for _, _, files in os.walk(folder))
    return {
        **counts,
        "refits": sum("retrained:" in line for line in lines),
        "documents": entry["documents"],
        "files": on_disk,
        "log": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--docs", type=int, default=300, help="articles in the folder")
    parser.add_argument("--renamed", type=int, default=100, help="of them, in the storms' folder")
    parser.add_argument("--storms", default="3,40,3,10", help="rounds of each storm")
    parser.add_argument("--rotations", type=int, default=3, help="rotations after the storms")
    parser.add_argument("--settle", type=float, default=4.0, help="quiet seconds after a storm")
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()
    args.storms = [int(r) for r in args.storms.split(",")]
    results = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        reference_worktree(args.reference, Path(scratch)) as reference,
    ):
        for name, tree in (("reference", reference), ("this tree", ROOT)):
            work = Path(scratch) / name.replace(" ", "-")
            work.mkdir()
            results[name] = run(tree, work, args)
    renames = len(args.storms) * (args.renamed // 2) + args.rotations * args.renamed
    print(
        f"{len(args.storms)} storms ({', '.join(map(str, args.storms))} rounds of "
        f"{args.renamed} files renamed away and back, then {args.renamed // 2} renamed), "
        f"{args.rotations} rotations of {args.renamed} files and one new file each: "
        f"{renames} files moved and {args.rotations} new in all"
    )
    for name, result in results.items():
        label = args.reference if name == "reference" else "this tree"
        same = (
            "the index holds every file"
            if result["documents"] == result["files"]
            else (f"the index holds {result['documents']} documents for {result['files']} files")
        )
        print(
            f"{label:>10}: moved {result['moved']}, removed {result['removed']}, re-indexed "
            f"{result['indexed']}, refits {result['refits']}; {same}"
        )
    if args.json:
        record = {
            "reference": args.reference,
            "commit": subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "results": results,
        }
        args.json.write_text(json.dumps(record, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
