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


def test_time_budget_never_cuts_training_below_min_epochs():
    # A loaded machine once gave a 40 s budget 2 epochs and 99 % of documents one code.
    from nashcli.training import TrainConfig, codes_collapsed

    rng = np.random.default_rng(0)
    topics = [
        ["cat", "dog", "kitten", "puppy", "leash", "collar", "vet", "fur"],
        ["stock", "market", "shares", "bank", "bond", "trader", "profit", "dividend"],
        ["rocket", "orbit", "planet", "moon", "astronaut", "launch", "galaxy", "telescope"],
    ]
    per_topic = 40
    texts = [" ".join(rng.choice(words, size=12)) for words in topics for _ in range(per_topic)]
    hasher = SemanticHasher(n_bits=64, time_budget=0.0).fit(texts)
    assert hasher.train_info_["epochs"] >= TrainConfig().min_epochs
    codes = hasher.encode(texts)
    assert not codes_collapsed(codes)
    # and they rank: every document's nearest other document is of its own topic
    distance = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    np.fill_diagonal(distance, codes.shape[1] + 1)
    topic = np.repeat(np.arange(len(topics)), per_topic)
    assert (topic[distance.argmin(axis=1)] == topic).all()


def test_a_collection_trains_on_every_document_for_a_fixed_schedule(monkeypatch):
    """Nothing is held out (the validation loss chose the first epoch on small folders and let
    large ones train past their best) and training runs the step schedule to its end: the last
    epoch is kept."""
    from nashcli import pipeline

    monkeypatch.setattr(pipeline, "TRAINING_STEPS", 30)
    texts = [f"{a} {b} notes about {a} and {b}" for a in "xyz" for b in "pqrstuvw"] * 3
    hasher = SemanticHasher(n_bits=64, time_budget=None).fit(texts)
    batch = 256  # nash-nbr's: every epoch is one step
    assert pipeline.scheduled_epochs("nash-nbr", len(texts)) == 30 > len(texts) // batch
    assert hasher.train_info_["epochs"] == hasher.train_info_["best_epoch"] == 30


def test_a_large_collection_is_fitted_on_a_random_sample_and_encoded_whole():
    """Above ``max_documents`` the vocabulary and the model come from a seeded random sample
    (the default model's neighbour graph is quadratic in what it is fitted on); every
    document still gets a code."""
    topics = {"sail": "boat harbour wind", "bake": "flour oven bread", "code": "python bug test"}
    texts = [f"{k} {v} note {i} word{i}" for i in range(20) for k, v in topics.items()]
    hasher = SemanticHasher(n_bits=8, max_documents=12, max_epochs=2).fit(texts)
    assert hasher.train_info_["documents"] == 12 and hasher.train_info_["collection"] == 60
    numbered = {w for w in hasher.features_.vocabulary_ if w.startswith("word")}
    assert 0 < len(numbered) <= 12  # the sample's own words, not all 60
    assert hasher.encode(texts).shape == (60, 8)
    again = SemanticHasher(n_bits=8, max_documents=12, max_epochs=2).fit(texts)
    assert again.features_.vocabulary_ == hasher.features_.vocabulary_  # seeded: the same sample
    whole = SemanticHasher(n_bits=8, max_documents=None, max_epochs=2).fit(texts)
    assert whole.train_info_["documents"] == 60
    with pytest.raises(NashError, match="max_documents"):
        SemanticHasher(max_documents=1)


def test_the_step_schedule():
    from nashcli import pipeline

    assert pipeline.scheduled_epochs("nash-nbr", 1_000) == 38  # 4 steps an epoch, 150 steps
    assert pipeline.scheduled_epochs("nash-nbr", 4_999) == 8  # 20 steps an epoch
    assert pipeline.scheduled_epochs("nash-nbr", 5_000) == 10  # 200 steps from 5,000
    assert pipeline.scheduled_epochs("nash-nbr", 10_000) == 5
    assert pipeline.scheduled_epochs("nash-nbr", 100_000) == 1  # at least one pass
    assert pipeline.scheduled_epochs("nash-spectral", 10_000) == 5  # the default's recipe
    # Measured with the default's recipe only: others get at least the minimum of epochs.
    for method in ("nash-dn", "vdsh", "nash-refine"):
        assert pipeline.scheduled_epochs(method, 10_000) == 12
    assert pipeline.scheduled_epochs("nash-dn", 640) == 15  # batches of 64: 10 a epoch
    # Shorter codes train longer in large collections: 1.5× the steps at 32 bits, 2× at 16.
    assert pipeline.scheduled_epochs("nash-nbr", 10_000, bits=128) == 5
    assert pipeline.scheduled_epochs("nash-nbr", 10_000, bits=32) == 8  # 300 steps
    assert pipeline.scheduled_epochs("nash-nbr", 10_000, bits=16) == 10  # 400 steps
    assert pipeline.scheduled_epochs("nash-nbr", 10_000, bits=8) == 10
    assert pipeline.scheduled_epochs("nash-nbr", 1_000, bits=16) == 38  # not in small ones
    with pytest.raises(NashError, match="max_epochs"):
        SemanticHasher(max_epochs=0)


