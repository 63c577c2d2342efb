"""Every hashing method by name, and one call that trains it and returns codes.

``fit_model`` trains a method and ``encode_rows`` encodes any TF-IDF rows with it: the
evaluation harness calls them (to encode the validation part as well), and so does the pipeline,
which keeps the trained model to encode new documents. ``fit_encode(method, bits, problem)`` is
the one call that returns a problem's training and test codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from nashcli.errors import NashError
from nashcli.features import Problem, knn_graph, real_neighbours


@dataclass(frozen=True)
class MethodSpec:
    """How to build and train one named method."""

    kind: str  # "nash", "vdsh", "lsh"
    noise: str = "none"  # NASH: "none", "fixed" (NASH-N), "learned" (NASH-DN)
    binarization: str = "stochastic"  # NASH's training codes: "stochastic" or "deterministic"
    sigma: float = 0.1
    encoder: str = "linear"
    dropout: float = 0.0  # on the encoder's input words
    neighbors: int = 0  # > 0: use the TF-IDF k-NN graph of the training documents
    nbr_weight: float = 0.0  # target = own counts + nbr_weight × mean counts of the neighbours
    pair_weight: float = 0.0  # tie the bit probabilities of neighbour pairs together
    pair_mode: str = "pull"  # "pull" or "nce" (see training.pair_loss)
    clusters: int = 0  # > 0: k-means clusters of the TF-IDF rows as pseudo-labels for a head on z
    cluster_weight: float = 1.0  # α of the pseudo-label loss
    cluster_space: str = "tfidf"  # where k-means runs: "tfidf" rows or the "spectral" embedding
    label_hidden: int = 500  # width of the label head's hidden layer; 0: linear head
    spectral_dims: int = 32  # dimensions of the k-NN graph's spectral embedding ("spectral")
    # Share of the first round's training neighbours taken from the spectral embedding's k-NN
    # instead of the TF-IDF graph (needs cluster_space "spectral").
    embedding_neighbours: float = 0.0
    rounds: int = 1  # > 1: train again on the k-NN graph of the previous round's codes
    train: tuple[tuple[str, object], ...] = ()  # TrainConfig fields this method sets
    description: str = ""


# nash-nbr, the default; nash-spectral below differs only in its pseudo-labels.
_NEIGHBOURHOOD = MethodSpec(
    "nash",
    noise="learned",
    neighbors=50,
    nbr_weight=8.0,
    pair_weight=100.0,
    pair_mode="nce",
    clusters=32,
    cluster_weight=100.0,
    label_hidden=0,
    # Batches of 256 at 3× the rates: same precision, about 3× less time per epoch.
    train=(("batch_size", 256), ("lr", 3e-3), ("encoder_lr", 1e-2)),
    description=(
        "NASH-DN + neighbourhood: reconstructs its 50 TF-IDF neighbours' words, InfoNCE "
        "ties its code to a neighbour's, a linear head predicts k-means pseudo-labels"
    ),
)

# The faithful variants (Adam 1e-3, batches of 64) learn slowly: trained to convergence, not to
# a 60-epoch cap. Canonical Reuters, NASH-DN, 8 bits, seeds 0/1/2: 0.658 / 0.656 / 0.575 with
# the cap and patience 6; 0.679 / 0.673 / 0.700 with these (best epochs 97 / 73 / 131).
_FAITHFUL_TRAINING = (("max_epochs", 200), ("patience", 10))


def _faithful(description: str, **fields) -> MethodSpec:
    return MethodSpec("nash", train=_FAITHFUL_TRAINING, description=description, **fields)


SPECS: dict[str, MethodSpec] = {
    "nash": _faithful("NASH: Bernoulli VAE, straight-through codes"),
    "nash-n": _faithful("NASH-N: fixed Gaussian noise on z", noise="fixed"),
    "nash-dn": _faithful("NASH-DN: per-document noise σ from the encoder", noise="learned"),
    "nash-mlp": _faithful("NASH-DN with the paper's 2×500 MLP", noise="learned", encoder="mlp"),
    "nash-nbr": _NEIGHBOURHOOD,
    # nash-nbr with its pseudo-labels from spectral clusters of the k-NN graph. Precision@100 at
    # 32 bits against nash-nbr (eval_tables, seed 0): 20NG 0.563 / 0.527 (canonical), 0.546 /
    # 0.490 (VDSH release), TMC 0.747 / 0.728; but Reuters 0.774 / 0.786, 0.845 / 0.856: a
    # method of its own, not the default.
    "nash-spectral": replace(
        _NEIGHBOURHOOD,
        cluster_space="spectral",
        description=(
            "nash-nbr whose pseudo-labels are spectral clusters of the TF-IDF k-NN graph "
            "(topics that share few words, e.g. newsgroups)"
        ),
    ),
    # nash-spectral trained twice, the second time on the k-NN graph of its own first codes,
    # whose neighbours share a topic more often than the TF-IDF graph's (20NG, random split,
    # 50 nearest: 66 % against 50 %), for topics that share few words; two to four times
    # nash-spectral's training time (147-338 s against 41-84 s a model on canonical 20NG).
    # Both rounds drop 80 % of the encoder's input words at random (each document and the
    # neighbour InfoNCE ties it to are seen through different word subsets, as in CIBHash's
    # word-dropping views). Canonical 20NG, seed 0, 16 / 32 bits: 0.550 / 0.589 without,
    # 0.566 / 0.597 at 0.5, 0.586 / 0.614 at 0.7, 0.583 / 0.622 at 0.8 (0.623 at 32 bits at
    # 0.85, still improving at 60 epochs); canonical Reuters, 32 bits: 0.765 without, 0.774 at
    # 0.7. It needs more epochs (20NG, 32 bits: best epoch 7 without, 49 at 0.8): a higher cap.
    "nash-refine": replace(
        _NEIGHBOURHOOD,
        cluster_space="spectral",
        embedding_neighbours=0.5,
        rounds=2,
        dropout=0.8,
        train=_NEIGHBOURHOOD.train + (("max_epochs", 100),),
        description=(
            "nash-spectral trained twice: the second model learns from the k-NN graph (and its "
            "spectral clusters) of the first model's codes; 80 % input-word dropout"
        ),
    ),
    "lsh": MethodSpec("lsh", description="random hyperplanes on TF-IDF"),
    "vdsh": MethodSpec("vdsh", description="Gaussian VAE, then median thresholding per bit"),
}

METHODS: tuple[str, ...] = (
    "nash",
    "nash-n",
    "nash-dn",
    "lsh",
    "vdsh",
    "tfidf",
    "nash-mlp",
    "nash-nbr",
    "nash-spectral",
    "nash-refine",
)
DEFAULT_METHOD: str = "nash-nbr"

SUPERVISED_ALPHA = 500.0
#: Supervised training settings (any method): the label term keeps improving the codes long after
#: the reconstruction has settled, so larger batches at higher rates and more patience.
#: reuters-vdsh, NASH-DN, 8 bits, precision@100: 0.875 with the unsupervised defaults (batch 64,
#: lr 1e-3, patience 6; still improving at the 60-epoch cap), 0.917 with these rates and patience
#: 6 (best epoch 39), 0.924 with patience 20 (best epoch 68).
SUPERVISED_TRAINING: dict[str, object] = {
    "batch_size": 256,
    "lr": 3e-3,
    "encoder_lr": 1e-2,
    "patience": 20,
    "max_epochs": 300,
}

OnEpoch = Callable[[int, int, dict], None]


def describe(method: str) -> str:
    if method == "tfidf":
        return "exact TF-IDF cosine (no hashing; the reference)"
    return _spec(method).description


def _spec(method: str) -> MethodSpec:
    if method not in SPECS:
        known = ", ".join(m for m in METHODS if m != "tfidf")
        raise NashError(f"unknown method {method!r} (choose from {known})")
    return SPECS[method]


def resolve_device(device: str = "auto"):
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NashError("CUDA was asked for but no GPU is available (use --device cpu)")
        return torch.device(device)
    if device == "cpu":
        return torch.device("cpu")
    raise NashError(f"unknown device {device!r} (use auto, cpu or cuda)")


def fit_model(
    method: str,
    bits: int,
    problem: Problem,
    *,
    supervised: bool = False,
    seed: int = 0,
    device: str = "auto",
    on_epoch: OnEpoch | None = None,
    **train_kw,
):
    """Train ``method`` on ``problem``; returns ``(model, train_result or None)``.

    The model is a ``torch.nn.Module`` with ``codes(x)`` (NASH, VDSH) or an ``LSH``.
    ``train_kw`` overrides fields of ``training.TrainConfig`` (e.g. ``max_epochs``).
    """
    spec = _spec(method)
    if bits < 1:
        raise NashError("the number of bits must be at least 1")
    if spec.kind == "lsh":
        from nashcli.baselines import LSH

        return LSH(bits, seed=seed).fit(problem.X_train), None

    import torch

    dev = resolve_device(device)
    # Training seeds torch's random generator, for the same codes every time: on a copy of
    # its state, so that what a caller draws from torch afterwards does not depend on it.
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        return _fit_trained(spec, bits, problem, supervised, seed, dev, on_epoch, train_kw)


def _fit_trained(spec, bits, problem, supervised, seed, dev, on_epoch, train_kw):
    """:func:`fit_model` of a trained (torch) model, on the device ``dev``."""
    y_fit, multilabel = None, problem.multilabel
    if supervised and problem.Y_train is not None:
        y_fit = problem.Y_train
        # The label loss (nats per document) must weigh against a reconstruction of ~500 nats:
        # Reuters 32 bits P@100 0.764 at alpha 1, 0.868 at 50, 0.876 at 500.
        train_kw.setdefault("alpha", SUPERVISED_ALPHA)
        for key, value in SUPERVISED_TRAINING.items():
            train_kw.setdefault(key, value)
    neighbors, similarities = None, None
    if spec.neighbors > 0 and problem.X_train.shape[0] > 1:
        neighbors, similarities = knn_graph(problem.graph_rows, spec.neighbors)
    model, result = None, None
    rounds = spec.rounds if neighbors is not None else 1
    for round_ in range(rounds):
        if round_ > 0:  # the codes just learnt rank topics better than the graph they learnt from
            neighbors, similarities = code_graph(model, problem.X_train, spec.neighbors, dev)
        labels, embedding = y_fit, None
        if y_fit is None and spec.clusters > 0 and spec.kind == "nash":
            if spec.cluster_space == "spectral" and neighbors is not None:
                embedding = spectral_embedding(neighbors, similarities, spec.spectral_dims, seed)
                labels = spectral_clusters(embedding, spec.clusters, seed)
            else:
                labels = cluster_labels(problem.X_train, spec.clusters, seed)
            train_kw.setdefault("alpha", spec.cluster_weight)
        train_neighbors = neighbors
        if round_ == 0 and spec.embedding_neighbours > 0 and embedding is not None:
            train_neighbors = blend_neighbours(neighbors, embedding, spec.embedding_neighbours)
        model, result = _fit_round(
            spec,
            bits,
            problem,
            train_neighbors,
            labels,
            multilabel=multilabel if labels is y_fit else False,
            seed=seed,
            device=dev,
            on_epoch=_in_round(on_epoch, round_ + 1, rounds),
            **train_kw,
        )
    if hasattr(model, "fit_thresholds"):
        model.fit_thresholds(problem.X_train, dev)
    return model, result


def _in_round(on_epoch: OnEpoch | None, round_: int, rounds: int) -> OnEpoch | None:
    """``on_epoch`` whose ``info`` also says ``round`` = (this round, rounds) where there are
    several, so a progress display does not look as if training started over."""
    if on_epoch is None or rounds == 1:
        return on_epoch
    return lambda epoch, max_epochs, info: on_epoch(
        epoch, max_epochs, {**info, "round": (round_, rounds)}
    )


def _fit_round(
    spec: MethodSpec,
    bits: int,
    problem: Problem,
    neighbors: np.ndarray | None,
    y_fit: np.ndarray | None,
    *,
    multilabel: bool,
    seed: int,
    device,
    on_epoch: OnEpoch | None,
    **train_kw,
):
    """One model trained from scratch: reconstruction (of its neighbourhood, with a graph),
    ``y_fit`` (labels or pseudo-labels) for the label head."""
    import torch

    from nashcli.training import TrainConfig, TrainData, train

    torch.manual_seed(seed)
    n_labels = y_fit.shape[1] if y_fit is not None else 0
    if spec.kind == "vdsh":
        from nashcli.baselines import VDSH, VdshConfig

        model = VDSH(
            VdshConfig(
                problem.vocabulary_size,
                bits,
                encoder=spec.encoder,
                n_labels=n_labels,
                multilabel=multilabel,
            )
        )
    else:
        from nashcli.model import NASH, NashConfig

        model = NASH(
            NashConfig(
                problem.vocabulary_size,
                bits,
                encoder=spec.encoder,
                noise=spec.noise,
                binarization=spec.binarization,
                sigma=spec.sigma,
                dropout=spec.dropout,
                label_hidden=spec.label_hidden,
                n_labels=n_labels,
                multilabel=multilabel,
            )
        )
        model.start_from_background(problem.C_train.sum(axis=0))
    settings = {"pair_weight": spec.pair_weight, "pair_mode": spec.pair_mode, **dict(spec.train)}
    config = replace(TrainConfig(seed=seed, **settings), **train_kw)
    mix = None if neighbors is None else neighbour_mix(neighbors, spec.nbr_weight)
    data = TrainData(
        X=problem.X_train,
        target=problem.C_train,
        target_mix=mix,
        neighbors=neighbors,
        Y_fit=y_fit,
        Y=problem.Y_train,
        X_val=problem.X_val,
        target_val=problem.C_val,
        Y_val=problem.Y_val,
    )
    return model, train(model, data, config, device, on_epoch=on_epoch)


def cluster_labels(x: sp.csr_matrix, k: int, seed: int = 0) -> np.ndarray:
    """One-hot k-means clusters of L2-normalised TF-IDF rows (pseudo-labels), bool (n, k')."""
    return _kmeans_one_hot(x, k, seed, n_init=1, max_iter=50)


def _kmeans_one_hot(points, k: int, seed: int, **kmeans_kw) -> np.ndarray:
    """One-hot k-means assignment, bool (n, min(k, n)).

    Fewer distinct points than clusters (a small folder with duplicate files) leaves some
    clusters empty: harmless for pseudo-labels, so scikit-learn's warning about it is silenced
    rather than printed into ``nash index``'s output.
    """
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    k = max(1, min(k, points.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assign = KMeans(k, random_state=seed, **kmeans_kw).fit_predict(points)
    return np.eye(k, dtype=bool)[assign]


def spectral_embedding(
    neighbors: np.ndarray, similarities: np.ndarray, dims: int, seed: int = 0
) -> np.ndarray:
    """Row-normalised spectral embedding (n, ≤ dims) of a k-NN graph, float32.

    The graph is symmetrised and weighted by cosine; the embedding is its normalised adjacency's
    ``dims`` leading eigenvectors, rows scaled to unit length (Ng, Jordan & Weiss 2002).
    Distances there follow the graph's communities, which follow topics far better than the
    sparse TF-IDF rows do. The first eigenvector is kept, as scikit-learn's spectral clustering
    keeps it: in a graph of several components every component's indicator has eigenvalue 1, so
    no single "trivial" vector can be dropped.
    """
    from scipy.sparse.linalg import eigsh
    from sklearn.preprocessing import normalize

    n, width = neighbors.shape
    rows, cols = np.repeat(np.arange(n), width), neighbors.ravel()
    edge = real_neighbours(neighbors).ravel()  # the padding makes no edge (a self-loop would
    # make a document with no neighbours a component of its own, worth an eigenvector)
    weights = np.maximum(similarities.ravel()[edge], 1e-6).astype(np.float64)
    graph = sp.csr_matrix((weights, (rows[edge], cols[edge])), shape=(n, n))
    graph = (graph + graph.T).tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        scale = sp.diags(np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0))
    adjacency = scale @ graph @ scale
    k = max(1, min(dims, n - 1))
    if n <= 4 * k + 2:  # too small for ARPACK: a dense solve
        values, vectors = np.linalg.eigh(adjacency.toarray())
    else:
        start = np.random.default_rng(seed).random(n)
        values, vectors = eigsh(adjacency, k=k, which="LA", tol=1e-4, v0=start)
    order = np.argsort(-values, kind="stable")[:k]  # (equal eigenvalues: the same on every CPU)
    return normalize(vectors[:, order]).astype(np.float32)


def spectral_clusters(embedding: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """One-hot k-means clusters of a spectral embedding (pseudo-labels), bool (n, k').

    The chance that two training documents of one of 32 clusters share a label, here against
    k-means on the TF-IDF rows: 20NG (VDSH release) 0.50 against 0.34, TMC 0.79 against 0.76,
    Reuters (VDSH release) 0.65 against 0.70.
    """
    return _kmeans_one_hot(embedding, k, seed, n_init=3, max_iter=100)


def blend_neighbours(neighbors: np.ndarray, embedding: np.ndarray, share: float) -> np.ndarray:
    """Each row's nearest TF-IDF neighbours with the last ``share`` of them replaced by its
    nearest rows in the graph's spectral embedding, int64 (n, k).

    Embedding neighbours share a document's topic more often (20NG, random split: 61 % of the 50
    nearest against 50 % in the TF-IDF graph), the TF-IDF ones its words.
    """
    k = neighbors.shape[1]
    taken = min(int(round(k * share)), k, len(embedding) - 1)
    if taken <= 0:
        return neighbors
    near, _ = knn_graph(embedding, taken)
    return np.concatenate([neighbors[:, : k - taken], near], axis=1)


def code_graph(model, x: sp.csr_matrix, k: int, device) -> tuple[np.ndarray, np.ndarray]:
    """The k-NN graph of a trained NASH model's documents by the cosine of their centred code
    scores (what the codes threshold): ``(indices, similarities)`` as :func:`knn_graph`."""
    from nashcli.training import encoder_scores

    scores = encoder_scores(model, x, device)
    scores -= scores.mean(axis=0)
    scores /= np.maximum(np.linalg.norm(scores, axis=1, keepdims=True), 1e-12)
    return knn_graph(scores.astype(np.float32), k)


def neighbour_mix(neighbors: np.ndarray, weight: float) -> sp.csr_matrix:
    """(n, n) sparse I + weight × (mean over each row's neighbours).

    ``mix @ counts`` is each document's own counts plus ``weight`` × its neighbours' mean counts:
    the words its neighbourhood uses (NbrReg/SNUH-style smoothing of the reconstruction target).
    A row's own index among its neighbours is no neighbour (``knn_graph``'s padding): the mean
    is over the others, and a document with none reconstructs its own words alone.
    """
    n, k = neighbors.shape
    own = np.arange(n)
    edge = real_neighbours(neighbors)
    counts = edge.sum(axis=1)
    share = weight / np.maximum(counts, 1)
    rows = np.concatenate([own, np.repeat(own, k)[edge.ravel()]])
    cols = np.concatenate([own, neighbors[edge]])
    vals = np.concatenate([np.ones(n, np.float32), np.repeat(share, counts)])
    return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n, n))


def encode_rows(model, x: sp.csr_matrix, device: str = "auto") -> np.ndarray:
    """bool (n, bits) deterministic codes of TF-IDF rows ``x`` under a fitted model."""
    from nashcli.baselines import LSH

    if isinstance(model, LSH):
        return model.transform(x)
    from nashcli.training import encode

    dev = next(model.parameters()).device if device == "auto" else resolve_device(device)
    return encode(model, x, dev)


def fit_encode(
    method: str,
    bits: int,
    problem: Problem,
    *,
    supervised: bool = False,
    seed: int = 0,
    device: str = "auto",
    on_epoch: OnEpoch | None = None,
    **train_kw,
) -> tuple[np.ndarray, np.ndarray]:
    """Train ``method`` on ``problem``; return (train codes, test codes), bool (n, bits)."""
    if method == "tfidf":
        raise NashError("tfidf is not a hashing method: rank by exact cosine on the TF-IDF rows")
    model, _ = fit_model(
        method,
        bits,
        problem,
        supervised=supervised,
        seed=seed,
        device=device,
        on_epoch=on_epoch,
        **train_kw,
    )
    return encode_rows(model, problem.X_train), encode_rows(model, problem.X_test)
