"""The training loop: Adam over minibatches of sparse rows, early stopping on a validation part.

A linear encoder reads each minibatch's sparse CSR rows as they are (``SparseRows``: only the
non-zeros are multiplied); other encoders and the reconstruction targets get dense tensors one
minibatch at a time, so the corpus never exists densely.
Early stopping watches the validation precision@100 (validation queries against the training
database, a subsample for speed) when labels exist, else the validation loss; with no validation
part the model trains for a fixed number of epochs. A minimum number of epochs guards against the
early collapse of short codes (at 8 bits codes collapse for the first ~10 epochs).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from nashcli.model import SparseRows
from nashcli.vectors import CsrRows

OnEpoch = Callable[[int, int, dict], None]


@dataclass
class TrainConfig:
    lr: float = 1e-3
    encoder_lr: float | None = None  # a separate (larger) rate for the encoder; None: lr
    batch_size: int = 64
    max_epochs: int = 60
    min_epochs: int = 12  # no early stop before this (short codes collapse early on)
    # ... nor before this many optimiser steps: a corpus of a few hundred documents makes 5
    # steps an epoch, and 12 epochs left the faithful NASH-DN untrained (261 training
    # documents, 4 labels, 16 bits: stopped at epoch 22, best epoch 1, precision@100 0.254,
    # chance; at least 300 steps: 0.327, 800: 0.377, exact cosine 0.395). 300 is below what
    # 12 epochs make on every recorded corpus (fewest: 28 steps an epoch), which it leaves as
    # they were.
    min_steps: int = 300
    patience: int = 6  # epochs without a better validation score before stopping
    kl_weight: float = 1.0
    kl_anneal_epochs: int = 0  # > 0: the KL weight rises linearly from 0 over these epochs
    alpha: float = 1.0  # weight of the label loss (supervised)
    pair_weight: float = 0.0  # weight of the term tying codes of neighbour pairs together
    pair_mode: str = "pull"  # "pull": squared distance; "nce": InfoNCE vs in-batch negatives
    temperature: float = 0.2  # of the InfoNCE similarities (cosine of ±1 codes)
    val_queries: int = 1000  # validation queries used for precision@100 (subsample for speed)
    # Seconds; stop after the epoch that crosses it, but never before min_epochs nor while every
    # epoch so far gave collapsed codes (a loaded machine once got 2 epochs: one code for 99 %).
    time_budget: float | None = None
    # CPU threads while training (restored afterwards); None: the cores other work leaves idle
    # (:func:`idle_cores`). On a busy 2-core machine one thread was far faster (10k documents:
    # 15 epochs in 42 s against 3 epochs with 2 threads competing with other work); on a quiet
    # one two were (Reuters nash-nbr, 32 bits: 54 s against 69 s, the same model).
    cpu_threads: int | None = None
    seed: int = 0


@dataclass
class TrainData:
    """What a model learns from: TF-IDF inputs, reconstruction targets, labels, optional graph."""

    X: sp.csr_matrix
    target: sp.csr_matrix
    Y: np.ndarray | None = None
    X_val: sp.csr_matrix | None = None
    target_val: sp.csr_matrix | None = None
    Y_val: np.ndarray | None = None
    neighbors: np.ndarray | None = None  # (n, k) indices into X of each document's neighbours
    Y_fit: np.ndarray | None = None  # labels the classifier head learns (true or pseudo), or None
    target_mix: sp.csr_matrix | None = None  # (n, n): row i's target is mix[i] @ target


@dataclass
class TrainResult:
    epochs: int
    best_epoch: int
    best_score: float
    seconds: float
    history: list[dict] = field(default_factory=list)


def row_parts(x: sp.csr_matrix, rows: np.ndarray | slice):
    """``(indptr, indices, data)`` of ``x[rows]``, as scipy's row indexing gives them.

    A minibatch's rows gathered in numpy: scipy's indexing checks and wraps every call, which
    cost a tenth of a faithful Reuters training step (its input and target rows, 64 each: 0.6 ms
    of 5.6 at 8 bits).
    ``rows`` may repeat and come in any order (a batch's neighbours do).
    """
    if isinstance(rows, slice):
        part = x[rows]
        return part.indptr, part.indices, part.data
    part = CsrRows(x.indptr, x.indices, x.data, x.shape[1]).take(rows)
    return part.indptr, part.indices, part.data


def dense_rows(x: sp.csr_matrix, rows: np.ndarray | slice, device: torch.device) -> torch.Tensor:
    """Rows of a CSR matrix as a dense float32 tensor on ``device``."""
    if isinstance(rows, slice) or not x.has_canonical_format:  # duplicates: toarray sums them
        return torch.from_numpy(x[rows].toarray().astype(np.float32, copy=False)).to(device)
    indptr, indices, data = row_parts(x, rows)
    n_rows, width = len(indptr) - 1, x.shape[1]
    out = np.zeros(n_rows * width, dtype=np.float32)
    out[np.repeat(np.arange(n_rows, dtype=np.int64) * width, np.diff(indptr)) + indices] = data
    return torch.from_numpy(out.reshape(n_rows, width)).to(device)


def sparse_rows(x: sp.csr_matrix, rows: np.ndarray | slice, device: torch.device) -> SparseRows:
    """Rows of a CSR matrix as ``SparseRows`` on ``device`` (no dense copy)."""
    indptr, indices, data = row_parts(x, rows)
    return SparseRows(
        indices=torch.from_numpy(indices.astype(np.int64)).to(device),
        offsets=torch.from_numpy(indptr[:-1].astype(np.int64)).to(device),
        values=torch.from_numpy(data.astype(np.float32, copy=False)).to(device),
    )


def input_rows(model, x: sp.csr_matrix, rows: np.ndarray | slice, device: torch.device):
    """Encoder input for ``rows`` of ``x``: sparse where the model's encoder takes it, else dense.

    reuters-vdsh, nash-nbr, 32 bits, 2 threads: 1.9–2.2 s an epoch instead of 2.9–3.0 s with
    the dense rows, the same validation precision after 8 epochs (0.8391).
    """
    if getattr(model, "accepts_sparse", False):
        return sparse_rows(x, rows, device)
    return dense_rows(x, rows, device)


def linear_scores(x: sp.csr_matrix, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``x·Wᵀ + b`` of a linear encoder, float (n, bits): sparse × dense in scipy, so the corpus
    is never densified."""
    return np.asarray(x @ weight.T) + bias


@torch.no_grad()
def _over_rows(model, x: sp.csr_matrix, device: torch.device, per_rows, dtype, chunk: int = 2048):
    """``per_rows`` of dense chunks of ``x``'s rows in eval mode, as one (n, n_bits) array."""
    was_training = model.training
    model.eval()
    out = [
        per_rows(dense_rows(x, slice(i, i + chunk), device)).cpu().numpy()
        for i in range(0, x.shape[0], chunk)
    ]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.config.n_bits), dtype=dtype)


