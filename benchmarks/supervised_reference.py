"""What labels can do for retrieval: references for the supervised rows of `nash eval`.

    python benchmarks/supervised_reference.py reuters reuters-vdsh 20ng tmc
    python benchmarks/supervised_reference.py --json reuters reuters-vdsh 20ng tmc

(``--json``: one line per corpus, as in ``benchmarks/results/supervised-reference.jsonl``.)

Per corpus, with `nash eval`'s database (the training split; canonical corpora search its
validation tenth too) and queries (the test split), a hit sharing a label:

- ``best possible P@100``: every query's top 100 filled with documents that share a label with
  it, as far as the database holds them (the ceiling of any method);
- ``classifier top-1``: how often a one-vs-rest linear SVM on the same TF-IDF rows, trained on
  the database's labels, puts a label the query has first;
- ``classify-then-retrieve P@100``: tie-aware precision@100 when each query ranks the database
  by the true labels of its documents, best predicted label first (a document scores the SVM's
  highest score among its labels; the documents of one label tie). It knows every database
  label exactly, which codes learnt from the same labels only approximate, so it is a reference
  for supervised hashing, not a bound.

Supervised NASH-DN's shortfall against the paper on canonical Reuters (90 categories) is
measured against these: there, the classifier's best label is a miss for one query in 19, and
the queries of small categories cannot fill a top 100.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))

from revisions import cpu_name, git_commit  # noqa: E402

from nashcli.datasets import load_dataset  # noqa: E402
from nashcli.evaluation import database_labels, database_rows, prepare  # noqa: E402
from nashcli.metrics import precision_at_k  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
K = 100


def best_possible(db_labels: np.ndarray, query_labels: np.ndarray, k: int = K) -> float:
    """Mean over queries of min(k, documents sharing a label) / k."""
    relevant = (query_labels.astype(np.float32) @ db_labels.T.astype(np.float32)) > 0
    return float(np.minimum(relevant.sum(axis=1), k).mean() / k)


def label_scores(x_db, db_labels: np.ndarray, x_queries, c: float) -> np.ndarray:
    """One-vs-rest linear SVM decision scores (queries x labels) for the labels some database
    document has; the others score -inf."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import LinearSVC

    present = db_labels.any(axis=0)
    model = OneVsRestClassifier(LinearSVC(C=c)).fit(x_db, db_labels[:, present].astype(int))
    scores = np.full((x_queries.shape[0], db_labels.shape[1]), -np.inf)
    scores[:, present] = model.decision_function(x_queries)
    return scores


def classify_then_retrieve(
    scores: np.ndarray, db_labels: np.ndarray, query_labels: np.ndarray, k: int = K
) -> float:
    """Tie-aware precision@k of ranking each query's database by its SVM's best score among each
    document's true labels (documents without a label last)."""
    distances = np.empty((scores.shape[0], db_labels.shape[0]), dtype=np.float64)
    for start in range(0, scores.shape[0], 32):
        block = scores[start : start + 32]
        masked = np.where(db_labels[None, :, :], block[:, None, :], -np.inf)
        distances[start : start + 32] = -masked.max(axis=2)
    distances[~np.isfinite(distances)] = np.finfo(np.float64).max

    def lookup(query_rows: np.ndarray, db_rows: np.ndarray) -> np.ndarray:
        return distances[query_rows[:, 0]][:, db_rows[:, 0]]

    database = np.arange(db_labels.shape[0])[:, None]
    queries = np.arange(scores.shape[0])[:, None]
    return precision_at_k(database, db_labels, queries, query_labels, k=k, distance=lookup)[1]


def measure(name: str, data_dir: Path, c: float) -> dict:
    start = time.perf_counter()
    problem, splits = prepare(load_dataset(name, data_dir), "canonical", seed=0)
    include_val = splits.val_from_train
    db_labels = database_labels(problem, include_val)
    x_db = database_rows(problem, include_val)
    query_labels = np.asarray(problem.Y_test, dtype=bool)
    scores = label_scores(x_db, db_labels, problem.X_test, c)
    top = scores.argmax(axis=1)
    return {
        "dataset": name,
        "database": int(db_labels.shape[0]),
        "queries": int(query_labels.shape[0]),
        "labels": int(db_labels.shape[1]),
        "svm_c": c,
        "best_possible_p100": round(best_possible(db_labels, query_labels), 4),
        "classifier_top1": round(float(query_labels[np.arange(len(top)), top].mean()), 4),
        "classify_then_retrieve_p100": round(
            classify_then_retrieve(scores, db_labels, query_labels), 4
        ),
        "seconds": round(time.perf_counter() - start, 1),
        "commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=["reuters", "reuters-vdsh"])
    parser.add_argument("--data-dir", type=Path, default=DATASETS)
    parser.add_argument("--c", type=float, default=1.0, help="the SVM's C (default 1)")
    parser.add_argument("--json", action="store_true", help="one JSON line per corpus")
    args = parser.parse_args()
    for name in args.datasets:
        row = measure(name, args.data_dir, args.c)
        if args.json:
            print(json.dumps(row), flush=True)
            continue
        print(
            f"{name}: {row['database']:,} database documents, {row['queries']:,} queries, "
            f"{row['labels']} labels; best possible P@100 {row['best_possible_p100']:.4f}, "
            f"classifier top-1 {row['classifier_top1']:.4f}, classify-then-retrieve P@100 "
            f"{row['classify_then_retrieve_p100']:.4f} ({row['seconds']} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
