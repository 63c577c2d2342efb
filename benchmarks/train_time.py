"""Train seconds of ``nash eval`` models with this tree's engine against git revision REV's, in
the same run, one after the other on an otherwise idle machine.

    python benchmarks/train_time.py --reference 21d75f8                      # faithful NASH-DN
    python benchmarks/train_time.py --reference 21d75f8 --methods nash-nbr --bits 32 --repeat 2

Each engine runs ``nash eval DATASET --methods M --bits B --json`` in a child process (REV's
from a temporary git worktree, its search kernel compiled there too, so both score alike) with
the same threads; repeats alternate which engine goes first. Prints every model's train seconds,
the ratio of this tree's to REV's, and whether the precision came out the same to the last
digit (an edit meant only to be faster must leave it so). ``--json F`` writes the figures too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from revisions import ROOT, cli_command, cpu_name, reference_worktree

DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
FIGURES = ("precision_at_100", "precision_at_100_tie_aware")


def eval_command(root: Path, args: argparse.Namespace) -> list[str]:
    """``nash eval`` run from the package under ``root`` (not whichever is installed)."""
    return cli_command(
        root,
        "eval",
        args.dataset,
        "--methods",
        args.methods,
        "--bits",
        args.bits,
        "--seed",
        str(args.seed),
        "--data-dir",
        str(args.data_dir),
        "--device",
        "cpu",
        "--json",
    )


def run_engine(root: Path, args: argparse.Namespace) -> dict:
    """One ``nash eval`` with the engine under ``root``: its JSON document and wall seconds."""
    env = dict(os.environ, NASH_TRAIN_THREADS=str(args.threads))
    start = time.perf_counter()
    out = subprocess.run(
        eval_command(root, args), env=env, cwd=root, check=True, capture_output=True, text=True
    )
    return {"wall_seconds": time.perf_counter() - start, **json.loads(out.stdout)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="git revision to compare with")
    parser.add_argument("--dataset", default="reuters")
    parser.add_argument("--methods", default="nash-dn")
    parser.add_argument("--bits", default="8,16,32,64,128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="training threads of each run")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    runs: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="nash-train-time-") as scratch,
        reference_worktree(args.reference, Path(scratch), kernel=True) as reference,
    ):
        for repeat in range(args.repeat):
            engines = [("reference", reference), ("this tree", ROOT)]
            for name, root in engines if repeat % 2 == 0 else engines[::-1]:
                print(f"repeat {repeat + 1}: {name} ...", flush=True)
                runs.append({"engine": name, "repeat": repeat, **run_engine(root, args)})

    rows, all_same = [], True
    for repeat in range(args.repeat):
        pair = {r["engine"]: r for r in runs if r["repeat"] == repeat}
        ref, new = pair["reference"]["results"], pair["this tree"]["results"]
        for old, now in zip(ref, new, strict=True):
            same = all(old[f] == now[f] for f in FIGURES)
            all_same &= same
            rows.append(
                {
                    "repeat": repeat,
                    "method": now["method"],
                    "bits": now["bits"],
                    "reference_seconds": round(old["train_seconds"], 2),
                    "seconds": round(now["train_seconds"], 2),
                    "ratio": round(now["train_seconds"] / old["train_seconds"], 3),
                    "precision_at_100_tie_aware": now["precision_at_100_tie_aware"],
                    "same_precision": same,
                }
            )
    print(f"\n{args.dataset}, {args.threads} threads, {args.reference} -> this tree")
    print("method        bits  reference s   this tree s   ratio   P@100 (tie-aware)  same")
    for row in rows:
        print(
            f"{row['method']:<12} {row['bits']:>5} {row['reference_seconds']:>12.1f}"
            f" {row['seconds']:>13.1f} {row['ratio']:>7.3f}"
            f"   {row['precision_at_100_tie_aware']:.6f}          {row['same_precision']}"
        )
    walls = {
        name: sum(r["wall_seconds"] for r in runs if r["engine"] == name)
        for name in ("reference", "this tree")
    }
    print(f"whole commands: {walls['reference']:.1f} s -> {walls['this tree']:.1f} s")
    if args.json:
        git = ["git", "-C", str(ROOT)]
        commit = subprocess.run(
            [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "nashcli"], capture_output=True, text=True
        ).stdout.strip()
        commit += "-dirty" if changed else ""  # this tree's engine is not HEAD's

        document = {
            "what": "nash eval train seconds, this tree against a reference revision, same run",
            "reference": args.reference,
            "commit": commit,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{cpu_name()}, {os.cpu_count()} cores",
            "arguments": {k: str(v) for k, v in vars(args).items() if k != "json"},
            "rows": rows,
            "whole_commands_seconds": walls,
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
