"""Every hashing method by name, and one call that trains it and returns codes.

``fit_encode(method, bits, problem)`` is what the evaluation harness calls; ``fit_model`` and
``encode_rows`` are what the pipeline uses to keep a trained model and encode new documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from nashcli.errors import NashError
from nashcli.features import Problem


@dataclass(frozen=True)
class MethodSpec:
    """How to build and train one named method."""

    kind: str  # "nash", "vdsh", "lsh"
    noise: str = "none"  # NASH: "none", "fixed" (NASH-N), "learned" (NASH-DN)
    sigma: float = 0.1
    encoder: str = "linear"
    description: str = ""


SPECS: dict[str, MethodSpec] = {
    "nash": MethodSpec("nash", description="NASH: Bernoulli VAE, straight-through codes"),
    "nash-n": MethodSpec("nash", noise="fixed", description="NASH-N: fixed Gaussian noise on z"),
    "nash-dn": MethodSpec(
        "nash", noise="learned", description="NASH-DN: per-document noise σ from the encoder"
    ),
    "nash-mlp": MethodSpec(
        "nash", noise="learned", encoder="mlp", description="NASH-DN with the paper's 2×500 MLP"
    ),
    "lsh": MethodSpec("lsh", description="random hyperplanes on TF-IDF"),
    "vdsh": MethodSpec("vdsh", description="Gaussian VAE, then median thresholding per bit"),
}

METHODS: tuple[str, ...] = ("nash", "nash-n", "nash-dn", "lsh", "vdsh", "tfidf", "nash-mlp")
DEFAULT_METHOD: str = "nash-dn"

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

    from nashcli.training import TrainConfig, TrainData, train

    dev = resolve_device(device)
    torch.manual_seed(seed)
    n_labels = problem.Y_train.shape[1] if (supervised and problem.Y_train is not None) else 0
    multilabel = problem.multilabel
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
                sigma=spec.sigma,
                n_labels=n_labels,
                multilabel=multilabel,
            )
        )
    config = replace(TrainConfig(seed=seed), **train_kw)
    data = TrainData(
        X=problem.X_train,
        target=problem.C_train,
        Y=problem.Y_train,
        X_val=problem.X_val,
        target_val=problem.C_val,
        Y_val=problem.Y_val,
    )
    result = train(model, data, config, dev, on_epoch=on_epoch)
    if hasattr(model, "fit_thresholds"):
        model.fit_thresholds(problem.X_train, dev)
    return model, result


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
