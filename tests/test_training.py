"""The training loop and the methods registry on tiny made-up corpora."""

from __future__ import annotations

import numpy as np
import pytest

from nashcli import methods
from nashcli.errors import NashError
from nashcli.features import make_problem
from nashcli.metrics import precision_at_k

TOPICS = {
    "pets": [
        "cat",
        "dog",
        "kitten",
        "puppy",
        "leash",
        "collar",
        "vet",
        "fur",
        "bark",
        "meow",
        "pet",
        "food",
    ],
    "money": [
        "stock",
        "market",
        "shares",
        "bank",
        "interest",
        "rate",
        "bond",
        "trader",
        "profit",
        "loss",
        "dividend",
    ],
    "space": [
        "rocket",
        "orbit",
        "planet",
        "moon",
        "astronaut",
        "launch",
        "star",
        "galaxy",
        "telescope",
        "nasa",
    ],
}


def corpus(n_per_topic: int, seed: int):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for topic, words in TOPICS.items():
        for _ in range(n_per_topic):
            texts.append(" ".join(rng.choice(words, size=12)))
            labels.append([topic])
    return texts, labels


@pytest.fixture(scope="module")
def problem():
    tr, ytr = corpus(20, 0)
    va, yva = corpus(4, 1)
    te, yte = corpus(5, 2)
    return make_problem(tr, va, te, ytr, yva, yte)


@pytest.mark.parametrize("method", [m for m in methods.METHODS if m != "tfidf"])
def test_fit_encode_every_method(problem, method):
    train_bits, test_bits = methods.fit_encode(method, 8, problem, max_epochs=3, min_epochs=1)
    assert train_bits.shape == (60, 8) and test_bits.shape == (15, 8)
    assert train_bits.dtype == bool and test_bits.dtype == bool


def test_nash_learns_topics(problem):
    train_bits, test_bits = methods.fit_encode(
        "nash-dn", 16, problem, max_epochs=40, min_epochs=40, lr=3e-3, batch_size=16
    )
    _, p = precision_at_k(train_bits, problem.Y_train, test_bits, problem.Y_test, k=10)
    assert p > 0.8  # three separable topics; chance is 1/3


def test_deterministic_binarization_is_a_method_setting(problem, monkeypatch):
    import dataclasses

    spec = dataclasses.replace(methods.SPECS["nash-dn"], binarization="deterministic")
    monkeypatch.setitem(methods.SPECS, "nash-dn", spec)
    model, _ = methods.fit_model(
        "nash-dn", 16, problem, max_epochs=40, min_epochs=40, lr=3e-3, batch_size=16
    )
    assert model.config.binarization == "deterministic"
    train_bits = methods.encode_rows(model, problem.X_train)
    _, p = precision_at_k(
        train_bits, problem.Y_train, methods.encode_rows(model, problem.X_test), problem.Y_test, 10
    )
    assert p > 0.6  # it still learns the three topics (chance: 1/3)


def test_a_method_of_several_rounds_reports_each_round(problem):
    rounds = []
    methods.fit_model(
        "nash-refine",
        8,
        problem,
        max_epochs=2,
        min_epochs=1,
        on_epoch=lambda epoch, max_epochs, info: rounds.append(info.get("round")),
    )
    assert rounds[0] == (1, 2) and rounds[-1] == (2, 2)
    assert rounds == sorted(rounds)
    one_round = []
    methods.fit_model(
        "nash-nbr", 8, problem, max_epochs=2, on_epoch=lambda *a: one_round.append(a[2])
    )
    assert one_round and all("round" not in info for info in one_round)


def test_same_seed_same_codes(problem):
    a = methods.fit_encode("nash-dn", 8, problem, seed=3, max_epochs=3)
    b = methods.fit_encode("nash-dn", 8, problem, seed=3, max_epochs=3)
    c = methods.fit_encode("nash-dn", 8, problem, seed=4, max_epochs=3)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    assert not (a[0] == c[0]).all()


