"""Does the VDSH release's length filter make 20 Newsgroups harder or easier?

    python benchmarks/release_variants.py --json benchmarks/results/release-variants-20ng.json

`20ng-vdsh` is prepared by ``datasets.vdsh_release`` with the length filter of the release's
generic scripts (documents of 5 or fewer words, or over 500, dropped). Its 20 Newsgroups
notebook drops only empty documents, and the release's reported sizes (11,016 training posts,
3,667 + 3,668 test posts) are nearer that: 10,979 / 3,645 / 3,644 here, against 10,257 / 3,406
/ 3,406 with the filter. This trains one method on both preparations in the same run (one
process each, one thread each, side by side) and prints exact TF-IDF cosine and the method's
tie-aware precision@100 for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from revisions import cpu_name  # noqa: E402

VARIANTS = {"filtered": (6, 500), "notebook": (1, None)}


def measure(variant: str, method: str, bits: list[int], seed: int, data_dir: str) -> dict:
    """Exact cosine and ``method`` at each of ``bits`` on one preparation of `20ng-vdsh`."""
    os.environ["NASH_TRAIN_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from nashcli.datasets import load_dataset, vdsh_release
    from nashcli.evaluation import prepare, run_method

    dataset = vdsh_release(
        load_dataset("20ng", data_dir), name="20ng-vdsh", strip_posts=True, words=VARIANTS[variant]
    )
    problem, _ = prepare(dataset)
    rows = [run_method(problem, "tfidf", 0, seed=seed)]
    rows += [run_method(problem, method, n, seed=seed) for n in bits]
    return {
        "variant": variant,
        "words": VARIANTS[variant],
        "counts": dataset.counts(),
        "results": [
            {
                "method": r.method,
                "bits": r.bits,
                "precision_at_100_tie_aware": r.precision_at_100_tie_aware,
                "precision_at_100": r.precision_at_100,
                "train_seconds": r.train_seconds,
            }
            for r in rows
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="nash-refine")
    parser.add_argument("--bits", default="16,32,64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    bits = [int(b) for b in args.bits.split(",")]
    started = time.time()
    with ProcessPoolExecutor(len(VARIANTS)) as pool:
        futures = [
            pool.submit(measure, v, args.method, bits, args.seed, args.data_dir) for v in VARIANTS
        ]
        measured = [f.result() for f in futures]
    for m in measured:
        counts = ", ".join(f"{k} {v:,}" for k, v in m["counts"].items())
        print(f"{m['variant']} (words {m['words']}): {counts}")
        for r in m["results"]:
            what = f"{r['method']} {r['bits']} bits" if r["bits"] else "tfidf (exact cosine)"
            print(f"  {what}: {r['precision_at_100_tie_aware']:.4f} ({r['train_seconds']:.0f} s)")
    if args.json:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        document = {
            "commit": commit,
            "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
            "method": args.method,
            "seed": args.seed,
            "variants": measured,
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
