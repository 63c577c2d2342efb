"""How much the TF-IDF k-NN graph knows: the teacher behind `nash-nbr` and `nash-spectral`.

    python benchmarks/graph_quality.py 20ng-vdsh reuters-vdsh 20ng tmc

Per corpus (training split = database, test split = queries, a hit shares a label):

- ``graph P@k``: share of each training document's k nearest training documents (TF-IDF cosine)
  that share a label with it, k = 10, 50, 100;
- ``clusters``: chance that two training documents of one of 32 pseudo-label clusters share a
  label, k-means on the TF-IDF rows (`nash-nbr`) against spectral clusters (`nash-spectral`);
- ``spectral P@100``: precision@100 of the queries ranked by cosine in the graph's 32-dimensional
  spectral embedding, a query placed at the similarity-weighted mean of its 20 nearest training
  documents' embeddings (a direct use of the graph, without training); ``tfidf P@100`` is exact
  cosine, the usual reference;
- ``embedding LOO P@100``: the same embedding, each training document a query against the others
  (leave one out): how well what the pseudo-labels are cut from separates the labels.

Each corpus is measured twice: the graph on the model's 10k-word TF-IDF rows, and on the whole
vocabulary of the training documents (``Problem.graph_rows``, what the methods use).

Where the graph is poor (20 Newsgroups: 36 % of a post's 100 nearest share its group, against
70 % on Reuters) everything learnt from it starts from less.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nashcli.datasets import load_dataset  # noqa: E402
from nashcli.evaluation import prepare, score_exact  # noqa: E402
from nashcli.features import knn_graph, real_neighbours  # noqa: E402
from nashcli.methods import cluster_labels, spectral_clusters, spectral_embedding  # noqa: E402
from nashcli.metrics import precision_at_k  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def neighbour_precision(neighbors: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of each row's ``k`` nearest that share a label with it; a row's own index (the
    graph's padding where fewer than ``k`` documents share a word with it) counts as a miss."""
    near = neighbors[:, :k]
    hit = (labels[near] & labels[:, None, :]).any(axis=2)
    return float((hit & real_neighbours(near)).mean())


def cluster_precision(one_hot: np.ndarray, labels: np.ndarray) -> float:
    """Mean over documents of the share of the others in its cluster that share a label."""
    y = labels.astype(np.float32)
    assign = one_hot.argmax(axis=1)
    total = 0.0
    for cluster in np.unique(assign):
        members = y[assign == cluster]
        sharing = ((members @ members.T) > 0).sum(axis=1) - 1
        total += float((sharing / max(len(members) - 1, 1)).sum())
    return total / len(y)


def spectral_query_precision(problem, embedding: np.ndarray, query_neighbours: int = 20) -> float:
    sims = np.asarray((problem.X_test @ problem.X_train.T).todense(), dtype=np.float32)
    nearest = np.argpartition(-sims, query_neighbours, axis=1)[:, :query_neighbours]
    weights = np.take_along_axis(sims, nearest, axis=1)
    queries = (embedding[nearest] * weights[..., None]).sum(axis=1)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    distances = -(queries @ embedding.T)

    def lookup(query_rows: np.ndarray, db_rows: np.ndarray) -> np.ndarray:
        return distances[query_rows[:, 0]][:, db_rows[:, 0]]

    database = np.arange(len(embedding))[:, None]
    query_ids = np.arange(len(queries))[:, None]
    return precision_at_k(
        database, problem.Y_train, query_ids, problem.Y_test, k=100, distance=lookup
    )[1]


def leave_one_out_precision(embedding: np.ndarray, labels: np.ndarray, k: int = 100) -> float:
    """Mean share of each row's k most cosine-similar other rows that share a label with it."""
    unit = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    hits = 0.0
    for start in range(0, len(unit), 1024):
        rows = np.arange(start, min(start + 1024, len(unit)))
        sims = unit[rows] @ unit.T
        sims[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        hits += float((labels[top] & labels[rows, None, :]).any(axis=2).sum())
    return hits / (len(unit) * k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--data-dir", type=Path, default=DATASETS)
    args = ap.parse_args()
    for name in args.datasets:
        problem, splits = prepare(load_dataset(name, args.data_dir))
        x, y = problem.X_train, problem.Y_train
        kmeans = cluster_precision(cluster_labels(x, 32), y)
        exact = score_exact(problem, include_val=splits.val_from_train)[1]  # as eval's table
        print(f"{name}: clusters k-means {kmeans:.3f}; tfidf P@100 {exact:.3f}", flush=True)
        for vocabulary, rows in (("10k words", x), ("whole vocabulary", problem.graph_rows)):
            neighbors, similarities = knn_graph(rows, 100)
            graph = [neighbour_precision(neighbors, y, k) for k in (10, 50, 100)]
            embedding = spectral_embedding(neighbors[:, :50], similarities[:, :50], 32)
            spectral = cluster_precision(spectral_clusters(embedding, 32), y)
            print(
                f"  graph on {vocabulary} ({rows.shape[1]} terms): "
                f"graph P@10/50/100 {graph[0]:.3f} / {graph[1]:.3f} / {graph[2]:.3f}; "
                f"clusters spectral {spectral:.3f}; "
                f"spectral P@100 {spectral_query_precision(problem, embedding):.3f}; "
                f"embedding LOO P@100 {leave_one_out_precision(embedding, y):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