def test_early_stopping_keeps_best_epoch(problem):
    seen = []
    model, result = methods.fit_model(
        "nash",
        8,
        problem,
        max_epochs=8,
        min_epochs=2,
        patience=2,
        on_epoch=lambda e, m, info: seen.append(info),
    )
    assert result.epochs == len(seen) <= 8
    scores = [info["val_precision"] for info in seen]
    assert result.best_score == max(scores)
    assert result.best_epoch == scores.index(max(scores)) + 1


def test_a_small_corpus_trains_a_minimum_of_steps_before_stopping_early(problem):
    """A few hundred documents make a handful of steps an epoch: 12 epochs left the faithful
    NASH-DN at chance, so early stopping also waits for ``min_steps`` optimiser steps."""
    assert problem.X_train.shape[0] == 60  # 4 steps an epoch in batches of 16
    kw = {"max_epochs": 30, "min_epochs": 1, "patience": 1, "batch_size": 16}
    _, quick = methods.fit_model("nash", 8, problem, min_steps=0, **kw)
    _, waited = methods.fit_model("nash", 8, problem, min_steps=80, **kw)
    assert quick.epochs < 20 <= waited.epochs  # 80 steps of 4 an epoch: 20 epochs at least


@pytest.mark.parametrize("per_topic", [40, 4])  # ARPACK, and the dense solve of a small graph
def test_spectral_clusters_recover_topics(per_topic):
    from nashcli.features import TfidfFeatures, knn_graph

    # Topics that share a few words; each document's neighbours outnumber its topic, so the graph
    # is connected (as real corpora's are) but its heavy edges stay within topics.
    rng = np.random.default_rng(0)
    names = list(TOPICS)
    texts, topic_of = [], []
    for t, name in enumerate(names):
        other = TOPICS[names[(t + 1) % len(names)]]
        for _ in range(per_topic):
            words = list(rng.choice(TOPICS[name], size=10)) + list(rng.choice(other, size=2))
            texts.append(" ".join(words))
            topic_of.append(t)
    x = TfidfFeatures().fit(texts).transform(texts)
    n = 3 * per_topic
    neighbors, similarities = knn_graph(x, per_topic + per_topic // 4)
    embedding = methods.spectral_embedding(neighbors, similarities, 3)
    assert embedding.shape == (n, 3)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-5)
    clusters = methods.spectral_clusters(embedding, 3)
    assert clusters.shape == (n, 3) and (clusters.sum(axis=1) == 1).all()
    # each topic is one cluster (up to the clusters' order)
    pairs = set(zip(topic_of, clusters.argmax(axis=1), strict=True))
    assert len(pairs) == 3 and len({c for _, c in pairs}) == 3


def test_documents_that_share_no_word_take_no_eigenvector_and_no_topic():
    # Three topics and three documents of words no other uses: the graph pads those with their
    # own index, which must not become self-loops (each a component of its own, worth one of
    # the three eigenvectors) nor edges to the first rows.
    from nashcli.features import TfidfFeatures, knn_graph

    rng = np.random.default_rng(0)
    names = list(TOPICS)
    texts, topic_of = [], []
    for t, name in enumerate(names):  # (a few words of the next topic: a connected graph)
        other = TOPICS[names[(t + 1) % len(names)]]
        for _ in range(40):
            words = list(rng.choice(TOPICS[name], size=10)) + list(rng.choice(other, size=2))
            texts.append(" ".join(words))
            topic_of.append(t)
    texts += ["zyx wvu", "qpo nml", "kji hgf"]
    x = TfidfFeatures().fit(texts).transform(texts)
    neighbors, similarities = knn_graph(x, 50)
    assert (neighbors[-3:] == np.arange(120, 123)[:, None]).all()
    embedding = methods.spectral_embedding(neighbors, similarities, 3)
    clusters = methods.spectral_clusters(embedding, 3).argmax(axis=1)[:120]
    pairs = set(zip(topic_of, clusters, strict=True))
    assert len(pairs) == 3 and len({c for _, c in pairs}) == 3


