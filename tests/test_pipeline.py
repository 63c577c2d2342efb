"""SemanticHasher: what `nash index` uses — tiny corpora, save/load, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nashcli.errors import NashError
from nashcli.pipeline import SemanticHasher

FIVE = [
    "The cat sat on the mat with another cat",
    "Dogs and cats are popular pets",
    "Stock markets fell sharply today in Tokyo",
    "Oil prices rose in early trading",
    "東京の株式市場は下落した",
]


@pytest.mark.parametrize("method", ["nash-dn", "nash", "vdsh", "lsh"])
def test_five_documents_fit_encode_save_load(tmp_path, method):
    hasher = SemanticHasher(n_bits=16, method=method, max_epochs=5).fit(FIVE)
    codes = hasher.encode(FIVE)
    assert codes.shape == (5, 16) and codes.dtype == bool
    assert (hasher.encode(FIVE) == codes).all()  # inference is deterministic
    hasher.save(tmp_path)
    loaded = SemanticHasher.load(tmp_path)
    assert loaded.n_bits == 16 and loaded.method == method
    assert (loaded.encode(FIVE) == codes).all()
    new = ["a cat and a dog", "nothing known here"]
    assert (loaded.encode(new) == hasher.encode(new)).all()


def test_saved_files_are_plain_data_with_versions(tmp_path):
    SemanticHasher(n_bits=8, max_epochs=2).fit(FIVE).save(tmp_path)
    config = json.loads((tmp_path / "model.json").read_text())
    assert {"nashcli", "torch", "numpy"} <= set(config["versions"])
    with np.load(tmp_path / "model.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


def test_same_seed_same_codes():
    a = SemanticHasher(n_bits=8, seed=1, max_epochs=3).fit(FIVE).encode(FIVE)
    b = SemanticHasher(n_bits=8, seed=1, max_epochs=3).fit(FIVE).encode(FIVE)
    assert (a == b).all()


def test_vectorize_is_tfidf_rows():
    hasher = SemanticHasher(n_bits=8, max_epochs=1).fit(FIVE)
    x = hasher.vectorize(FIVE)
    assert x.shape[0] == 5
    np.testing.assert_allclose(np.sqrt(x.multiply(x).sum(axis=1)).A.ravel(), 1.0, rtol=1e-5)


def test_errors_are_clear(tmp_path):
    with pytest.raises(NashError):
        SemanticHasher(method="bogus")
    with pytest.raises(NashError):
        SemanticHasher().fit(["only one"])
    with pytest.raises(NashError):
        SemanticHasher().encode(["not trained"])
    with pytest.raises(NashError):
        SemanticHasher.load(tmp_path)  # nothing there