def _linear_margin(model, x: sp.csr_matrix) -> np.ndarray | None:
    """``x·Wᵀ + b − threshold`` of a linear encoder (sparse × dense, never densified), float
    (n, n_bits), whose sign is the code; None for other encoders. ``a − b > 0`` exactly when
    ``a > b`` in IEEE floats, so thresholding the margin at 0 is thresholding the score."""
    linear = model.linear_encoder() if hasattr(model, "linear_encoder") else None
    if linear is None:
        return None
    weight, bias, threshold = linear
    return linear_scores(x, weight, bias) - threshold


def encode(model: torch.nn.Module, x: sp.csr_matrix, device: torch.device, chunk: int = 2048):
    """Deterministic codes of every row of ``x``: bool (n, n_bits) numpy array."""
    margin = _linear_margin(model, x)
    if margin is not None:
        return margin > 0
    return _over_rows(model, x, device, model.codes, bool, chunk)


def encoder_scores(model, x: sp.csr_matrix, device: torch.device, chunk: int = 2048) -> np.ndarray:
    """What a NASH model thresholds into codes, float (n, n_bits): ``codes = scores > 0``.

    Unlike the codes, the scores say how sure each bit is, so distances between them rank
    documents more finely than Hamming distance does.
    """
    margin = _linear_margin(model, x)
    if margin is not None:
        return margin
    return _over_rows(model, x, device, model.scores, np.float32, chunk)


@torch.no_grad()
def validation_loss(model, data: TrainData, device: torch.device, chunk: int = 512) -> float:
    """Mean −ELBO of the validation part under deterministic codes."""
    was_training = model.training
    model.eval()
    total = 0.0
    n = data.X_val.shape[0]
    for i in range(0, n, chunk):
        rows = slice(i, i + chunk)
        x = input_rows(model, data.X_val, rows, device)
        out = model(x, dense_rows(data.target_val, rows, device))
        m = min(chunk, n - i)
        total += float(out["recon"] + out["kl"]) * m
    model.train(was_training)
    return total / max(n, 1)


COLLAPSE_SAMPLE = 2000  # training rows whose codes are checked for collapse


