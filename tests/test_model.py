"""The NASH model: shapes, the straight-through gradient, stochastic vs deterministic codes, KL."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nashcli.model import NASH, NashConfig, bernoulli_kl, binarize, gaussian_noise_kl


def make(noise="none", encoder="linear", **kw) -> NASH:
    torch.manual_seed(0)
    return NASH(NashConfig(vocab_size=30, n_bits=8, encoder=encoder, noise=noise, hidden=16, **kw))


def batch(n=6):
    g = torch.Generator().manual_seed(1)
    counts = torch.poisson(torch.full((n, 30), 0.5), generator=g)
    x = counts / counts.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return x, counts


@pytest.mark.parametrize("noise", ["none", "fixed", "learned"])
@pytest.mark.parametrize("encoder", ["linear", "mlp"])
def test_forward_shapes_and_gradient_reaches_encoder(noise, encoder):
    model = make(noise, encoder)
    x, counts = batch()
    out = model(x, counts)
    assert out["z"].shape == (6, 8)
    assert out["recon"].ndim == 0 and out["recon"] > 0
    assert out["kl"] >= 0
    (out["recon"] + out["kl"]).backward()
    grad = model.encoder.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # through the binary code (STE)
    assert model.decoder.weight.grad.abs().sum() > 0


def test_straight_through_passes_gradient_unchanged():
    h = torch.tensor([[0.2, 0.7, 0.9]], requires_grad=True)
    z = binarize(h, stochastic=False)
    assert z.tolist() == [[0.0, 1.0, 1.0]]
    (z * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert h.grad.tolist() == [[1.0, 2.0, 3.0]]


def test_codes_stochastic_in_training_deterministic_at_inference():
    model = make()
    with torch.no_grad():
        model.encoder.weight.zero_()
        model.encoder.bias.fill_(0.3)  # h = sigmoid(0.3) ≈ 0.574 for every bit
    x, counts = batch(64)
    model.train()
    z1, z2 = model(x, counts)["z"], model(x, counts)["z"]
    assert not torch.equal(z1, z2)  # sampled z = 1[h > u]
    frac = z1.mean().item()
    assert 0.45 < frac < 0.7  # about h of them are on
    model.eval()
    e1, e2 = model(x, counts)["z"], model(x, counts)["z"]
    assert torch.equal(e1, e2) and e1.min() == 1  # 1[h > 0.5]
    assert model.codes(x).dtype == torch.bool and model.codes(x).all()


def test_deterministic_binarization_trains_on_the_inference_codes():
    model = make(binarization="deterministic")
    with torch.no_grad():
        model.encoder.weight.zero_()
        model.encoder.bias.fill_(0.3)  # h ≈ 0.574 everywhere: every bit on, every time
    x, counts = batch(64)
    model.train()
    z = model(x, counts)["z"]
    assert z.min() == 1 and torch.equal(z, model(x, counts)["z"])
    model(x, counts)["recon"].backward()
    assert model.encoder.bias.grad.abs().sum() > 0  # still straight through
    with pytest.raises(ValueError, match="binarization"):
        make(binarization="sometimes")


def test_bernoulli_kl_matches_direct_sum_over_codes():
    h = torch.tensor([[0.1, 0.8, 0.55]])
    for prior in (0.5, 0.3):
        direct = 0.0
        for bits in itertools.product([0, 1], repeat=3):
            q = math.prod(p if b else 1 - p for p, b in zip(h[0].tolist(), bits, strict=True))
            p = math.prod(prior if b else 1 - prior for b in bits)
            direct += q * math.log(q / p)
        assert bernoulli_kl(h, prior).item() == pytest.approx(direct, rel=1e-5)


def test_gaussian_noise_kl_monte_carlo():
    torch.manual_seed(0)
    log_sigma = torch.tensor([[math.log(0.3)]])
    sigma0 = 0.1
    eps = torch.randn(400_000) * 0.3
    log_q = -0.5 * (eps / 0.3) ** 2 - math.log(0.3)
    log_p = -0.5 * (eps / sigma0) ** 2 - math.log(sigma0)
    assert gaussian_noise_kl(log_sigma, sigma0).item() == pytest.approx(
        (log_q - log_p).mean().item(), rel=0.02
    )


def test_noise_only_in_training():
    model = make("fixed", sigma=5.0)
    x, counts = batch()
    model.eval()
    assert model(x, counts)["recon"].item() == model(x, counts)["recon"].item()
    model.train()
    torch.manual_seed(1)
    a = model(x, counts)["recon"].item()
    torch.manual_seed(2)
    b = model(x, counts)["recon"].item()
    assert a != b


def test_decoder_starts_from_the_background_word_distribution():
    model = make()
    x, counts = batch(200)
    model.start_from_background(counts.sum(dim=0).numpy())
    # With E = 0 the decoder ignores z and predicts the smoothed corpus frequencies, which fit
    # the documents' words far better than the uniform distribution a zero bias gives.
    with torch.no_grad():
        model.decoder.weight.zero_()
    model.eval()
    frequencies = (counts.sum(dim=0) + 1) / (counts.sum() + 30)
    predicted = torch.softmax(model.decoder(torch.zeros(1, 8)), dim=1)[0]
    assert torch.allclose(predicted, frequencies, atol=1e-6)
    background = model(x, counts)["recon"].item()
    model.decoder.bias.data.zero_()
    assert background < model(x, counts)["recon"].item()
    with pytest.raises(ValueError, match="29 word counts for a 30-word decoder"):
        model.start_from_background(counts.sum(dim=0).numpy()[:29])


def test_supervised_head_single_and_multi_label():
    x, counts = batch()
    labels = torch.zeros(6, 3)
    labels[:, 1] = 1
    for multilabel in (False, True):
        model = make(n_labels=3, multilabel=multilabel)
        out = model(x, counts, labels)
        assert out["ce"] > 0
        out["ce"].backward()
        assert model.encoder.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["linear", "mlp"])
def test_nash_and_vdsh_share_the_trunk_and_round_trip_their_weights(encoder):
    from nashcli.baselines import VDSH, VdshConfig

    nash = make("learned", encoder)
    vdsh = VDSH(VdshConfig(vocab_size=30, n_bits=8, encoder=encoder, hidden=16))
    trunk_keys = lambda m: sorted(k for k in m.state_dict() if k.startswith("trunk."))  # noqa: E731
    assert trunk_keys(nash) == trunk_keys(vdsh)
    if encoder == "mlp":  # the names saved models carry
        names = ["trunk.1.bias", "trunk.1.weight", "trunk.3.bias", "trunk.3.weight"]
        assert trunk_keys(nash) == names
    x, _ = batch()
    for model, fresh in (
        (nash, make("learned", encoder)),
        (vdsh, VDSH(VdshConfig(vocab_size=30, n_bits=8, encoder=encoder, hidden=16))),
    ):
        torch.nn.init.normal_(model.decoder.weight)  # differ from the fresh copy's weights
        model.eval()
        state = {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}
        fresh.load_state_dict(state)
        fresh.eval()
        assert torch.equal(fresh.codes(x), model.codes(x))
        assert torch.equal(fresh.decoder.weight, model.decoder.weight)


@pytest.mark.parametrize("encoder", ["linear", "mlp"])
def test_vdsh_codes_of_sparse_rows_split_every_bit_at_its_median(encoder):
    import scipy.sparse as sp

    from nashcli.baselines import VDSH, VdshConfig
    from nashcli.training import encode

    torch.manual_seed(0)
    model = VDSH(VdshConfig(vocab_size=30, n_bits=8, encoder=encoder, hidden=16)).eval()
    x, _ = batch(41)
    rows = sp.csr_matrix(x.numpy())
    model.fit_thresholds(rows, torch.device("cpu"))
    with torch.no_grad():
        assert torch.allclose(model.median, model.means(x).median(dim=0).values, atol=1e-6)
        dense_codes, near_median = model.codes(x).numpy(), (model.means(x) - model.median).abs()
    codes = encode(model, rows, torch.device("cpu"))  # sparse path for the linear encoder
    assert codes.shape == (41, 8) and codes.dtype == bool
    assert (codes.sum(axis=0) == 20).all()  # 41 distinct means: 20 above the median, 21 not
    differ = codes != dense_codes  # only where float rounding decides (the median row itself)
    assert (near_median.numpy()[differ] < 1e-5).all()


def test_vdsh_loads_weights_saved_under_the_old_trunk_names():
    from nashcli.baselines import VDSH, VdshConfig

    config = VdshConfig(vocab_size=30, n_bits=8, encoder="mlp", hidden=16)
    model = VDSH(config)
    old = {}
    for key, value in model.state_dict().items():  # how VDSH named its MLP layers before
        old[key.replace("trunk.1.", "trunk.0.").replace("trunk.3.", "trunk.2.")] = value
    assert "trunk.0.weight" in old and "trunk.1.weight" not in old
    fresh = VDSH(config)
    fresh.load_state_dict(old)
    assert torch.equal(fresh.trunk[1].weight, model.trunk[1].weight)
    assert torch.equal(fresh.trunk[3].bias, model.trunk[3].bias)


@pytest.mark.parametrize("kind", ["nash", "nash-dn", "vdsh"])
def test_sparse_rows_give_the_dense_loss_and_gradients(kind):
    """A linear encoder fed ``SparseRows`` computes what it computes from the dense rows."""
    import numpy as np
    import scipy.sparse as sp

    from nashcli.baselines import VDSH, VdshConfig
    from nashcli.training import dense_rows, sparse_rows

    x, counts = batch(9)
    x[3] = 0.0  # a document with no known word: an empty row
    csr = sp.csr_matrix(x.numpy())
    rows = np.array([0, 3, 5, 8])
    grads = []
    for rows_of in (dense_rows, sparse_rows):
        if kind == "vdsh":
            torch.manual_seed(0)
            model = VDSH(VdshConfig(vocab_size=30, n_bits=8))
        else:
            model = make("learned" if kind == "nash-dn" else "none")
        model.eval()  # deterministic codes and no noise: the same loss exactly
        out = model(rows_of(csr, rows, torch.device("cpu")), counts[rows])
        (out["recon"] + out["kl"]).backward()
        first = model.mu if kind == "vdsh" else model.encoder
        grads.append((out["recon"].item(), out["kl"].item(), first.weight.grad.clone()))
    (dense_recon, dense_kl, dense_grad), (recon, kl, grad) = grads
    assert recon == pytest.approx(dense_recon, rel=1e-5)
    assert kl == pytest.approx(dense_kl, rel=1e-5)
    assert torch.allclose(grad, dense_grad, atol=1e-5)
    assert dense_grad.abs().sum() > 0


def test_sparse_input_word_dropout_drops_words_in_training_only():
    from nashcli.model import SparseRows, sparse_dropout

    rows = SparseRows(
        indices=torch.arange(1000), offsets=torch.tensor([0, 500]), values=torch.ones(1000)
    )
    torch.manual_seed(0)
    dropped = sparse_dropout(rows, 0.5, training=True).values
    assert 0.4 < (dropped == 0).float().mean() < 0.6
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1 / (1 − p)
    assert sparse_dropout(rows, 0.5, training=False) is rows


def test_sparse_rows_with_no_words_at_the_end_or_at_all():
    """Documents with no known word (empty rows) anywhere in a batch get the bias, as dense."""
    import numpy as np
    import scipy.sparse as sp

    from nashcli.model import project
    from nashcli.training import dense_rows, sparse_rows

    model = make()
    x = sp.csr_matrix(np.array([[1.0] + [0.0] * 29, [0.0] * 30, [0.0] * 30], dtype=np.float32))
    cpu = torch.device("cpu")
    for rows in (np.array([0, 1, 2]), np.array([1, 2])):
        sparse = project(model.encoder, sparse_rows(x, rows, cpu))
        assert torch.allclose(sparse, model.encoder(dense_rows(x, rows, cpu)))


@pytest.mark.parametrize("bits", [8, 32, 128])
def test_both_nash_dn_heads_from_one_pass_are_the_separate_heads_to_the_last_bit(bits, monkeypatch):
    """NASH-DN reads its sparse rows once for g(x) and log σ(x): the outputs and the gradients
    must be exactly those of one pass per head, or every recorded result would move."""
    import numpy as np

    import nashcli.model
    from nashcli.model import SparseRows, project, project_heads

    monkeypatch.setattr(nashcli.model, "STACKED_HEADS_WIDTH", 2 * bits)  # one pass at any width

    rng = np.random.default_rng(bits)
    lengths = rng.integers(0, 120, size=40)  # some documents with no known word
    indices = np.concatenate([rng.choice(5000, n, replace=False) for n in lengths])
    rows = SparseRows(
        indices=torch.from_numpy(indices).long(),
        offsets=torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]])).long(),
        values=torch.from_numpy(rng.random(len(indices)).astype(np.float32)),
    )
    torch.manual_seed(bits)
    heads = (torch.nn.Linear(5000, bits), torch.nn.Linear(5000, bits))
    upstream = (torch.randn(40, bits), torch.randn(40, bits))
    results = []
    for together in (False, True):
        for head in heads:
            head.zero_grad()
        outs = project_heads(heads, rows) if together else [project(h, rows) for h in heads]
        sum((out * g).sum() for out, g in zip(outs, upstream, strict=True)).backward()
        results.append([*outs, *(p.grad.clone() for h in heads for p in h.parameters())])
    for apart, together in zip(*results, strict=True):
        assert torch.equal(apart, together)
