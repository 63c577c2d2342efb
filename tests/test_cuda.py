"""The CUDA path: every method trains on a GPU, its codes travel to CPU, `nash index` uses it.

Skipped where there is no GPU (CI has none); on a GPU machine: ``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import test_training
import torch
from test_indexing import make_docs
from typer.testing import CliRunner

from nashcli import methods
from nashcli.cli import app
from nashcli.metrics import precision_at_k
from nashcli.pipeline import SemanticHasher

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

HASHING = [m for m in methods.METHODS if m not in ("tfidf", "lsh")]
problem = test_training.problem  # the tiny three-topic corpus fixture, shared


@pytest.mark.parametrize("method", HASHING)
def test_every_method_trains_on_the_gpu(problem, method):
    model, _ = methods.fit_model(method, 8, problem, device="auto", max_epochs=3, min_epochs=1)
    assert next(model.parameters()).device.type == "cuda"  # 'auto' picked the GPU
    train_bits = methods.encode_rows(model, problem.X_train)
    assert train_bits.shape == (60, 8) and train_bits.dtype == bool


def test_supervised_training_on_the_gpu(problem):
    train_bits, test_bits = methods.fit_encode(
        "nash-dn", 8, problem, supervised=True, device="cuda", max_epochs=3
    )
    assert train_bits.shape == (60, 8) and test_bits.shape == (15, 8)


def test_gpu_training_learns_topics(problem):
    train_bits, test_bits = methods.fit_encode(
        "nash-dn", 16, problem, device="cuda", max_epochs=40, min_epochs=40, lr=3e-3, batch_size=16
    )
    _, p = precision_at_k(train_bits, problem.Y_train, test_bits, problem.Y_test, k=10)
    assert p > 0.8  # as on CPU (test_training.test_nash_learns_topics)


def test_gpu_model_encodes_the_same_on_cpu(problem):
    model, _ = methods.fit_model(methods.DEFAULT_METHOD, 16, problem, device="cuda", max_epochs=5)
    on_gpu = methods.encode_rows(model, problem.X_train)
    on_cpu = methods.encode_rows(model.to("cpu"), problem.X_train)
    assert np.mean(on_gpu == on_cpu) > 0.99  # only scores within float error of 0 may flip


def test_gpu_trained_hasher_saves_and_loads_on_cpu(tmp_path: Path):
    texts = [" ".join(t) for t in ([w] * 3 + ["shared"] for w in "abcdefghij")]
    hasher = SemanticHasher(n_bits=16, device="cuda", max_epochs=5).fit(texts * 3)
    hasher.save(tmp_path)
    loaded = SemanticHasher.load(tmp_path, device="cpu")
    assert np.mean(loaded.encode(texts) == hasher.encode(texts)) > 0.99


def test_index_then_similar_with_a_gpu(tmp_path: Path):
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", str(folder), "--device", "cuda"])
    assert indexed.exit_code == 0, indexed.output
    found = runner.invoke(app, ["similar", str(paths[0]), "--top", "3"])
    assert found.exit_code == 0, found.output
    assert "space" in found.stdout  # paths[0] is a space note; its neighbours are too
