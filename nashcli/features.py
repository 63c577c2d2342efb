"""Documents to vectors: TF-IDF features over the words of ``tokens.tokenize``, saved without
pickle, and the train/validation/test ``Problem`` the models are fit on.

The model reads two views of the same vocabulary: L2-normalised sublinear TF-IDF (the encoder's
input) and raw term counts (the decoder's reconstruction target; the calibration found counts
beat tf-idf and binary targets). The k-NN graph that neighbourhood methods learn from is built on
a third view, TF-IDF over the training documents' whole vocabulary (``Problem.G_train``).
"""

from __future__ import annotations

import json
import numbers
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from nashcli.errors import NashError
from nashcli.tokens import tokenize

FORMAT_VERSION = 1

# The k-NN graph's vocabulary: every word in at least this many training documents. Rare words
# (names, products, places) tell topics apart that the 10k most frequent words share: on the
# 20 Newsgroups VDSH release, 100-NN same-group precision of the graph's spectral embedding 0.578
# with the 10k words, 0.592 with all 26.6k words in ≥ 2 posts (0.520 with 3k words).
GRAPH_MIN_DF = 2


def whole_number(value: object) -> bool:
    """Whether ``value`` is an integer, Python's or numpy's, and not a bool (``True`` is an
    ``int`` to Python, and ``16.0`` is no count of anything)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def text_list(texts: Sequence[str], what: str = "texts") -> list[str]:
    """``texts`` as a list of strings; :class:`NashError` for one string (which would be read
    as one document per character, as scikit-learn refuses it too) or an item that is not a
    string."""
    if isinstance(texts, (str, bytes)):
        raise NashError(f"{what} must be a sequence of strings (one per document), not one string")
    try:
        texts = list(texts)
    except TypeError:  # (None, a number...)
        raise NashError(
            f"{what} must be a sequence of strings (one per document), not {type(texts).__name__}"
        ) from None
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise NashError(f"{what}[{position}] is {type(text).__name__}, not a string")
    return texts


def _analyze(text: str, stop_words: frozenset[str]) -> list[str]:
    return [t for t in tokenize(text) if t not in stop_words]


def _stop_words(stop_words: str | Sequence[str] | None) -> frozenset[str]:
    if stop_words is None:
        return frozenset()
    if stop_words == "english":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return frozenset(ENGLISH_STOP_WORDS)
    if isinstance(stop_words, str):
        raise NashError(f"unknown stop word list {stop_words!r} (use 'english' or a list)")
    return frozenset(stop_words)


def most_frequent_columns(counts: sp.spmatrix, limit: int) -> np.ndarray:
    """The ``limit`` columns of ``counts`` with the largest totals, in column order; among equal
    totals the earlier column (a vectorizer's columns are alphabetical: the word that sorts first).

    scikit-learn's ``max_features`` takes them by an unstable ``argsort``, whose order among
    equal totals is that of numpy's SIMD sort for the CPU at hand. In canonical Reuters' training
    split 2,060 words share the 10,000th word's total and 83 of them get in: scikit-learn's 83
    and these differed in 80, and its vocabulary of the same documents changed when numpy was
    told not to use AVX2 (``NPY_DISABLE_CPU_FEATURES=X86_V3``). A corpus must give one vocabulary
    on every machine, or its figures (and the VDSH release's sizes) follow the CPU.
    """
    totals = np.asarray(counts.sum(axis=0, dtype=np.float64)).ravel()
    if limit >= len(totals):
        return np.arange(len(totals))
    return np.sort(np.argsort(-totals, kind="stable")[:limit])


class DamagedFeatures(NashError):
    """Saved features that cannot be loaded: ``file`` (``features.json`` or ``features.npz``
    in ``directory``) and what is wrong with it."""

    def __init__(self, directory: Path, file: str, reason: str) -> None:
        super().__init__(f"cannot read {Path(directory) / file}: {reason}")
        self.file, self.reason = file, reason


#: The settings of :class:`TfidfFeatures` (its ``__init__`` parameters).
_PARAMS = ("max_features", "min_df", "max_df", "sublinear_tf", "stop_words")


def _check_settings(
    max_features: object,
    min_df: object,
    max_df: object,
    sublinear_tf: object,
    stop_words: object,
) -> None:
    """:class:`NashError` for a setting the fit would refuse (or misread) later, said when it
    is given: the constraints scikit-learn's vectorizers put on them."""
    if max_features is not None and (not whole_number(max_features) or max_features < 1):
        raise NashError(
            f"max_features must be a whole number of at least 1 or None, not {max_features!r}"
        )
    for name, value in (("min_df", min_df), ("max_df", max_df)):
        share = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
        if not ((share and 0.0 <= value <= 1.0) or (whole_number(value) and value >= 1)):
            raise NashError(
                f"{name} must be a share of the documents from 0.0 to 1.0 or a number of "
                f"documents of at least 1, not {value!r}"
            )
    if not isinstance(sublinear_tf, (bool, np.bool_)):
        raise NashError(f"sublinear_tf must be True or False, not {sublinear_tf!r}")
    listed = isinstance(stop_words, (list, tuple, set, frozenset))
    if not (
        stop_words is None or listed or (isinstance(stop_words, str) and stop_words == "english")
    ):
        raise NashError(
            f"stop_words must be 'english', None or a list of words, not {stop_words!r}"
        )
    if listed and not all(isinstance(word, str) for word in stop_words):
        raise NashError("stop_words must be 'english', None or a list of words (strings)")


class TfidfFeatures:
    """Vocabulary + idf learned from documents; transforms texts to L2-normalised TF-IDF.

    ``max_features`` keeps the most frequent words (after stop words); ``min_df``/``max_df`` as in
    scikit-learn. Saved as ``features.json`` (settings + vocabulary) and ``features.npz`` (idf).
    """

    def __init__(
        self,
        max_features: int | None = 10000,
        min_df: int | float = 1,
        max_df: int | float = 1.0,
        sublinear_tf: bool = True,
        stop_words: str | Sequence[str] | None = "english",
    ) -> None:
        _check_settings(max_features, min_df, max_df, sublinear_tf, stop_words)
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.stop_words = stop_words
        self.vocabulary_: list[str] | None = None
        self.idf_: np.ndarray | None = None
        self._index: dict[str, int] | None = None  # word → column, made by counts()

    # -- fitting ---------------------------------------------------------------------------------
    def _make_vectorizer(self):
        from sklearn.feature_extraction.text import CountVectorizer

        analyzer = partial(_analyze, stop_words=_stop_words(self.stop_words))
        return CountVectorizer(  # (max_features: applied by fit_counts, ties decided)
            analyzer=analyzer, min_df=self.min_df, max_df=self.max_df, dtype=np.float32
        )

    def fit(self, texts: Sequence[str]) -> TfidfFeatures:
        """Learn the vocabulary and the smoothed idf ``ln((1+n)/(1+df)) + 1`` from ``texts``."""
        self.fit_counts(texts)
        return self

    def fit_counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """:meth:`fit`, returning what :meth:`counts` would give for ``texts``, from the same
        tokenisation pass (tokenising is most of the cost of features)."""
        return self._fit_counts(texts)[0]

    def _fit_counts(
        self, texts: Sequence[str]
    ) -> tuple[sp.csr_matrix, tuple[sp.csr_matrix, np.ndarray] | None]:
        """:meth:`fit_counts`, and the counts of every word of ``texts`` (their columns in
        code-point order, the words) where ``min_df`` and ``max_df`` leave none out (the
        defaults), else None: what another vocabulary of the same texts can be cut from."""
        texts = text_list(texts)
        if not texts:
            raise NashError("no documents to learn a vocabulary from")
        limit = self.max_features
        vectorizer = self._make_vectorizer()
        try:
            counts = vectorizer.fit_transform(texts)
        except ValueError as error:  # empty vocabulary, or min_df/max_df exclude every word
            raise NashError(f"no usable words in the documents ({error})") from None
        vocabulary = vectorizer.get_feature_names_out()
        every_word = (counts, vocabulary) if self._keeps_every_word() else None
        if limit is not None and len(vocabulary) > limit:
            keep = most_frequent_columns(counts, limit)
            counts, vocabulary = counts[:, keep], vocabulary[keep]
        self._take(counts, vocabulary.tolist())
        return _csr_counts(counts), every_word

    def _take(self, counts: sp.spmatrix, vocabulary: list[str]) -> None:
        """Learn ``vocabulary`` (the columns of ``counts``) and the idf of the rows it counts."""
        df = np.bincount(sp.csr_matrix(counts).indices, minlength=len(vocabulary))
        n = counts.shape[0]
        self.vocabulary_ = vocabulary
        self.idf_ = (np.log((1.0 + n) / (1.0 + df.astype(np.float64))) + 1.0).astype(np.float32)
        self._index = None

    def _keeps_every_word(self) -> bool:
        """Whether ``min_df`` and ``max_df`` keep every word of any corpus (the defaults do)."""
        min_df, max_df = self.min_df, self.max_df
        low = min_df == 0 or (isinstance(min_df, numbers.Integral) and min_df <= 1)
        return low and isinstance(max_df, float) and max_df >= 1.0

    @property
    def vocabulary_size(self) -> int:
        self._check_fitted()
        return len(self.vocabulary_)

    def _check_fitted(self) -> None:
        if self.vocabulary_ is None:
            raise NashError("the features are not fitted yet")

    # -- transforming ----------------------------------------------------------------------------
    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Raw term counts over the vocabulary, (n, vocabulary_size) float32 CSR.

        Counted here rather than by scikit-learn's ``CountVectorizer``, with the same result to
        the bit (tests/test_features.py): an update that encodes a few files with a saved model
        then needs neither scikit-learn (0.8 s to import) nor its stop words, none of which is
        in the vocabulary.
        """
        self._check_fitted()
        texts = text_list(texts)
        if self._index is None:
            self._index = {word: i for i, word in enumerate(self.vocabulary_)}
        index = self._index
        columns: list[int] = []
        indptr = [0]
        for text in texts:
            columns.extend(index[t] for t in tokenize(text) if t in index)
            indptr.append(len(columns))
        dtype = np.int32 if len(columns) < np.iinfo(np.int32).max else np.int64
        counts = sp.csr_matrix(
            (
                np.ones(len(columns), dtype=np.int64),  # summed exactly, then made float32
                np.asarray(columns, dtype=dtype),
                np.asarray(indptr, dtype=dtype),
            ),
            shape=(len(indptr) - 1, len(self.vocabulary_)),
        )
        counts.sum_duplicates()  # one entry per word and row, columns sorted
        return counts.astype(np.float32)

    def tfidf_from_counts(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """TF-IDF (sublinear tf if set) of a count matrix, each row L2-normalised."""
        self._check_fitted()
        x = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        if self.sublinear_tf:
            np.log(x.data, out=x.data)
            x.data += 1.0
        x = sp.csr_matrix(x @ sp.diags(self.idf_))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        x = sp.csr_matrix(sp.diags(1.0 / norms) @ x, dtype=np.float32)
        x.sort_indices()
        return x

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF, (n, vocabulary_size) float32 CSR."""
        return self.tfidf_from_counts(self.counts(texts))

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        return self.tfidf_from_counts(self.fit_counts(texts))

    # -- persistence (JSON + npz, never pickle) --------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The settings, as plain JSON values (a numpy number given for one becomes Python's);
        ``deep`` as in scikit-learn (nothing nested here), so ``sklearn.base.clone`` works."""

        def plain(value):
            return value.item() if isinstance(value, np.generic) else value

        return {
            "max_features": plain(self.max_features),
            "min_df": plain(self.min_df),
            "max_df": plain(self.max_df),
            "sublinear_tf": plain(self.sublinear_tf),
            "stop_words": self.stop_words
            if self.stop_words is None or isinstance(self.stop_words, str)
            else sorted(self.stop_words),
        }

    def set_params(self, **params) -> TfidfFeatures:
        """Change settings (scikit-learn's ``set_params``), checked as ``__init__`` checks
        them; refit to use them."""
        for name in params:
            if name not in _PARAMS:
                raise NashError(f"unknown feature setting {name!r}: one of {', '.join(_PARAMS)}")
        settings = {name: getattr(self, name) for name in _PARAMS} | params
        _check_settings(**settings)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def save(self, directory: Path) -> None:
        """Write ``features.json`` and ``features.npz`` into ``directory`` (created if needed),
        each as a new file renamed over the old one."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, temporary in self.write_temporary(directory).items():
            os.replace(temporary, directory / name)

    def write_temporary(self, directory: Path) -> dict[str, Path]:
        """Write the two files under temporary names in ``directory``; ``{final name: path}``
        for the caller to rename (a hasher renames them with its own, once all are written)."""
        self._check_fitted()
        config = {
            "format": FORMAT_VERSION,
            "params": self.get_params(),
            "vocabulary": self.vocabulary_,
        }
        text = json.dumps(config, ensure_ascii=False)  # (before anything is written)
        written = {
            "features.json": directory / "features.json.tmp",
            "features.npz": directory / "features.npz.tmp",
        }
        try:
            written["features.json"].write_text(text, encoding="utf-8")
            with open(written["features.npz"], "wb") as f:
                np.savez(f, idf=self.idf_)
        except BaseException:  # (a full disk: nothing of this save is left behind)
            for temporary in written.values():
                temporary.unlink(missing_ok=True)
            raise
        return written

    @classmethod
    def load(cls, directory: Path) -> TfidfFeatures:
        """Rebuild features saved by :meth:`save`; reads data only (``allow_pickle=False``).
        :class:`DamagedFeatures` names the file that is missing, damaged or inconsistent."""
        from nashcli.model_files import check_npz, read_json_object

        directory = Path(directory)
        try:
            config = read_json_object(directory / "features.json")
        except ValueError as error:
            raise DamagedFeatures(directory, "features.json", str(error)) from None
        try:
            check_npz(directory / "features.npz", ("idf",))
            with np.load(directory / "features.npz", allow_pickle=False) as data:
                idf = np.asarray(data["idf"], dtype=np.float32)
        except ValueError as error:  # (check_npz's own words)
            raise DamagedFeatures(directory, "features.npz", str(error)) from None
        except (OSError, KeyError, EOFError, zipfile.BadZipFile) as error:
            reason = f"corrupt npz archive ({error})"
            raise DamagedFeatures(directory, "features.npz", reason) from None
        params, vocabulary = config.get("params"), config.get("vocabulary")
        if config.get("format") != FORMAT_VERSION:
            raise DamagedFeatures(directory, "features.json", "unknown format version")
        if not isinstance(params, dict) or set(params) - set(_PARAMS):
            raise DamagedFeatures(directory, "features.json", "invalid settings")
        if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
            raise DamagedFeatures(directory, "features.json", "no valid vocabulary")
        if idf.ndim != 1 or not np.isfinite(idf).all():
            raise DamagedFeatures(directory, "features.npz", "invalid idf weights")
        if len(vocabulary) != len(idf):
            reason = f"{len(vocabulary)} words but {len(idf)} idf weights in features.npz"
            raise DamagedFeatures(directory, "features.json", reason)
        try:
            self = cls(**params)
        except NashError as error:
            raise DamagedFeatures(directory, "features.json", str(error)) from None
        self.vocabulary_ = vocabulary
        self.idf_ = idf
        return self


@dataclass
class Problem:
    """A hashing problem: TF-IDF inputs ``X_*``, count targets ``C_*``, labels ``Y_*`` (or None).

    ``train`` is the database and what the model learns from, ``val`` (possibly empty) guides early
    stopping, ``test`` holds the queries.
    """

    X_train: sp.csr_matrix
    X_val: sp.csr_matrix
    X_test: sp.csr_matrix
    C_train: sp.csr_matrix
    C_val: sp.csr_matrix
    C_test: sp.csr_matrix
    Y_train: np.ndarray | None = None
    Y_val: np.ndarray | None = None
    Y_test: np.ndarray | None = None
    label_names: list[str] | None = None
    features: TfidfFeatures | None = None
    # TF-IDF of the training rows over their whole vocabulary (words in ≥ GRAPH_MIN_DF of them),
    # for the k-NN graph only; None where that is no larger than the model's vocabulary.
    G_train: sp.csr_matrix | None = None

    @property
    def vocabulary_size(self) -> int:
        return self.X_train.shape[1]

    @property
    def graph_rows(self) -> sp.csr_matrix:
        """The training rows the k-NN graph is built on: ``G_train``, else ``X_train``."""
        return self.G_train if self.G_train is not None else self.X_train

    @property
    def multilabel(self) -> bool:
        return self.Y_train is not None and bool((self.Y_train.sum(axis=1) > 1).any())


def _label_matrix(
    labels: Sequence[Sequence[str]] | None, names: list[str], n: int
) -> np.ndarray | None:
    if labels is None:
        return None
    index = {name: i for i, name in enumerate(names)}
    y = np.zeros((n, len(names)), dtype=bool)
    for row, doc_labels in enumerate(labels):
        for label in doc_labels:
            if label in index:
                y[row, index[label]] = True
    return y


def make_problem(
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    test_texts: Sequence[str],
    train_labels: Sequence[Sequence[str]] | None = None,
    val_labels: Sequence[Sequence[str]] | None = None,
    test_labels: Sequence[Sequence[str]] | None = None,
    **feature_kw,
) -> Problem:
    """Fit TF-IDF features on the training-split texts (train + val) and build a ``Problem``.

    Labels are lists of label names per document (a string alone counts as one label); the label
    set is taken from the training split.
    """
    train_texts, val_texts, test_texts = (
        text_list(texts, name)
        for texts, name in ((train_texts, "train_texts"), (val_texts, "val_texts"),
                            (test_texts, "test_texts"))
    )  # fmt: skip
    for labels, texts, name in (
        (train_labels, train_texts, "train"),
        (val_labels, val_texts, "val"),
        (test_labels, test_texts, "test"),
    ):
        if labels is not None and len(labels) != len(texts):
            raise NashError(f"{len(labels)} {name}_labels for {len(texts)} {name}_texts")
    features = TfidfFeatures(**feature_kw)
    c_fit, every_word = features._fit_counts(train_texts + val_texts)
    if every_word is not None:  # (tokenising is most of the features' time: not twice)
        counts, words = every_word
        del every_word  # (the largest matrix here: not kept past the graph)
        if counts.shape[0] > len(train_texts):
            counts = counts[: len(train_texts)]
        graph_x = graph_features_from_counts(counts, words, features)
        del counts, words
    else:
        graph_x = graph_features(train_texts, features)
    c_train, c_val = c_fit[: len(train_texts)], c_fit[len(train_texts) :]
    c_test = features.counts(test_texts)
    x_train, x_val, x_test = (features.tfidf_from_counts(c) for c in (c_train, c_val, c_test))

    def as_lists(labels):
        if labels is None:
            return None
        return [[lab] if isinstance(lab, str) else list(lab) for lab in labels]

    train_labels, val_labels, test_labels = map(as_lists, (train_labels, val_labels, test_labels))
    names = None
    if train_labels is not None:
        names = sorted({lab for doc in train_labels + (val_labels or []) for lab in doc})
    return Problem(
        X_train=x_train,
        X_val=x_val,
        X_test=x_test,
        C_train=c_train,
        C_val=c_val,
        C_test=c_test,
        Y_train=_label_matrix(train_labels, names or [], len(train_texts)),
        Y_val=_label_matrix(val_labels, names or [], len(val_texts)),
        Y_test=_label_matrix(test_labels, names or [], len(test_texts)),
        label_names=names,
        features=features,
        G_train=graph_x,
    )


def graph_features(texts: list[str], features: TfidfFeatures) -> sp.csr_matrix | None:
    """TF-IDF of ``texts`` over every word in ≥ ``GRAPH_MIN_DF`` of them (``features``' other
    settings), or None where that vocabulary is no larger than ``features``' own."""
    graph = TfidfFeatures(**{**features.get_params(), "max_features": None, "min_df": GRAPH_MIN_DF})
    try:
        counts = graph.fit_counts(texts)
    except NashError:  # no word in two documents: a tiny or degenerate collection
        return None
    if graph.vocabulary_size <= features.vocabulary_size:
        return None
    return graph.tfidf_from_counts(counts)


def graph_features_from_counts(
    counts: sp.csr_matrix, words: np.ndarray, features: TfidfFeatures
) -> sp.csr_matrix | None:
    """:func:`graph_features` of the texts whose counts of every word (CSR without explicit
    zeros, its columns the ``words`` in code-point order, as scikit-learn's vectorizers sort
    them) are ``counts``: the same matrix to the bit, without tokenising the texts again."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    keep = np.flatnonzero(df >= GRAPH_MIN_DF)
    if len(keep) == 0 or len(keep) <= features.vocabulary_size:
        return None
    graph = TfidfFeatures(**{**features.get_params(), "max_features": None, "min_df": GRAPH_MIN_DF})
    kept = counts[:, keep]
    graph._take(kept, words[keep].tolist())
    return graph.tfidf_from_counts(_csr_counts(kept))


def _csr_counts(counts: sp.spmatrix) -> sp.csr_matrix:
    """A vectorizer's count matrix as float32 CSR with sorted indices."""
    out = sp.csr_matrix(counts, dtype=np.float32)
    out.sort_indices()
    return out


def carve_validation(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split of ``range(n)`` into (train indices, validation indices), both sorted.

    Validation gets ``round(fraction * n)`` documents, none when ``n`` is tiny (under 20).
    """
    n_val = 0 if n < 20 else int(round(fraction * n))
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


#: Similarities :func:`knn_graph` holds at once for sparse rows (a chunk of rows × all rows,
#: float32: 64 MB), beside its argpartition's int64 copy. 1,024 rows a chunk held 1024 × n:
#: 0.8 GB of similarities and indices at 50,000 documents (``benchmarks/knn_graph_time.py``).
GRAPH_CHUNK_CELLS = 1 << 24


def knn_graph(
    x: sp.csr_matrix | np.ndarray, k: int, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of each row of L2-normalised ``x`` (sparse or dense) by cosine,
    itself excluded.

    Returns ``(indices int64 (n, k), similarities float32 (n, k))``, nearest first, and among
    equal similarities the earlier row first (and in, where they tie for the last places), so
    the same similarities give the same graph on every CPU: ``argpartition``'s order among ties
    is numpy's SIMD code's, and on the 20 Newsgroups VDSH release, where 1,587 rows have ties
    among their 50 nearest, it gave another graph when numpy was told not to use AVX2. (Sparse
    rows' similarities are the same everywhere; dense rows' come from BLAS, whose sums can
    differ in the last bit between CPUs, chunk sizes and threads.) ``k`` is capped at ``n - 1``.
    Exact, in row chunks (memory ``chunk × n``; by default 1,024 rows, fewer for sparse rows
    of over 16,384 documents: at most :data:`GRAPH_CHUNK_CELLS` similarities, at least 128
    rows; each row's similarities do not depend on the chunk for sparse rows, so neither does
    the graph).

    A row with fewer than ``k`` rows of positive similarity (sparse TF-IDF: fewer than ``k``
    documents share a word with it) is padded with its own index, similarity 0, and consumers
    read a row's own index as "no neighbour": the padding used to be whichever dissimilar rows
    came first, the lowest row numbers, and a document with no neighbours learnt its
    neighbourhood's words from documents 0-49 (13 of TMC's 19,367 training documents; in
    folders of random single-label Reuters articles, 95 % of the documents at 50 articles,
    12 % at 100, 1 % at 200). :func:`real_neighbours` tells the padding apart.
    """
    n = x.shape[0]
    k = max(0, min(k, n - 1))
    indices = np.zeros((n, k), dtype=np.int64)
    sims = np.zeros((n, k), dtype=np.float32)
    if k == 0:
        return indices, sims
    xt = sp.csr_matrix(x.T) if sp.issparse(x) else x.T
    if chunk is None:  # (dense rows: always 1,024, whose BLAS sums the recorded graphs used)
        chunk = max(128, min(1024, GRAPH_CHUNK_CELLS // n)) if sp.issparse(x) else 1024
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        s = x[start:stop] @ xt
        s = np.asarray(s.todense() if sp.issparse(s) else s, dtype=np.float32)
        s[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        part_s = np.take_along_axis(s, part, axis=1)
        _take_ties_in_order(s, part, part_s)
        order = np.lexsort((part, -part_s), axis=1)  # nearest first, then the earlier row
        part, part_s = (
            np.take_along_axis(part, order, axis=1),
            np.take_along_axis(part_s, order, axis=1),
        )
        alone = ~(part_s > 0)
        if alone.any():
            part[alone] = np.broadcast_to(np.arange(start, stop)[:, None], part.shape)[alone]
            part_s[alone] = 0.0
        indices[start:stop], sims[start:stop] = part, part_s
    return indices, sims


def real_neighbours(neighbors: np.ndarray) -> np.ndarray:
    """bool (n, k): which entries of a :func:`knn_graph` index matrix are real neighbours,
    not the padding (a row's own index) of a row short of documents sharing a word with it."""
    return neighbors != np.arange(len(neighbors))[:, None]


def _take_ties_in_order(s: np.ndarray, part: np.ndarray, part_s: np.ndarray) -> None:
    """Where a row's k-th largest similarity in ``s`` ties with one ``argpartition`` left out,
    make ``part`` (and ``part_s``) hold the earliest of the tied columns, in place: which of them
    ``argpartition`` took depends on the CPU. Rare (44 of the release's 10,256 rows at k=50)."""
    k = part.shape[1]
    kth = part_s.min(axis=1)
    for row in np.flatnonzero((s >= kth[:, None]).sum(axis=1) > k):
        above = np.flatnonzero(s[row] > kth[row])
        tied = np.flatnonzero(s[row] == kth[row])[: k - len(above)]
        part[row] = np.concatenate([above, tied])
        part_s[row] = s[row, part[row]]
