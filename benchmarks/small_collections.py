"""Small folders: how well each ranking of `nash similar` does when the collection is small.

A personal folder often holds tens or hundreds of documents, where the model has little to
learn from. For each size, this builds folders of single-label articles (``--topics`` labels
drawn at random per seed, one sub-folder per label, from ``../shared/datasets``), indexes each
with the real indexing code (default settings, in-process), and measures precision of the
``--k`` nearest by sub-folder with every document of the collection as a query (never its own
neighbour), for the Hamming order, the cosine re-rank, the fused re-rank with its default
weights (λ from :func:`nashcli.similar.hamming_weight`) and over a grid of its weights (λ for
the distance, feedback documents m, feedback weight β), at the default pool.

Run: ``nice -n 10 python benchmarks/small_collections.py [--dataset reuters] [--sizes ...]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FILES = {"20ng": "20newsgroups_bydate.jsonl.gz", "reuters": "reuters21578_modapte.jsonl.gz"}
GRID = [
    (lam, m, beta) for lam in (0.0, 0.25, 0.5, 1.0) for m, beta in ((0, 0.0), (5, 1.0), (5, 2.0))
] + [(lam, 5, 2.0, 0.0) for lam in (0.0, 0.25, 0.5, 1.0)]  # feedback from any shared word
# (the 3-tuples use similar.FEEDBACK_SHARE: 0.1 since 2026-12-07, 0 in the result files before)


def single_label_docs(dataset: str) -> list[dict]:
    with gzip.open(DATASETS / FILES[dataset], "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    return [d for d in docs if len(d["labels"]) == 1 and d["text"].strip()]


def pick_articles(
    n_docs: int, dataset: str = "20ng", seed: int = 0, top_labels: int = 0
) -> list[dict]:
    """``n_docs`` random single-label articles of ``dataset`` (both splits), as
    ``benchmarks/collections.py`` folders hold them; with ``top_labels``, only those of that
    many largest labels (Reuters' 8 largest single-label topics are the usual "R8")."""
    docs = single_label_docs(dataset)
    if top_labels:
        sizes = Counter(d["labels"][0] for d in docs)
        keep = {label for label, _ in sizes.most_common(top_labels)}
        docs = [d for d in docs if d["labels"][0] in keep]
    random.Random(seed).shuffle(docs)
    return docs[:n_docs]


def build_folder(dest: Path, docs: list[dict], n_docs: int, topics: int, seed: int) -> int:
    """``n_docs`` articles of ``topics`` labels drawn at random (among labels with at least
    ``n_docs / topics`` articles), one sub-folder per label; returns the number written."""
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    for d in docs:
        by_label.setdefault(d["labels"][0], []).append(d)
    big = sorted(label for label, ds in by_label.items() if len(ds) >= n_docs // topics)
    if len(big) < topics:  # (Reuters has four single-label topics of 320 articles or more)
        big = sorted(by_label, key=lambda label: -len(by_label[label]))[:topics]
    labels = rng.sample(big, topics)
    pool = [d for label in labels for d in by_label[label]]
    rng.shuffle(pool)
    for i, d in enumerate(pool[:n_docs]):
        folder = dest / d["labels"][0].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}.txt").write_text(d["text"], encoding="utf-8")
    return min(n_docs, len(pool))


def fused_grid_hits(
    x, qvec, rows, dists, bits: int, same: np.ndarray, k: int, grid=GRID
) -> dict[tuple, int]:
    """Same-topic documents among the ``k`` first of the fused ranking of one query's pool
    (candidates ``rows`` with tf-idf ``x`` and (weighted) distances ``dists``), for each
    (λ, m, β) or (λ, m, β, feedback share)."""
    from nashcli.similar import rank_pool

    hits = {}
    for point in grid:  # (λ, m, β) or (λ, m, β, share of the best cosine a feedback doc needs)
        lam, m, beta, *share = point
        extra = {"feedback_share": share[0]} if share else {}
        s = rank_pool(
            x,
            qvec,
            dists,
            bits,
            "fused",
            weight=lam,
            feedback_docs=m,
            feedback_weight=beta,
            **extra,
        )
        hits[point] = int(same[np.lexsort((rows, dists, -s))[:k]].sum())
    return hits


def _grid_key(point: tuple) -> str:
    lam, m, beta, *share = point
    return f"fused λ={lam} m={m} β={beta}" + (f" share={share[0]}" if share else "")


def measure(collection: str, k: int) -> dict[str, float]:
    """Precision@k of each ranking, every document of ``collection`` a query: the three of
    `nash similar` (:func:`nashcli.similar.search_snapshot`), the fused one with the plain
    Hamming distance in place of the weighted one, and the fused grid."""
    from dataclasses import replace

    from nashcli.index import Collection
    from nashcli.similar import (
        RANKINGS,
        LinearQueryEncoder,
        candidate_pool,
        default_pool,
        search_snapshot,
        stored_query,
    )

    col = Collection.open(collection)
    with col.snapshot() as snap:
        docs = snap.live_docs()
        label = {d.row: Path(d.path).parent.name for d in docs}
        pool = default_pool(snap.documents)
        encoder = LinearQueryEncoder.load(snap.model_dir)
        keys = {"hamming": "hamming", "cosine": "cosine", "fused": "fused (default)"}
        hits: dict[str, int] = dict.fromkeys([*keys.values(), "fused, plain distance"], 0)
        hits.update({_grid_key(point): 0 for point in GRID})
        queries = [d.row for d in docs]
        for q in queries:
            query = stored_query(snap, q, encoder)
            for ranking in RANKINGS:
                found = search_snapshot(snap, query, k, ranking, pool)
                hits[keys[ranking]] += sum(label[h.row] == label[q] for h in found)
            plain = replace(query, probabilities=None)
            found = search_snapshot(snap, plain, k, "fused", pool)
            hits["fused, plain distance"] += sum(label[h.row] == label[q] for h in found)
            rows, _, weighted = candidate_pool(snap, query, pool, np.array([q]))
            same = np.array([label[int(r)] == label[q] for r in rows])
            x, qvec = snap.tfidf_of(rows), query.vector
            grid = fused_grid_hits(x, qvec, rows, weighted, snap.bits, same, k)
            for point, h in grid.items():
                hits[_grid_key(point)] += h
    return {key: h / (k * len(queries)) for key, h in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(FILES), default="20ng")
    parser.add_argument("--sizes", default="50,100,200,400,800,1600")
    parser.add_argument("--topics", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--bits", type=int, default=64, help="code length of the indexes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nash-small-"))
    os.environ["NASH_HOME"] = str(work / "home")
    from nashcli.indexing import index_folder

    docs = single_label_docs(args.dataset)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
    ).stdout.strip()
    figures: dict = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": args.dataset,
        "topics": args.topics,
        "k": args.k,
        "bits": args.bits,
        "cores": os.cpu_count(),
        "runs": [],
    }
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            per_seed = []
            for seed in [int(s) for s in args.seeds.split(",")]:
                folder = work / f"{args.dataset}-{size}-{seed}"
                n = build_folder(folder, docs, size, args.topics, seed)
                start = time.perf_counter()
                report = index_folder(folder, name=folder.name, bits=args.bits)
                seconds = time.perf_counter() - start
                row = measure(folder.name, args.k)
                per_seed.append(row)
                figures["runs"].append(
                    {"size": n, "seed": seed, "index_seconds": round(seconds, 1), **row}
                )
                print(
                    f"size {n} seed {seed} ({seconds:.0f} s, {report.documents} documents): "
                    + "  ".join(f"{key} {v:.3f}" for key, v in row.items() if "λ" not in key),
                    flush=True,
                )
            means = {key: statistics.mean(r[key] for r in per_seed) for key in per_seed[0]}
            print(f"\nsize {size}, mean over {len(per_seed)} seeds, precision@{args.k}:")
            for key, v in sorted(means.items(), key=lambda kv: -kv[1]):
                print(f"  {key:28s} {v:.4f}")
            print(flush=True)
            if args.json:  # after every size: a long run that fails later keeps what it measured
                args.json.write_text(json.dumps(figures, indent=1) + "\n")
    finally:  # the folders and indexes of every size (tens of MB)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
