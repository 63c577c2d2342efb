"""NASH: the variational autoencoder with a binary latent code (Shen et al., ACL 2018).

Read top to bottom:

1. encoder   q(z|x) = Bernoulli(σ(g(x)))   g = linear map or the paper's 2×500 ReLU MLP of TF-IDF x
2. binarize  z = 1[σ(g) > u], u ~ U(0,1) while training (stochastic; or deterministic, as at
             inference); z = 1[σ(g) > 0.5] at inference
             gradients pass straight through: z = h + (z_hard − h).detach()
3. noise     NASH-N adds N(0, σ²) to z before decoding; NASH-DN infers σ per document (training)
4. decoder   p(w|z) = softmax(zE + b) over the vocabulary; reconstruction = log-likelihood of the
             document's words, weighted by their counts (or any non-negative word-weight target);
             b starts at the corpus's log word frequencies (``start_from_background``)
5. prior     p(z) = Bernoulli(γ), γ = 0.5; KL(q‖p) in closed form
6. labels    (supervised) a 2-layer MLP from z to the labels, loss = −ELBO + α·CE

The whole model is one ``nn.Module`` whose settings are a JSON-able ``NashConfig``, so a saved model
is its config plus a ``state_dict`` of plain arrays.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-7


@dataclass
class NashConfig:
    vocab_size: int
    n_bits: int
    encoder: str = "linear"  # "linear" (calibration: better and 5× faster) or "mlp" (paper, 2×500)
    hidden: int = 500  # width of the MLP encoder's two layers and of the label classifier
    noise: str = "none"  # "none" (NASH), "fixed" (NASH-N), "learned" (NASH-DN)
    # Codes while training: "stochastic" z = 1[h > u], u ~ U(0,1) (the paper's better choice) or
    # "deterministic" z = 1[h > 0.5], as at inference.
    binarization: str = "stochastic"
    sigma: float = 0.1  # NASH-N's noise σ; NASH-DN's prior σ₀ (its KL keeps σ(x) from vanishing)
    prior: float = 0.5  # γ of the Bernoulli prior
    dropout: float = 0.0  # on the encoder's input words (training only): a regulariser
    n_labels: int = 0  # > 0: supervised, with a classifier on z
    label_hidden: int = 500  # hidden width of the classifier (the paper's 2-layer MLP); 0: linear
    multilabel: bool = False  # sigmoid + BCE instead of softmax + CE

    def to_dict(self) -> dict:
        return asdict(self)


def bernoulli_kl(h: torch.Tensor, prior: float) -> torch.Tensor:
    """KL(Bernoulli(h) ‖ Bernoulli(prior)) summed over bits, one value per row."""
    h = h.clamp(EPS, 1 - EPS)
    kl = h * (torch.log(h) - math.log(prior)) + (1 - h) * (torch.log(1 - h) - math.log(1 - prior))
    return kl.sum(dim=1)


def gaussian_noise_kl(log_sigma: torch.Tensor, sigma0: float) -> torch.Tensor:
    """KL(N(z, σ²) ‖ N(z, σ₀²)) summed over bits: what NASH-DN pays for choosing its own σ."""
    ratio = torch.exp(2 * log_sigma) / sigma0**2
    return 0.5 * (ratio - 1 - torch.log(ratio)).sum(dim=1)


def binarize(h: torch.Tensor, stochastic: bool) -> torch.Tensor:
    """0/1 codes with the straight-through gradient (the backward pass treats dz/dh as 1)."""
    threshold = torch.rand_like(h) if stochastic else torch.full_like(h, 0.5)
    z_hard = (h > threshold).to(h.dtype)
    return h + (z_hard - h).detach()


def label_head(n_bits: int, n_labels: int, hidden: int) -> nn.Module | None:
    """The supervised classifier on z: the paper's 2-layer MLP (``hidden`` wide), a linear map
    when ``hidden`` is 0, or None without labels."""
    if n_labels <= 0:
        return None
    if hidden <= 0:
        return nn.Linear(n_bits, n_labels)
    return nn.Sequential(nn.Linear(n_bits, hidden), nn.ReLU(), nn.Linear(hidden, n_labels))


def label_loss(
    classifier: nn.Module | None, z: torch.Tensor, labels: torch.Tensor | None, multilabel: bool
) -> torch.Tensor:
    """The supervised term: mean cross-entropy of ``classifier(z)`` against 0/1 ``labels``
    (softmax over the labels, or a sigmoid per label when ``multilabel``); 0 without either."""
    if classifier is None or labels is None:
        return torch.zeros((), device=z.device)
    logits = classifier(z)
    if multilabel:
        bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        return bce.sum(dim=1).mean()  # per document, like the softmax CE
    return F.cross_entropy(logits, labels.float().argmax(dim=1))


@dataclass(frozen=True)
class SparseRows:
    """A minibatch of sparse TF-IDF rows in CSR parts, for a linear encoder.

    A linear map then multiplies only the non-zeros (``project``), forward and backward: the
    dense product over 10k words was two thirds of a Reuters training step's arithmetic.
    """

    indices: torch.Tensor  # int64 word of every non-zero, row after row
    offsets: torch.Tensor  # int64 (n,): where each row's non-zeros start in ``indices``
    values: torch.Tensor  # float32 weight of every non-zero


def project(layer: nn.Linear, x: torch.Tensor | SparseRows) -> torch.Tensor:
    """``layer(x)`` for dense rows or ``SparseRows`` (a weighted sum of the words' columns)."""
    if isinstance(x, SparseRows):
        summed = F.embedding_bag(
            x.indices, layer.weight.t(), x.offsets, mode="sum", per_sample_weights=x.values
        )
        return summed + layer.bias
    return layer(x)


#: Widest stack of heads :func:`project_heads` reads in one pass. The pass works on the weights'
#: transposed views, whose copies grow with the width: fwd + bwd of NASH-DN's two heads over 64
#: rows, 10k words, against one pass per head: 8 bits 0.79 / 1.24 ms, 16 bits 1.46 / 1.53 ms,
#: 32 bits 3.0 / 2.1 ms, 128 bits 14.6 / 8.1 ms.
STACKED_HEADS_WIDTH = 32


def project_heads(
    layers: tuple[nn.Linear, ...], x: torch.Tensor | SparseRows
) -> list[torch.Tensor]:
    """``[project(layer, x) for layer in layers]``; sparse rows read once for all of them where
    the heads are narrow (:data:`STACKED_HEADS_WIDTH`).

    One ``embedding_bag`` over the layers' stacked columns makes each column's sums exactly as
    one per layer does (forward and backward, checked bit for bit), at less cost for NASH-DN's
    two heads of short codes: the backward's sort of the words and its scatter are done once.
    """
    width = sum(layer.out_features for layer in layers)
    if not isinstance(x, SparseRows) or len(layers) == 1 or width > STACKED_HEADS_WIDTH:
        return [project(layer, x) for layer in layers]
    weight = torch.cat([layer.weight for layer in layers]).t()
    summed = F.embedding_bag(x.indices, weight, x.offsets, mode="sum", per_sample_weights=x.values)
    parts = summed.split([layer.out_features for layer in layers], dim=1)
    return [part + layer.bias for part, layer in zip(parts, layers, strict=True)]


def sparse_dropout(x: SparseRows, p: float, training: bool) -> SparseRows:
    """Input-word dropout on sparse rows: the same as ``nn.Dropout`` on their dense form."""
    if not training or p <= 0:
        return x
    return replace(x, values=F.dropout(x.values, p, training=True))


def make_trunk(encoder: str, vocab_size: int, hidden: int, dropout: float = 0.0):
    """The encoder's trunk and its output width: shared by NASH and the VDSH baseline.

    "linear": nothing but (optional) input-word dropout, so g is one linear map of TF-IDF x.
    "mlp": the paper's two ``hidden``-wide ReLU layers. The layer positions (``trunk.1``,
    ``trunk.3``) are part of the saved weights' names: keep them when editing.
    """
    if encoder == "linear":
        return (nn.Dropout(dropout) if dropout > 0 else nn.Identity()), vocab_size
    if encoder == "mlp":
        trunk = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(vocab_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        return trunk, hidden
    raise ValueError(f"unknown encoder {encoder!r}")


class NASH(nn.Module):
    """Encoder, binary latent, noisy channel, linear softmax decoder, optional label head."""

    def __init__(self, config: NashConfig) -> None:
        super().__init__()
        if config.binarization not in ("stochastic", "deterministic"):
            raise ValueError(f"unknown binarization {config.binarization!r}")
        self.config = config
        v, b = config.vocab_size, config.n_bits
        self.trunk, width = make_trunk(config.encoder, v, config.hidden, config.dropout)
        self.encoder = nn.Linear(width, b)
        # NASH-DN: a second head of the encoder gives log σ(x), one per bit.
        self.log_sigma = nn.Linear(width, b) if config.noise == "learned" else None
        if self.log_sigma is not None:
            nn.init.zeros_(self.log_sigma.weight)
            nn.init.constant_(self.log_sigma.bias, math.log(config.sigma))
        self.decoder = nn.Linear(b, v)
        self.classifier = label_head(b, config.n_labels, config.label_hidden)

    def start_from_background(self, word_counts: np.ndarray) -> None:
        """Start the decoder's bias at the corpus's log word frequencies (add-one smoothed).

        softmax(zE + b) then begins as the background distribution every document shares, so the
        bits learn from the first step how a document departs from it rather than first how
        often each word occurs (a topic model's usual start; the README's results give what it
        changed).
        """
        counts = np.asarray(word_counts, dtype=np.float64).ravel() + 1.0
        if counts.shape != self.decoder.bias.shape:
            vocab = self.config.vocab_size
            raise ValueError(f"{counts.size} word counts for a {vocab}-word decoder")
        with torch.no_grad():
            self.decoder.bias.copy_(torch.from_numpy(np.log(counts / counts.sum())))

    # 1. encoder ---------------------------------------------------------------------------------
    @property
    def accepts_sparse(self) -> bool:
        """Whether ``x`` may be ``SparseRows`` (a linear encoder: g is one map of the words)."""
        return self.config.encoder == "linear"

    def features(self, x: torch.Tensor | SparseRows) -> torch.Tensor | SparseRows:
        """The encoder's hidden representation of TF-IDF ``x`` (``SparseRows`` stay sparse)."""
        if isinstance(x, SparseRows):
            return sparse_dropout(x, self.config.dropout, self.training)
        return self.trunk(x)

    def probabilities(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        """h = σ(g(x)), the Bernoulli means of q(z|x)."""
        return torch.sigmoid(project(self.encoder, self.features(x)))

    def linear_encoder(self):
        """(weight (bits, vocab), bias (bits,), threshold (bits,)) numpy arrays when g is linear,
        else None.

        z = 1[σ(g) > 0.5] = 1[x·Wᵀ + b > 0], so codes of a sparse corpus need no dense copy.
        """
        if self.config.encoder != "linear":  # (dropout is the identity at inference)
            return None
        bias = self.encoder.bias.detach().cpu().numpy()
        return self.encoder.weight.detach().cpu().numpy(), bias, np.zeros_like(bias)

    @torch.no_grad()
    def scores(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        """g(x), the logits of h: the codes are their signs."""
        return project(self.encoder, self.features(x))

    @torch.no_grad()
    def codes(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        """Deterministic codes z = 1[h > 0.5] (inference), bool (n, n_bits)."""
        return self.scores(x) > 0  # σ(g) > 0.5 ⇔ g > 0, exact

    # 2–6. the loss ------------------------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor | SparseRows,
        target: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-batch mean loss terms for TF-IDF ``x`` and word-weight ``target`` (counts).

        Returns ``recon`` (−log p(words|z)), ``kl`` (Bernoulli KL, plus NASH-DN's noise KL),
        ``ce`` (label loss, 0 if unsupervised) and the codes ``z`` used (for extra terms).
        Training mode samples z and noise; eval mode uses deterministic codes and no noise.
        """
        hidden = self.features(x)
        heads = (self.encoder,) if self.log_sigma is None else (self.encoder, self.log_sigma)
        logits, *noise_head = project_heads(heads, hidden)
        h = torch.sigmoid(logits)
        z = binarize(h, stochastic=self.training and self.config.binarization == "stochastic")
        kl = bernoulli_kl(h, self.config.prior)

        z_in = z
        if self.training and self.config.noise == "fixed":
            z_in = z + self.config.sigma * torch.randn_like(z)
        elif self.config.noise == "learned":
            log_sigma = noise_head[0].clamp(-8.0, 2.0)
            kl = kl + gaussian_noise_kl(log_sigma, self.config.sigma)
            if self.training:
                z_in = z + torch.exp(log_sigma) * torch.randn_like(z)

        log_probs = F.log_softmax(self.decoder(z_in), dim=1)
        recon = -(target * log_probs).sum(dim=1)

        ce = label_loss(self.classifier, z, labels, self.config.multilabel)
        return {"recon": recon.mean(), "kl": kl.mean(), "ce": ce, "z": z, "h": h}