def test_a_large_collection_holds_nothing_out(monkeypatch):
    """Every document trains the model, whatever the collection's size."""
    from nashcli import methods, pipeline

    seen = []

    def spy(method, bits, problem, **kw):
        seen.append((problem.X_train.shape[0], problem.X_val.shape[0], kw["max_epochs"]))
        raise RuntimeError("stop here")

    monkeypatch.setattr(methods, "fit_model", spy)
    texts = [f"note {i} about topic {i % 7} and word{i % 13}" for i in range(6000)]
    with pytest.raises(RuntimeError, match="stop here"):
        SemanticHasher(n_bits=16).fit(texts)
    assert seen == [(6000, 0, pipeline.scheduled_epochs("nash-nbr", 6000, 16))]
    assert seen[0][2] == 17  # 24 steps an epoch, 400 steps at 16 bits


def test_codes_collapsed():
    from nashcli.training import codes_collapsed

    rng = np.random.default_rng(0)
    healthy = rng.random((500, 64)) < 0.5
    assert not codes_collapsed(healthy)
    one_code = np.zeros((500, 64), dtype=bool)
    one_code[:3, 5] = True  # 2 distinct codes among 500 documents
    assert codes_collapsed(one_code)
    constant_bits = healthy.copy()
    constant_bits[:, :40] = False  # 40 of 64 bits never vary
    assert codes_collapsed(constant_bits)


# -- the library as a scikit-learn user calls it -------------------------------------------------
def test_a_failed_save_leaves_the_hasher_saved_before(tmp_path, monkeypatch):
    good = SemanticHasher(n_bits=16, method="lsh").fit(FIVE)
    good.save(tmp_path)
    codes = SemanticHasher.load(tmp_path).encode(FIVE)
    other = SemanticHasher(n_bits=32, method="lsh", max_features=5).fit(FIVE)

    real_savez = np.savez

    def full_disk(file, **arrays):  # (the features are written; the model is not)
        if "idf" not in arrays:
            raise OSError(28, "No space left on device")
        real_savez(file, **arrays)

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError):
        other.save(tmp_path)
    monkeypatch.undo()
    loaded = SemanticHasher.load(tmp_path)
    assert loaded.n_bits == 16 and (loaded.encode(FIVE) == codes).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "features.json", "features.npz", "model.json", "model.npz"
    ]  # fmt: skip


def test_numpy_integers_are_taken_and_saved_as_plain_numbers(tmp_path):
    hasher = SemanticHasher(np.int64(16), method="lsh", seed=np.int32(3)).fit(FIVE)
    hasher.save(tmp_path)
    loaded = SemanticHasher.load(tmp_path)
    assert (loaded.n_bits, loaded.seed) == (16, 3)
    assert (loaded.encode(FIVE) == hasher.encode(FIVE)).all()


@pytest.mark.parametrize(
    "kw",
    [{"n_bits": 16.0}, {"n_bits": True}, {"seed": -1}, {"seed": 2**64}, {"seed": None},
     {"max_featurez": 5}, {"max_documents": "10"}, {"max_documents": 1}, {"max_epochs": 2.5},
     {"max_epochs": 0}, {"time_budget": "x"}, {"time_budget": -5}, {"time_budget": float("nan")},
     {"device": "quantum"}, {"device": "cuda:x"}, {"min_df": -1}, {"max_df": 1.5},
     {"max_features": 0}, {"stop_words": "french"}, {"stop_words": [1, 2]},
     {"stop_words": np.array(["a", "b"])}, {"sublinear_tf": "yes"}],
)  # fmt: skip
def test_bad_settings_are_refused_before_any_work(kw):
    """Said when given, in one line naming the setting: not a TypeError from deep inside the
    fit, minutes later, or (time_budget=-5) a setting silently taken."""
    with pytest.raises(NashError, match=next(iter(kw)).removeprefix("n_")):
        SemanticHasher(**kw)
    with pytest.raises(NashError):
        SemanticHasher().set_params(**kw)


