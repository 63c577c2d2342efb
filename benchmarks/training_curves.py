"""How long should `nash index` train? Precision@10 of the default model along its training.

Takes the articles of a `benchmarks/collections.py` folder (``--docs`` random single-label
articles, both splits, optionally of the ``--top-labels`` largest labels), fits the index's
TF-IDF features on all of them and trains the default method (``nash-nbr``, ``--bits`` 64, every
document, no held-out part) for ``--max-steps`` optimiser steps. At checkpoints (in steps,
rounded to whole epochs) it encodes every document and measures, for 1,000 documents as
queries (never their own neighbour), the share of the 10 nearest in the query's folder by:
the Hamming order, the TF-IDF cosine re-rank and the fused re-rank of the default pool, and the
fused re-rank of a pool of 1 % of the collection (a stand-in for a much larger collection,
where the default pool of at most 1,000 is a far smaller share and the codes matter more).
This is what `nashcli.pipeline`'s step schedule was chosen from (README, "Larger collections").
The rankings use the plain Hamming distance, with ties in row order, as `nash similar` did then
(it now uses the encoder's weighted distance and scrambles ties: README, "Re-ranking"), so the
curves stay comparable with the recorded ones.

Run: ``nice -n 10 python benchmarks/training_curves.py --docs 10000 [--dataset reuters]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from small_collections import pick_articles  # noqa: E402

from nashcli import methods, training  # noqa: E402
from nashcli.features import make_problem  # noqa: E402
from nashcli.methods import DEFAULT_METHOD, SPECS  # noqa: E402
from nashcli.pipeline import scheduled_epochs  # noqa: E402
from nashcli.similar import default_pool, hamming_weight, rank_pool  # noqa: E402

CHECKPOINTS = (25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1500, 2000)


def precision(codes: np.ndarray, x, labels: np.ndarray, queries: np.ndarray, k: int = 10):
    """Precision@k of each ranking for ``queries`` (row numbers) among all rows."""
    c = codes.astype(np.float32)
    n, bits = c.shape
    ones = c.sum(axis=1)
    pool, small_pool, lam = default_pool(n), max(50, n // 100), hamming_weight(n)
    hits = {"hamming": 0, "cosine": 0, "fused": 0, "fused, 1% pool": 0}
    for q in queries:
        dist = np.rint(ones + ones[q] - 2 * c @ c[q]).astype(np.int64)
        dist[q] = bits + 1  # never its own neighbour
        rows = np.lexsort((np.arange(n), dist))[: min(pool, n - 1)]
        dists, same = dist[rows], labels[rows] == labels[q]
        hits["hamming"] += int(same[:k].sum())
        for ranking in ("cosine", "fused"):
            score = rank_pool(x[rows], x[q], dists, bits, ranking, weight=lam)
            hits[ranking] += int(same[np.lexsort((rows, dists, -score))[:k]].sum())
        few = slice(0, small_pool)
        score = rank_pool(x[rows[few]], x[q], dists[few], bits, "fused", weight=lam)
        order = np.lexsort((rows[few], dists[few], -score))[:k]
        hits["fused, 1% pool"] += int(same[few][order].sum())
    return {key: round(h / (k * len(queries)), 4) for key, h in hits.items()}


def curve(
    texts: list[str],
    labels: np.ndarray,
    max_steps: int,
    seed: int,
    queries: int,
    bits: int = 64,
    threads: int = 1,
) -> dict:
    """Precision@10 at each checkpoint of one training run: {steps: figures}."""
    problem = make_problem(texts, [], [])
    x = problem.features.transform(texts)
    n = len(texts)
    picked = np.random.default_rng(seed).choice(n, size=min(queries, n), replace=False)
    batch = dict(SPECS[DEFAULT_METHOD].train)["batch_size"]
    per_epoch = -(-n // batch)
    last = -(-max_steps // per_epoch)
    wanted = {max(1, round(s / per_epoch)) for s in CHECKPOINTS if s <= max_steps} | {last}
    wanted.add(scheduled_epochs(DEFAULT_METHOD, n, bits))  # where `nash index` stops
    points: dict[int, dict] = {}
    train = training._train  # the loop, wrapped to see the model at the end of each epoch

    def watched(model, data, config, device, on_epoch):
        start, paused = time.perf_counter(), 0.0

        def at_epoch(epoch: int, max_epochs: int, info: dict) -> None:
            nonlocal paused
            if epoch not in wanted:
                return
            began = time.perf_counter()
            codes = methods.encode_rows(model, x)
            model.train()
            figures = precision(codes, x, labels, picked)
            seconds = round(began - start - paused, 1)
            points[epoch * per_epoch] = {**figures, "epoch": epoch, "train_s": seconds}
            print(f"  {epoch * per_epoch:5d} steps (epoch {epoch}): {figures}", flush=True)
            paused += time.perf_counter() - began

        return train(model, data, config, device, at_epoch)

    training._train = watched
    try:
        methods.fit_model(
            DEFAULT_METHOD,
            bits,
            problem,
            seed=seed,
            device="cpu",
            max_epochs=last,
            time_budget=None,
            cpu_threads=threads,
        )
    finally:
        training._train = train
    return {"steps_per_epoch": per_epoch, "curve": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--dataset", choices=["20ng", "reuters"], default="20ng")
    parser.add_argument("--top-labels", type=int, default=0)
    parser.add_argument(
        "--seed", type=int, default=0, help="draws the articles, the queries and the model's start"
    )
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the training")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    docs = pick_articles(args.docs, args.dataset, args.seed, args.top_labels)
    texts, labels = [d["text"] for d in docs], np.array([d["labels"][0] for d in docs])
    print(f"{len(texts)} {args.dataset} articles in {len(set(labels))} folders", flush=True)
    figures = {
        "dataset": args.dataset,
        "docs": len(texts),
        "top_labels": args.top_labels,
        "seed": args.seed,
        "bits": args.bits,
        "threads": args.threads,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        **curve(texts, labels, args.max_steps, args.seed, args.queries, args.bits, args.threads),
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
