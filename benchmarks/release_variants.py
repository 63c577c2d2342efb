"""Does the VDSH release's length filter, or its stripping of posts, make 20 Newsgroups harder
or easier?

    python benchmarks/release_variants.py --json benchmarks/results/release-variants-20ng.json
    python benchmarks/release_variants.py --variants filtered,headers --json F

`20ng-vdsh` is prepared by ``datasets.vdsh_release`` with the length filter of the release's
generic scripts (documents of 5 or fewer words, or over 500, dropped). Its 20 Newsgroups
notebook drops only empty documents, and the release's reported sizes (11,016 training posts,
3,667 + 3,668 test posts) are nearer that: 10,979 / 3,645 / 3,644 here, against 10,256 / 3,405
/ 3,405 with the filter. The same filter on the posts as the corpus gives them, headers, quotes
and signatures kept (``headers``), leaves 11,038 / 3,686 / 3,685: as near the reported sizes, so
they do not tell whether the release stripped its posts. This trains one method on each
preparation asked for in the same run (one process each, one thread each, side by side) and
prints exact TF-IDF cosine and the method's tie-aware precision@100 for each.
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

#: name: (posts stripped of headers, quotes and signatures, the length rule ``words``)
VARIANTS = {
    "filtered": (True, (6, 500)),
    "notebook": (True, (1, None)),
    "headers": (False, (6, 500)),
}


def measure(variant: str, method: str, bits: list[int], seed: int, data_dir: str) -> dict:
    """Exact cosine and ``method`` at each of ``bits`` on one preparation of `20ng-vdsh`."""
    os.environ["NASH_TRAIN_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from nashcli.datasets import load_dataset, vdsh_release
    from nashcli.evaluation import prepare, run_method

    strip_posts, words = VARIANTS[variant]
    dataset = vdsh_release(
        load_dataset("20ng", data_dir), name="20ng-vdsh", strip_posts=strip_posts, words=words
    )
    problem, _ = prepare(dataset)
    rows = [run_method(problem, "tfidf", 0, seed=seed)]
    rows += [run_method(problem, method, n, seed=seed) for n in bits]
    return {
        "variant": variant,
        "strip_posts": strip_posts,
        "words": words,
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
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"a comma list out of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    bits = [int(b) for b in args.bits.split(",")]
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}")
    started = time.time()
    with ProcessPoolExecutor(len(variants)) as pool:
        futures = [
            pool.submit(measure, v, args.method, bits, args.seed, args.data_dir) for v in variants
        ]
        measured = [f.result() for f in futures]
    for m in measured:
        counts = ", ".join(f"{k} {v:,}" for k, v in m["counts"].items())
        stripped = "stripped" if m["strip_posts"] else "headers, quotes and signatures kept"
        print(f"{m['variant']} ({stripped}, words {m['words']}): {counts}")
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