def test_a_pipeline_that_passes_labels_along_can_hold_the_hasher():
    """scikit-learn passes ``y`` to every step's fit: an unsupervised hasher takes and ignores
    it (it went where the epoch callback goes, and failed after the first epoch)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts, labels = FIVE * 2, [0, 0, 1, 1, 1] * 2
    pipe = make_pipeline(SemanticHasher(n_bits=8, max_epochs=2), LogisticRegression())
    assert pipe.fit(texts, labels).predict(FIVE).shape == (5,)
    hasher = SemanticHasher(n_bits=8, max_epochs=2)
    assert (hasher.fit_transform(texts, labels) == hasher.fit(texts, y=labels).encode(texts)).all()
    with pytest.raises(NashError, match="not NoneType"):
        hasher.fit(None)


def test_loading_with_an_unknown_device_is_that_error_not_damage(tmp_path):
    SemanticHasher(n_bits=8, method="lsh").fit(FIVE).save(tmp_path)
    with pytest.raises(NashError, match="^unknown device 'gpu'"):
        SemanticHasher.load(tmp_path, device="gpu")
    assert SemanticHasher.load(tmp_path, device="cpu").n_bits == 8


def test_saving_onto_a_file_and_loading_nan_weights_are_clear_errors(tmp_path):
    hasher = SemanticHasher(n_bits=8, max_epochs=1).fit(FIVE)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NashError, match="not a folder"):
        hasher.save(tmp_path / "file")
    hasher.save(str(tmp_path / "model"))  # (a str as well as a Path)
    with np.load(tmp_path / "model" / "model.npz") as data:
        arrays = {k: np.array(data[k]) for k in data.files}
    first = next(k for k, v in arrays.items() if v.dtype.kind == "f")
    arrays[first].flat[0] = np.nan  # every text would get one and the same code
    np.savez(tmp_path / "model" / "model.npz", **arrays)
    with pytest.raises(NashError, match="NaN"):
        SemanticHasher.load(tmp_path / "model")


def test_a_string_or_a_non_string_is_not_taken_for_documents():
    hasher = SemanticHasher(n_bits=8, method="lsh").fit(FIVE)
    for bad in ("markets fell", ["markets fell", None], b"bytes"):
        with pytest.raises(NashError, match="string"):
            hasher.encode(bad)
    with pytest.raises(NashError, match="one string"):
        SemanticHasher(n_bits=8, method="lsh").fit("one long text")


@pytest.mark.parametrize("method", ["lsh", "nash-nbr"])
def test_rows_with_nan_or_the_wrong_width_are_refused(method):
    hasher = SemanticHasher(n_bits=8, method=method, max_epochs=1).fit(FIVE)
    x = hasher.vectorize(FIVE[:2])
    assert (hasher.encode_vectors(x.toarray()) == hasher.encode_vectors(x)).all()  # dense too
    x.data[0] = np.nan
    with pytest.raises(NashError, match="NaN"):
        hasher.encode_vectors(x)
    with pytest.raises(NashError, match="shape"):
        hasher.encode_vectors(np.zeros((1, 3)))


def test_clone_get_params_set_params_and_transform():
    from sklearn.base import clone

    hasher = SemanticHasher(n_bits=8, method="lsh", seed=2, max_features=7).fit(FIVE)
    copy = clone(hasher)
    assert copy.get_params() == hasher.get_params() and copy.model_ is None
    assert (copy.fit_transform(FIVE) == hasher.transform(FIVE)).all()
    assert (copy.fit_transform(iter(FIVE)) == hasher.transform(FIVE)).all()  # (used once)
    copy.set_params(n_bits=16)
    with pytest.raises(NashError, match="not trained"):  # its 8-bit model is no 16-bit one
        copy.encode(FIVE)
    assert copy.fit(FIVE).encode(FIVE).shape == (5, 16)
    with pytest.raises(NashError):
        copy.set_params(n_bits=0)
    assert copy.n_bits == 16


def test_a_loaded_hasher_refits_with_its_feature_and_training_settings(tmp_path):
    SemanticHasher(n_bits=8, method="lsh", max_features=5, max_documents=4).fit(FIVE).save(tmp_path)
    loaded = SemanticHasher.load(tmp_path)
    assert loaded.get_params()["max_features"] == 5 and loaded.max_documents == 4
    assert loaded.fit(FIVE).features_.vocabulary_size == 5


def test_fitting_leaves_torchs_random_generator_as_it_was():
    import torch

    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    SemanticHasher(n_bits=8, max_epochs=1).fit(FIVE)
    assert torch.equal(torch.rand(3), expected)


def test_a_damaged_features_archive_is_one_clear_error(tmp_path):
    SemanticHasher(n_bits=8, method="lsh").fit(FIVE).save(tmp_path)
    path = tmp_path / "features.npz"
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF  # inside the idf array: its CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(NashError, match="features.npz"):
        SemanticHasher.load(tmp_path)


def test_bits_in_model_json_must_match_the_weights(tmp_path):
    for method in ("lsh", "nash-nbr"):
        SemanticHasher(n_bits=16, method=method, max_epochs=1).fit(FIVE).save(tmp_path)
        config = json.loads((tmp_path / "model.json").read_text())
        config["n_bits"] = 24
        (tmp_path / "model.json").write_text(json.dumps(config))
        with pytest.raises(NashError, match="model"):
            SemanticHasher.load(tmp_path)


def test_the_rows_a_fit_keeps_are_what_vectorize_gives() -> None:
    """nash index encodes its training texts from the fit's own TF-IDF rows rather than
    tokenising them again: they must be the same rows, to the bit."""
    texts = FIVE * 3 + ["a cat, a dog and the oil markets of Tokyo"]
    hasher = SemanticHasher(n_bits=16, method="lsh").fit(texts, keep_rows=True)
    again = hasher.vectorize(texts)
    kept = hasher.fit_rows_
    assert (kept.indptr == again.indptr).all() and (kept.indices == again.indices).all()
    assert kept.data.tobytes() == again.data.tobytes()
    assert SemanticHasher(n_bits=16, method="lsh").fit(texts).fit_rows_ is None
