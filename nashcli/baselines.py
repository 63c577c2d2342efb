"""The paper's baselines, side by side with NASH.

- LSH: random hyperplanes on TF-IDF (SimHash, Charikar 2002): bit j = 1[x · w_j > 0], w_j ~ N(0, I).
- VDSH-style two-stage hashing (Chaidaroon & Fang 2017): a continuous Gaussian VAE with the same
  linear softmax decoder, then each latent dimension is thresholded at its median over the
  training documents (so every bit splits the database in half).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn as nn
import torch.nn.functional as F

from nashcli.errors import NashError
from nashcli.features import whole_number
from nashcli.model import SparseRows, label_head, label_loss, make_trunk, project


class LSH:
    """Sign random projections of TF-IDF, seeded (same seed, same hyperplanes)."""

    def __init__(self, n_bits: int = 64, seed: int = 0) -> None:
        self.n_bits = n_bits
        self.seed = seed
        self.planes_: np.ndarray | None = None

    def get_params(self, deep: bool = True) -> dict:
        """scikit-learn's parameter protocol (``sklearn.base.clone`` works)."""
        return {"n_bits": self.n_bits, "seed": self.seed}

    def set_params(self, **params) -> LSH:
        for name, value in params.items():
            if name not in ("n_bits", "seed"):
                raise NashError(f"unknown LSH setting {name!r}: n_bits or seed")
            setattr(self, name, value)
        return self

    def fit(self, x: sp.spmatrix | np.ndarray) -> LSH:
        n_bits = self.n_bits
        if not whole_number(n_bits) or n_bits < 1:
            raise NashError(
                f"the number of bits must be a whole number of at least 1, not {n_bits!r}"
            )
        rng = np.random.default_rng(self.seed)
        self.planes_ = rng.standard_normal((x.shape[1], int(n_bits))).astype(np.float32)
        return self

    def transform(self, x: sp.spmatrix | np.ndarray) -> np.ndarray:
        """bool (n, n_bits) codes."""
        if self.planes_ is None:
            raise NashError("LSH is not fitted yet: call fit first")
        if x.ndim != 2 or x.shape[1] != self.planes_.shape[0]:
            words = self.planes_.shape[0]
            raise NashError(f"expected rows of {words} features (as fitted), got shape {x.shape}")
        return np.asarray(x @ self.planes_) > 0

    def fit_transform(self, x: sp.spmatrix | np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)


@dataclass
class VdshConfig:
    vocab_size: int
    n_bits: int
    encoder: str = "linear"  # "linear" or "mlp" (2×hidden ReLU)
    hidden: int = 500
    n_labels: int = 0
    multilabel: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _rename_legacy_trunk(module, state_dict, prefix, *args) -> None:
    """Map the MLP trunk's old layer names (trunk.0, trunk.2) to the shared ones (1, 3)."""
    for old, new in (("trunk.2.", "trunk.3."), ("trunk.0.", "trunk.1.")):
        for key in [k for k in state_dict if k.startswith(prefix + old)]:
            state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


class VDSH(nn.Module):
    """Gaussian VAE over TF-IDF with a linear softmax decoder; codes = 1[μ(x) > training median]."""

    def __init__(self, config: VdshConfig) -> None:
        super().__init__()
        self.config = config
        v, b, hid = config.vocab_size, config.n_bits, config.hidden
        self.trunk, width = make_trunk(config.encoder, v, hid)
        # Weights saved before the trunk was shared named its layers trunk.0/trunk.2.
        self.register_load_state_dict_pre_hook(_rename_legacy_trunk)
        self.mu = nn.Linear(width, b)
        self.log_var = nn.Linear(width, b)
        self.decoder = nn.Linear(b, v)
        self.classifier = label_head(b, config.n_labels, hid)
        self.register_buffer("median", torch.zeros(b))

    @property
    def accepts_sparse(self) -> bool:
        """Whether ``x`` may be ``SparseRows`` (a linear encoder)."""
        return self.config.encoder == "linear"

    def _hidden(self, x: torch.Tensor | SparseRows) -> torch.Tensor | SparseRows:
        return x if isinstance(x, SparseRows) else self.trunk(x)

    def means(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        return project(self.mu, self._hidden(x))

    @torch.no_grad()
    def codes(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        return self.means(x) > self.median

    def linear_encoder(self):
        """(weight (bits, vocab), bias (bits,), threshold (bits,)) numpy arrays when the encoder
        is linear, else None: codes = 1[x·Wᵀ + b > median], so codes of a sparse corpus need no
        dense copy (``training.encode``)."""
        if self.config.encoder != "linear":
            return None
        return (
            self.mu.weight.detach().cpu().numpy(),
            self.mu.bias.detach().cpu().numpy(),
            self.median.detach().cpu().numpy(),
        )

    @torch.no_grad()
    def fit_thresholds(self, x: sp.csr_matrix, device: torch.device, chunk: int = 2048) -> None:
        """Set each bit's threshold to the median of its mean over the documents ``x``."""
        linear = self.linear_encoder()
        from nashcli.training import dense_rows, linear_scores

        if linear is not None:  # the same sparse product as the codes: the median row is not above
            weight, bias, _ = linear
            means = torch.from_numpy(linear_scores(x, weight, bias))
        else:
            was_training = self.training
            self.eval()
            means = torch.cat(
                [
                    self.means(dense_rows(x, slice(i, i + chunk), device)).cpu()
                    for i in range(0, x.shape[0], chunk)
                ]
            )
            self.train(was_training)
        self.median.copy_(means.median(dim=0).values.to(self.median.device))

    def forward(self, x, target, labels=None) -> dict[str, torch.Tensor]:
        hidden = self._hidden(x)
        mu, log_var = project(self.mu, hidden), project(self.log_var, hidden).clamp(-10, 10)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu) if self.training else mu
        kl = 0.5 * (mu**2 + log_var.exp() - 1 - log_var).sum(dim=1)
        recon = -(target * F.log_softmax(self.decoder(z), dim=1)).sum(dim=1)
        ce = label_loss(self.classifier, z, labels, self.config.multilabel)
        return {"recon": recon.mean(), "kl": kl.mean(), "ce": ce, "z": z, "h": torch.sigmoid(mu)}