def codes_collapsed(codes: np.ndarray) -> bool:
    """True when ``codes`` (bool (n, bits)) carry almost no information.

    Collapsed: fewer distinct codes than 10 % of what the rows could fill (min(n, 2**bits), at
    least 2), or more than half of the bits constant across every row. Healthy codes of a
    topical corpus are far from both (nearly one code per document at 32+ bits).
    """
    n, bits = codes.shape
    if n < 2 or bits == 0:
        return False
    distinct = len(np.unique(np.packbits(codes, axis=1), axis=0))
    constant = int((codes.all(axis=0) | ~codes.any(axis=0)).sum())
    capacity = min(n, 2 ** min(bits, 30))
    return distinct < max(2.0, 0.1 * capacity) or constant > bits / 2


class ValidationScorer:
    """Tie-aware precision@k of the validation queries against the training database's codes.

    Which training documents each query counts as a hit never changes during training, so the
    (queries × database) hit matrix is computed once, not every epoch.
    """

    def __init__(self, data: TrainData, k: int = 100) -> None:
        from nashcli.metrics import label_hits

        self.k = min(k, data.X.shape[0])
        self.hits = label_hits(data.Y_val, data.Y)

    def __call__(self, model, data: TrainData, device: torch.device) -> float:
        from nashcli.metrics import hamming_distance_matrix, tie_aware_precision

        if hasattr(model, "fit_thresholds"):  # two-stage models (VDSH) threshold at medians
            model.fit_thresholds(data.X, device)
        db = encode(model, data.X, device)
        queries = encode(model, data.X_val, device)
        return tie_aware_precision(hamming_distance_matrix(queries, db), self.hits, self.k)


def training_threads(config: TrainConfig) -> int:
    """CPU threads to train with: ``config.cpu_threads``, else ``$NASH_TRAIN_THREADS`` (for
    benchmarks that run several trainings side by side), else :func:`idle_cores`."""
    if config.cpu_threads:
        return config.cpu_threads
    try:
        return max(1, int(os.environ["NASH_TRAIN_THREADS"]))
    except (KeyError, ValueError):
        return idle_cores()


def idle_cores(sample: float = 0.1) -> int:
    """The cores other work leaves idle, at least 1: the threads that help training rather than
    fight other processes for cores. Measured from ``/proc/stat`` over ``sample`` seconds where
    there is one (the load average lags by a minute and counts this process's own past work),
    else from the 1-minute load average."""
    from nashcli.search import default_threads

    cores = default_threads()  # the cores this process may run on
    idle = _idle_fraction(sample)
    if idle is not None:
        return max(1, min(cores, int(cores * idle + 0.5)))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): leave a core to the rest
        return max(1, cores - 1)
    return max(1, min(cores, int(cores + 0.5 - load)))


def _idle_fraction(sample: float) -> float | None:
    """Share of CPU time the whole machine spent idle during ``sample`` seconds, or None."""

    def read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, all but guest time

    try:
        idle0, total0 = read()
        time.sleep(sample)
        idle1, total1 = read()
    except (OSError, ValueError, IndexError):
        return None
    return (idle1 - idle0) / (total1 - total0) if total1 > total0 else None


