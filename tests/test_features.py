"""Tokenizer, TF-IDF features (save/load without pickle), problems and the k-NN graph."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nashcli.errors import NashError
from nashcli.features import (
    TfidfFeatures,
    carve_validation,
    graph_features,
    knn_graph,
    make_problem,
    real_neighbours,
)
from nashcli.tokens import tokenize

DOCS = [
    "The cat sat on the mat with another cat",
    "Dogs and cats are popular pets",
    "Stock markets fell sharply today in Tokyo",
    "Oil prices rose in early trading",
    "The dog chased the cat around the garden",
]


def test_tokenize_lowercases_and_drops_numbers_and_single_letters():
    assert tokenize("Hello, WORLD! 2024 x 3.14 v2") == ["hello", "world", "v2"]


def test_tokenize_cjk_runs_become_bigrams():
    assert tokenize("東京は晴れ") == ["東京", "京は", "は晴", "晴れ"]
    assert tokenize("東") == ["東"]  # a lone character stays a token


def test_tokenize_mixed_scripts_split_at_cjk_boundaries():
    tokens = tokenize("NASH模型 works well; snake_case ok")
    assert tokens == ["nash", "模型", "works", "well", "snake", "case", "ok"]


def test_tokenize_korean_and_accents():
    assert tokenize("Café 한국어") == ["café", "한국", "국어"]


def test_tokenize_gives_a_word_the_same_tokens_whether_or_not_the_text_has_cjk():
    """Text without CJK (most of it) takes a shorter path; a word must not notice."""
    latin = "Ünïcode ﬁne, snake_case v2 x 42 ＡＢＣ straße"
    assert tokenize(latin) == ["ünïcode", "fine", "snake", "case", "v2", "abc", "straße"]
    assert tokenize(latin + " 東京") == tokenize(latin) + ["東京"]


def test_features_counts_and_tfidf_share_vocabulary():
    f = TfidfFeatures(max_features=50).fit(DOCS)
    counts = f.counts(DOCS)
    x = f.transform(DOCS)
    assert counts.shape == x.shape == (5, f.vocabulary_size)
    assert "the" not in f.vocabulary_  # English stop words are dropped
    cat = f.vocabulary_.index("cat")
    assert counts[0, cat] == 2
    np.testing.assert_allclose(np.sqrt(x.multiply(x).sum(axis=1)).A.ravel(), 1.0, rtol=1e-5)


def test_counts_are_scikit_learns_to_the_bit(tmp_path) -> None:
    """Counted without scikit-learn (an update imports neither it nor its stop words), the
    counts, and so the TF-IDF rows, are those of its ``CountVectorizer`` on the vocabulary."""
    from functools import partial

    from sklearn.feature_extraction.text import CountVectorizer

    from nashcli.features import _analyze, _csr_counts, _stop_words

    rng = np.random.default_rng(0)
    words = [
        "rocket",
        "orbit",
        "the",
        "a",
        "of",
        "moon",
        "launch",
        "naïve",
        "café",
        "東京",
        "タワー",
        "über",
        "straße",
        "x",
        "y",
    ]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 40))) for _ in range(200)]
    texts += ["", "the of a", "Rocket, ROCKET! rocket?"]
    fitted = TfidfFeatures(max_features=None, min_df=1).fit(texts[:150])
    fitted.save(tmp_path)
    loaded = TfidfFeatures.load(tmp_path)
    reference = CountVectorizer(
        analyzer=partial(_analyze, stop_words=_stop_words("english")),
        vocabulary=fitted.vocabulary_,
        dtype=np.float32,
    )
    expected = _csr_counts(reference.transform(texts))
    for features in (fitted, loaded):
        got = features.counts(texts)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        for part in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(got, part), getattr(expected, part))
    tfidf, expected_tfidf = loaded.transform(texts), fitted.tfidf_from_counts(expected)
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(tfidf, part), getattr(expected_tfidf, part))


def test_features_max_features_keeps_frequent_words():
    f = TfidfFeatures(max_features=2).fit(DOCS)
    assert f.vocabulary_size == 2
    assert "cat" in f.vocabulary_


def test_words_tied_at_the_vocabulary_limit_are_chosen_by_name_not_by_the_sort():
    # 2,000 words once each and 5 in every document: the 5 get in, then 995 of the tied ones,
    # the same 995 on every machine (scikit-learn's max_features let numpy's SIMD sort choose).
    rng = np.random.default_rng(0)
    tied = [f"w{i:04d}" for i in rng.permutation(2000)]
    frequent = ["zebra", "yak", "xerus", "wolf", "vole"]
    texts = [" ".join(frequent + tied[i : i + 100]) for i in range(0, 2000, 100)]
    f = TfidfFeatures(max_features=1000, stop_words=None).fit(texts)
    assert f.vocabulary_ == sorted(sorted(tied)[:995] + frequent)


def test_settings_given_as_numpy_numbers_fit_and_save(tmp_path):
    f = TfidfFeatures(max_features=np.int64(2), min_df=np.int64(1), max_df=np.float64(1.0))
    assert f.fit(DOCS).vocabulary_size == 2
    f.save(tmp_path)  # (json.dumps refused numpy's int64)
    assert TfidfFeatures.load(tmp_path).vocabulary_ == f.vocabulary_


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, "100"])
def test_a_max_features_that_is_no_count_is_one_clear_error(limit):
    with pytest.raises(NashError, match="max_features must be a whole number"):
        TfidfFeatures(max_features=limit).fit(DOCS)


def test_features_save_load_round_trip(tmp_path):
    f = TfidfFeatures(max_features=100).fit(DOCS)
    f.save(tmp_path)
    json.loads((tmp_path / "features.json").read_text())  # plain JSON
    g = TfidfFeatures.load(tmp_path)
    new = ["a cat and a dog", "markets in Tokyo"]
    assert (f.transform(new) != g.transform(new)).nnz == 0
    assert g.vocabulary_ == f.vocabulary_


def test_features_no_words_is_a_clear_error():
    with pytest.raises(NashError):
        TfidfFeatures().fit(["the and of", "123 456"])


def test_make_problem_labels_and_splits():
    p = make_problem(DOCS[:3], DOCS[3:4], DOCS[4:], [["a"], ["a", "b"], ["c"]], [["b"]], ["a"])
    assert p.X_train.shape[0] == 3 and p.X_val.shape[0] == 1 and p.X_test.shape[0] == 1
    assert p.label_names == ["a", "b", "c"]
    assert p.Y_train.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert p.Y_test.tolist() == [[1, 0, 0]]  # a bare string counts as one label
    assert p.multilabel
    assert p.C_train.shape == p.X_train.shape


def test_carve_validation_is_deterministic_and_disjoint():
    a = carve_validation(100, 0.1, seed=3)
    b = carve_validation(100, 0.1, seed=3)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert len(a[1]) == 10 and not set(a[0]) & set(a[1])
    assert len(carve_validation(5)[1]) == 0  # tiny collections keep everything for training


def test_knn_graph_matches_brute_force():
    x = TfidfFeatures().fit_transform(DOCS)
    idx, sims = knn_graph(x, k=10, chunk=2)  # k is capped at n - 1
    assert idx.shape == (5, 4)
    full = (x @ x.T).toarray()
    for i in range(5):
        expected = sorted((v for j, v in enumerate(full[i]) if j != i and v > 0), reverse=True)
        real = len(expected)
        assert i not in idx[i, :real]
        np.testing.assert_allclose(sims[i, :real], expected, rtol=1e-5, atol=1e-6)
        # documents sharing no word with it are no neighbours: its own index pads the row
        assert (idx[i, real:] == i).all() and (sims[i, real:] == 0).all()
        assert real_neighbours(idx)[i].tolist() == [True] * real + [False] * (4 - real)
    assert (idx == np.arange(5)[:, None]).any()  # (the test needs a row short of neighbours)


def test_knn_graph_takes_tied_neighbours_by_row_not_by_the_sort():
    # 400 copies of one document and 100 others: every copy's 50 nearest tie at similarity 1,
    # and the graph must be the same on every CPU: the earliest other copies, in row order.
    rng = np.random.default_rng(0)
    copies = np.zeros((400, 20), np.float32)
    copies[:, 0] = 1.0  # (one word: every product exact, so the ties are exact too)
    others = rng.random((100, 20)).astype(np.float32)
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    x = np.vstack([copies, others])
    idx, sims = knn_graph(x, 50, chunk=128)
    assert idx[0].tolist() == list(range(1, 51))
    assert idx[399].tolist() == list(range(50))
    assert idx[200].tolist() == list(range(50))
    np.testing.assert_allclose(sims[:400], 1.0, rtol=1e-6)


def test_knn_graph_rows_see_words_beyond_the_model_vocabulary():
    # The model keeps the 2 most frequent words; rarer shared words pair documents 0-3 and 1-2.
    docs = [
        "alpha alpha alpha beta zebra",
        "alpha beta beta beta quokka",
        "alpha alpha alpha beta quokka",
        "alpha beta beta beta zebra",
    ]
    p = make_problem(docs, [], [], max_features=2)
    assert p.X_train.shape[1] == 2 and p.G_train.shape == (4, 4)
    assert knn_graph(p.X_train, 1)[0][0, 0] == 2  # on the model's words, 0 looks like 2
    assert knn_graph(p.graph_rows, 1)[0][:, 0].tolist() == [3, 2, 1, 0]


def test_knn_graph_rows_are_cut_from_the_features_counting_pass_to_the_bit():
    """make_problem counts the training texts once: the graph's rows (words in two training
    documents, not the validation's) are those a second pass over the texts gives."""
    train = DOCS + ["zebra quokka cat", "quokka zebra dog oil", "lonely words oil", "cat dog"]
    val = ["zebra zebra only in validation", "validation quokka"]
    p = make_problem(train, val, [], max_features=3)
    again = graph_features(train, p.features)
    assert again is not None and p.G_train.shape == again.shape == (9, 5)
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(p.G_train, part), getattr(again, part))
    assert p.G_train.dtype == again.dtype == np.float32
    # settings that leave words out of the features' own vocabulary: counted again, as before
    p = make_problem(train, val, [], max_features=3, min_df=2)
    assert (p.G_train != graph_features(train, p.features)).nnz == 0


def test_knn_graph_rows_are_the_model_rows_when_no_word_is_left_out():
    p = make_problem(DOCS[:3], DOCS[3:4], DOCS[4:])
    assert p.G_train is None and p.graph_rows is p.X_train