def test_a_document_without_neighbours_reconstructs_its_own_words():
    # Rows padded with their own index: the mean is over the real neighbours only, and a row
    # with none keeps its own counts (before, the padding was rows 0, 1, ...: their words).
    neighbours = np.array([[1, 2, 0], [0, 1, 1], [2, 2, 2]])
    mix = methods.neighbour_mix(neighbours, 8.0).toarray()
    np.testing.assert_allclose(mix[0], [1, 4, 4])
    np.testing.assert_allclose(mix[1], [8, 1, 0])
    np.testing.assert_allclose(mix[2], [0, 0, 1])
    full = np.array([[1, 2], [0, 2], [0, 1]])
    np.testing.assert_allclose(
        methods.neighbour_mix(full, 8.0).toarray(), np.eye(3) + 4 * (1 - np.eye(3))
    )


def test_contrastive_partners_are_real_neighbours_where_there_are_any():
    from nashcli.training import pair_partners

    neighbours = np.array([[1, 0, 0, 0], [0, 2, 3, 1], [2, 2, 2, 2], [2, 3, 3, 3]])
    rows = np.array([0, 1, 2, 3] * 50)
    partners = pair_partners(neighbours, rows, np.random.default_rng(0))
    assert set(partners[rows == 0]) == {1}
    assert set(partners[rows == 1]) == {0, 2, 3}
    assert set(partners[rows == 2]) == {2}  # none: its own partner
    assert set(partners[rows == 3]) == {2}