class FusedAdam:
    """Adam through torch's fused kernel, stepped as ``torch.optim.Adam(fused=True)`` steps it.

    The same kernel on the same state gives the same floats, bit for bit
    (``tests/test_training.py``). It skips ``torch.optim.Optimizer``, whose constructor and
    ``step`` import ``torch._dynamo``: about 0.9 s of every process that trains, a tenth of a
    first ``nash index`` of a few hundred files. ``groups`` pairs parameters with their rate.
    """

    def __init__(
        self,
        groups: list[tuple[list[torch.nn.Parameter], float]],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.groups = [(list(params), lr) for params, lr in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[torch.nn.Parameter, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for params, lr in self.groups:
            live = [p for p in params if p.grad is not None]
            if not live:
                continue
            for p in live:  # lazily, as torch does: a parameter never given a gradient has none
                if p not in self.state:
                    step = torch.zeros((), dtype=torch.float32, device=p.device)
                    self.state[p] = (step, torch.zeros_like(p), torch.zeros_like(p))
            state = [self.state[p] for p in live]
            steps, avgs, sq_avgs = ([s[i] for s in state] for i in range(3))
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                live,
                [p.grad for p in live],
                avgs,
                sq_avgs,
                [],
                steps,
                amsgrad=False,
                lr=lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )


def make_adam(
    model: torch.nn.Module, lr: float, encoder_lr: float | None = None
) -> FusedAdam | torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch has it for the model's device (~1.7× faster
    steps on CPU than torch's per-tensor Adam), else ``torch.optim.Adam``.

    ``encoder_lr`` gives the encoder (every parameter outside the decoder and the classifier) its
    own rate: a linear encoder over 10k sparse TF-IDF inputs learns slowly at the decoder's rate.
    """
    groups: list[tuple[list[torch.nn.Parameter], float]] = [(list(model.parameters()), lr)]
    if encoder_lr is not None:
        enc, rest = [], []
        for name, p in model.named_parameters():
            (rest if name.startswith(("decoder", "classifier")) else enc).append(p)
        groups = [(enc, encoder_lr), (rest, lr)]
    device = next(model.parameters()).device
    if _fused_adam_runs(device):
        return FusedAdam(groups)
    return torch.optim.Adam([{"params": params, "lr": rate} for params, rate in groups], lr=lr)


def _fused_adam_runs(device: torch.device) -> bool:
    """Whether this torch's fused Adam kernel runs on ``device`` (CPU from torch 2.4 on)."""
    try:
        one = torch.ones(1, device=device)
        torch._fused_adam_(
            [one.clone()], [one], [one.clone()], [one.clone()], [], [one.clone()],
            amsgrad=False, lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8,
            maximize=False,
        )  # fmt: skip
    except (AttributeError, RuntimeError, NotImplementedError, TypeError):
        return False
    return True


def train(
    model: torch.nn.Module,
    data: TrainData,
    config: TrainConfig,
    device: torch.device,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Fit ``model`` in place on ``data``; leaves it holding the best validation weights."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(training_threads(config))
    try:
        return _train(model, data, config, device, on_epoch)
    finally:
        torch.set_num_threads(threads)


#: Bytes (float32 values and int32 columns) a mixed reconstruction target may take when built
#: once for every row, as an upper bound; above it each batch builds its rows again (the whole
#: matrix would hold about each document's neighbourhood vocabulary: 20NG, 50 neighbours, 1,290
#: words per row, 106 MB for 10k documents).
MIXED_TARGET_BUDGET = 512 * 2**20


def mixed_target(
    target: sp.csr_matrix, mix: sp.csr_matrix | None
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """``(mix @ target, None)`` when it fits ``MIXED_TARGET_BUDGET``, else ``(target, mix)``.

    Built once, the mixed target saves each epoch the same sparse product done batch by batch
    (reuters-vdsh, 50 neighbours: 0.3 s once against 0.6 s every epoch).
    """
    if mix is None:
        return target, None
    row_nnz = np.diff(target.indptr).astype(np.float64)
    bound = float(((mix != 0) @ row_nnz).sum())  # ≥ the product's non-zeros
    if bound * 8 > MIXED_TARGET_BUDGET:
        return target, mix
    return sp.csr_matrix(mix @ target), None


def _train(model, data: TrainData, config: TrainConfig, device, on_epoch) -> TrainResult:
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model.to(device).train()
    optimizer = make_adam(model, config.lr, config.encoder_lr)
    n = data.X.shape[0]
    batch = max(1, min(config.batch_size, n))
    min_epochs = max(config.min_epochs, math.ceil(config.min_steps / math.ceil(n / batch)))

    # What to watch: precision if labelled validation exists, else loss, else nothing.
    has_val = data.X_val is not None and data.X_val.shape[0] > 0
    watch = "none"
    if has_val and data.Y is not None and data.Y_val is not None:
        watch = "precision"
        if data.X_val.shape[0] > config.val_queries:
            pick = np.sort(
                np.random.default_rng(config.seed).choice(
                    data.X_val.shape[0], config.val_queries, replace=False
                )
            )
            data = copy.copy(data)
            data.X_val, data.Y_val = data.X_val[pick], data.Y_val[pick]
            data.target_val = data.target_val[pick] if data.target_val is not None else None
    elif has_val and data.target_val is not None:
        watch = "loss"
    scorer = ValidationScorer(data) if watch == "precision" else None

    target, target_mix = mixed_target(data.target, data.target_mix)
    labels_t = None
    if data.Y_fit is not None:
        labels_t = torch.from_numpy(np.asarray(data.Y_fit, dtype=np.float32))
    # Codes of a fixed subsample of training rows tell whether an epoch's codes collapsed; a
    # collapsed epoch is kept only as a fallback (``fallback``) when no epoch was healthy.
    check = np.arange(n)
    if n > COLLAPSE_SAMPLE:
        check = np.sort(rng.choice(n, COLLAPSE_SAMPLE, replace=False))
    x_check = data.X[check]
    best_score, best_epoch, best_state = -math.inf, 0, None
    fallback: tuple[float, int, dict] | None = None
    history: list[dict] = []
    epoch = 0
    for epoch in range(1, config.max_epochs + 1):
        kl_w = config.kl_weight
        if config.kl_anneal_epochs > 0:
            kl_w *= min(1.0, epoch / config.kl_anneal_epochs)
        order = rng.permutation(n)
        sums = {"recon": 0.0, "kl": 0.0, "ce": 0.0, "pair": 0.0}
        for i in range(0, n, batch):
            rows = np.sort(order[i : i + batch])
            x = input_rows(model, data.X, rows, device)
            if target_mix is not None:  # too large to build once: built per batch
                t = dense_rows(sp.csr_matrix(target_mix[rows] @ target), slice(None), device)
            else:
                t = dense_rows(target, rows, device)
            y = labels_t[rows].to(device) if labels_t is not None else None
            out = model(x, t, y)
            loss = out["recon"] + kl_w * out["kl"] + config.alpha * out["ce"]
            if config.pair_weight > 0 and data.neighbors is not None:
                pair = pair_loss(model, data, rows, out["h"], rng, device, config)
                loss = loss + config.pair_weight * pair
                sums["pair"] += pair.item() * len(rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for key in ("recon", "kl", "ce"):
                sums[key] += out[key].item() * len(rows)
        info = {key: value / n for key, value in sums.items()}

        if watch == "precision":
            score = scorer(model, data, device)
            info["val_precision"] = score
        elif watch == "loss":
            score = -validation_loss(model, data, device)
            info["val_loss"] = -score
        else:
            score = float(epoch)  # no validation: the last epoch is the best
        if score > best_score:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            # VDSH thresholds every bit at its training median: balanced bits, no collapse.
            if not hasattr(model, "fit_thresholds") and codes_collapsed(
                encode(model, x_check, device)
            ):
                info["collapsed"] = True
                if fallback is None or score > fallback[0]:
                    fallback = (score, epoch, state)
            else:
                best_score, best_epoch, best_state = score, epoch, state
        info["seconds"] = time.perf_counter() - start
        info["best_epoch"] = best_epoch
        history.append(info)
        if on_epoch is not None:
            on_epoch(epoch, config.max_epochs, info)
        # Neither patience nor the time budget stops training before min_epochs (and min_steps)
        # or while no epoch gave healthy codes: at 8 bits the codes collapse for the first ~10
        # epochs, and the random start can out-score them (measured: best epoch 1). Patience
        # counts from min_epochs at the earliest.
        if epoch < min_epochs or best_state is None:
            continue
        if epoch - max(best_epoch, min_epochs) >= config.patience:
            break
        if config.time_budget is not None and info["seconds"] >= config.time_budget:
            break

    if best_state is None and fallback is not None:  # every epoch collapsed: the best of them
        best_score, best_epoch, best_state = fallback
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        epochs=epoch,
        best_epoch=best_epoch,
        best_score=best_score,
        seconds=time.perf_counter() - start,
        history=history,
    )


def pair_loss(
    model, data: TrainData, rows: np.ndarray, h: torch.Tensor, rng, device, config: TrainConfig
) -> torch.Tensor:
    """Tie each row's bit probabilities to those of one random TF-IDF neighbour.

    "pull": mean squared distance. "nce": InfoNCE, the neighbour must be the most similar code
    among the batch's neighbours (the others act as negatives), similarity = cosine of 2h − 1.
    """
    nbrs = pair_partners(data.neighbors, rows, rng)
    h_nbr = model.probabilities(input_rows(model, data.X, nbrs, device))
    if config.pair_mode == "pull":
        return ((h - h_nbr) ** 2).sum(dim=1).mean()
    a, b = 2 * h - 1, 2 * h_nbr - 1
    logits = (a @ b.T) / (a.shape[1] * config.temperature)
    target = torch.arange(len(rows), device=device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pair_partners(neighbors: np.ndarray, rows: np.ndarray, rng) -> np.ndarray:
    """One random neighbour of each of ``rows``: uniform over the row's real neighbours, where
    ``knn_graph`` padded it with its own index; a document with none is its own partner."""
    partners = neighbors[rows, rng.integers(0, neighbors.shape[1], size=len(rows))]
    for i in np.flatnonzero(partners == rows):  # (rare: drawn only where there is padding)
        others = neighbors[rows[i]][neighbors[rows[i]] != rows[i]]
        if len(others):
            partners[i] = others[rng.integers(0, len(others))]
    return partners