def test_pseudo_labels_of_duplicate_documents_print_no_warning():
    # A small folder of copies has fewer distinct rows than clusters: no warning in the output.
    import warnings

    import scipy.sparse as sp

    x = sp.csr_matrix(np.repeat(np.eye(3, 8, dtype=np.float32), [6, 1, 1], axis=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = methods.cluster_labels(x, 5)
        spectral = methods.spectral_clusters(x.toarray(), 5)
    assert labels.shape == spectral.shape == (8, 5)
    assert (labels.sum(axis=1) == 1).all() and (spectral.sum(axis=1) == 1).all()


def test_refine_trains_again_on_the_graph_of_its_first_codes(problem, monkeypatch):
    from nashcli import training
    from nashcli.features import knn_graph

    trained, graphs = [], []
    real_train = training.train

    def spy(model, data, config, device, on_epoch=None):
        trained.append(model)
        graphs.append(data.neighbors.copy())
        return real_train(model, data, config, device, on_epoch=on_epoch)

    monkeypatch.setattr(training, "train", spy)
    model, _ = methods.fit_model("nash-refine", 8, problem, max_epochs=3, min_epochs=1)
    assert len(trained) == 2 and model is trained[1]
    tfidf, _ = knn_graph(problem.graph_rows, 50)
    k = graphs[0].shape[1]
    # round 1: the nearest TF-IDF neighbours, half of them replaced by spectral-embedding ones
    assert (graphs[0][:, : k // 2] == tfidf[:, : k // 2]).all()
    assert not (graphs[0] == tfidf[:, :k]).all()
    # round 2: the graph of the first model's codes
    first, _ = methods.code_graph(trained[0], problem.X_train, 50, "cpu")
    assert (graphs[1] == first).all() and not (graphs[1] == tfidf).all()


def test_supervised_training_runs(problem):
    train_bits, _ = methods.fit_encode("nash-dn", 8, problem, supervised=True, max_epochs=2)
    assert train_bits.shape == (60, 8)


def test_unknown_method_and_tfidf_are_clear_errors(problem):
    with pytest.raises(NashError):
        methods.fit_encode("nope", 8, problem)
    with pytest.raises(NashError):
        methods.fit_encode("tfidf", 8, problem)


def test_resolve_device():
    import torch

    assert methods.resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert methods.resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(NashError):
            methods.resolve_device("cuda")


@pytest.mark.parametrize("supervised", [False, True])
def test_training_prints_no_warnings(problem, supervised):
    # `nash eval` shares stderr with its progress display: a library warning garbles it.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in (
            "nash",
            "nash-dn",
            "vdsh",
            "nash-nbr",
            "nash-mlp",
            "nash-spectral",
            "nash-refine",
        ):
            kw = {"supervised": supervised, "max_epochs": 2, "min_epochs": 1}
            methods.fit_encode(method, 8, problem, **kw)


def test_validation_score_is_the_tie_aware_precision():
    from nashcli.metrics import (
        hamming_distance_matrix,
        label_hits,
        precision_from_distances,
        tie_aware_precision,
    )

    rng = np.random.default_rng(3)
    db, q = rng.random((300, 8)) < 0.5, rng.random((40, 8)) < 0.5
    ydb, yq = rng.random((300, 5)) < 0.3, rng.random((40, 5)) < 0.3
    dist, hits = hamming_distance_matrix(q, db), label_hits(yq, ydb)
    for k in (1, 10, 100):
        expected = precision_from_distances(dist, hits, k)[1]
        assert tie_aware_precision(dist, hits, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("cores", "load", "threads"), [(2, 0.3, 2), (2, 1.2, 1), (2, 7.5, 1), (8, 2.0, 6), (1, 0.0, 1)]
)
def test_training_threads_follow_the_idle_cores(monkeypatch, cores, load, threads):
    from nashcli import training

    monkeypatch.setattr(training.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(training.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(training, "_idle_fraction", lambda sample: None)  # no /proc/stat
    assert training.idle_cores() == threads
    # With /proc/stat: the idle share of the machine over a short sample decides.
    monkeypatch.setattr(training, "_idle_fraction", lambda sample: max(0.0, 1 - load / cores))
    assert training.idle_cores() == max(1, min(cores, int(cores - load + 0.5)))


def test_idle_fraction_is_a_share_where_proc_stat_exists():
    from nashcli import training

    share = training._idle_fraction(0.05)
    assert share is None or 0.0 <= share <= 1.0


def test_explicit_training_threads_win_over_the_idle_cores(monkeypatch):
    from nashcli import training

    monkeypatch.setattr(training, "idle_cores", lambda: 2)
    monkeypatch.delenv("NASH_TRAIN_THREADS", raising=False)
    assert training.training_threads(training.TrainConfig()) == 2
    monkeypatch.setenv("NASH_TRAIN_THREADS", "1")
    assert training.training_threads(training.TrainConfig()) == 1
    assert training.training_threads(training.TrainConfig(cpu_threads=3)) == 3
    monkeypatch.setenv("NASH_TRAIN_THREADS", "lots")
    assert training.training_threads(training.TrainConfig()) == 2


def test_mixed_target_built_once_or_per_batch_is_the_same(monkeypatch):
    """Within the memory budget the neighbour-mixed target is built once; above it, per batch."""
    import scipy.sparse as sp

    from nashcli import training

    rng = np.random.default_rng(0)
    target = sp.random(40, 25, density=0.2, format="csr", dtype=np.float32, random_state=1)
    neighbours = rng.integers(0, 40, size=(40, 5))
    mix = methods.neighbour_mix(neighbours, 8.0)
    built, left = training.mixed_target(target, mix)
    assert left is None
    np.testing.assert_allclose(built.toarray(), mix.toarray() @ target.toarray(), rtol=1e-5)
    monkeypatch.setattr(training, "MIXED_TARGET_BUDGET", 100)  # bytes: far too few
    kept, left = training.mixed_target(target, mix)
    assert kept is target and left is mix
    assert training.mixed_target(target, None) == (target, None)


def test_minibatch_rows_are_those_scipy_indexing_gives():
    """The numpy row gather behind every training step: any order, repeats (a batch's
    neighbours), empty rows, and a matrix with duplicate entries (summed, as ``toarray``)."""
    import scipy.sparse as sp
    import torch

    from nashcli.training import dense_rows, row_parts, sparse_rows

    rng = np.random.default_rng(0)
    x = sp.random(30, 50, density=0.2, format="csr", dtype=np.float32, random_state=1)
    x.data[x.indptr[4] : x.indptr[5]] = 0.0
    x.eliminate_zeros()
    assert x[4].nnz == 0
    cpu = torch.device("cpu")
    duplicated = sp.csr_matrix(
        (np.array([1.0, 2.0, 4.0], dtype=np.float32), np.array([3, 3, 7]), np.array([0, 3, 3]))
    )
    assert not duplicated.has_canonical_format
    for matrix, rows in [
        (x, rng.integers(0, 30, size=64)),  # unsorted, repeated
        (x, np.array([4, 4, 0])),  # an empty row
        (x, np.array([], dtype=np.int64)),
        (x, slice(3, 9)),
        (duplicated, np.array([1, 0, 0])),
    ]:
        expected = matrix[rows]
        indptr, indices, data = row_parts(matrix, rows)
        assert np.array_equal(indptr, expected.indptr)
        assert np.array_equal(indices, expected.indices) and np.array_equal(data, expected.data)
        assert torch.equal(
            dense_rows(matrix, rows, cpu), torch.from_numpy(expected.toarray().astype(np.float32))
        )
        part = sparse_rows(matrix, rows, cpu)
        assert np.array_equal(part.indices.numpy(), expected.indices)
        assert np.array_equal(part.offsets.numpy(), expected.indptr[:-1])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_fused_adam_steps_as_torch_adam_does_bit_for_bit(device):
    import torch

    from nashcli.training import FusedAdam, _fused_adam_runs, make_adam

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if not _fused_adam_runs(torch.device(device)):
        pytest.skip(f"this torch has no fused Adam kernel for {device} (torch < 2.4 on CPU)")

    def model_and_grads(seed):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Linear(5, 3))
        model.add_module("unused", torch.nn.Linear(2, 2))  # never given a gradient
        return model.to(device)

    ours, theirs = model_and_grads(0), model_and_grads(0)
    first = lambda m: list(m[0].parameters())  # noqa: E731
    rest = lambda m: list(m[1].parameters()) + list(m.unused.parameters())  # noqa: E731
    opt_ours = FusedAdam([(first(ours), 0.05), (rest(ours), 0.001)])
    opt_theirs = torch.optim.Adam(
        [{"params": first(theirs), "lr": 0.05}, {"params": rest(theirs), "lr": 0.001}], fused=True
    )
    x = torch.randn(16, 7, generator=torch.Generator().manual_seed(1)).to(device)
    for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
        for _ in range(25):
            opt.zero_grad()
            model[1](torch.tanh(model[0](x))).pow(2).mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0].weight, model_and_grads(0)[0].weight)  # it did train
    assert isinstance(make_adam(ours, 1e-3), FusedAdam)  # torch 2.4 on: the fused kernel on CPU too


def test_training_does_not_import_torch_dynamo():
    """torch.optim's optimizers import torch._dynamo (about 0.9 s) on construction and step."""
    import subprocess
    import sys

    import torch

    from nashcli.training import _fused_adam_runs

    if not _fused_adam_runs(torch.device("cpu")):
        pytest.skip("this torch has no fused Adam kernel for the CPU: torch.optim trains")

    probe = (
        "import sys; from nashcli import methods; from nashcli.features import make_problem\n"
        "texts = ['cat dog pet fur', 'stock bank bond rate'] * 20\n"
        "labels = [['pets'], ['money']] * 20\n"
        "p = make_problem(texts, texts[:8], texts[:8], labels, labels[:8], labels[:8])\n"
        "methods.fit_encode('nash-dn', 8, p, max_epochs=2, min_epochs=1)\n"
        "print('torch._dynamo' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
