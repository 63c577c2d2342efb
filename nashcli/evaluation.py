"""The papers' retrieval evaluation: train each method, hash train and test, score precision@100.

Database = the corpus's training split, queries = its test split, a hit = a database document
sharing at least one label with the query. Where the validation part that guides early stopping
was carved from the training split (the canonical split of a corpus without validation documents
of its own), it stays in the database: it is training-split data the model never learnt from, and
leaving it out would search a database a tenth smaller than the corpus's (``include_val``).
Precision is reported twice (see :mod:`nashcli.metrics`): ties in Hamming distance broken by
database position, and the exact tie-aware expectation.

``tfidf`` is the no-hashing reference: exact cosine similarity of the TF-IDF vectors
(distance = -cosine). It does not depend on a bit length, so it is evaluated once and reported
with ``bits = 0``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nashcli.datasets import Dataset, Splits, make_splits
from nashcli.errors import NashError

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

    from nashcli.features import Problem

#: The no-hashing reference method (exact TF-IDF cosine); reported with ``bits = 0``.
EXACT = "tfidf"
TOP_K = 100

EpochCallback = Callable[[int, int, dict], None]


@dataclass
class EvalResult:
    """One (method, bit length) row of the table, plus the codes when asked to keep them."""

    method: str
    bits: int
    supervised: bool
    precision_at_100: float
    precision_at_100_tie_aware: float
    train_seconds: float
    seed: int = 0
    train_codes: np.ndarray | None = field(default=None, repr=False)
    test_codes: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The fields of ``nash eval --json``'s ``results`` entries."""
        return {
            "method": self.method,
            "bits": self.bits,
            "supervised": self.supervised,
            "precision_at_100": self.precision_at_100,
            "precision_at_100_tie_aware": self.precision_at_100_tie_aware,
            "train_seconds": self.train_seconds,
        }


class Reporter:
    """Progress hooks for :func:`evaluate`; the default does nothing."""

    def start(self, method: str, bits: int, index: int, total: int) -> None:
        """A run begins (``index`` of ``total``)."""

    def epoch(self, epoch: int, max_epochs: int, info: dict) -> None:
        """An epoch of the current run ended."""

    def done(self, result: EvalResult) -> None:
        """A run finished."""


# --------------------------------------------------------------------------------------------
# Argument parsing shared by the CLI and the benchmark script


def parse_bits(text: str | Sequence[int]) -> list[int]:
    """``"8,16,32"`` -> ``[8, 16, 32]``; each a multiple of 8 within 8..256, else NashError."""
    items = text.split(",") if isinstance(text, str) else list(text)
    bits: list[int] = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            # int() reads other scripts' digits ("８") and underscores ("1_6" is 16); no
            # option of nash does
            if not (item.isascii() and item.lstrip("+-").isdigit()):
                raise ValueError(item)
            value = int(item)
        except ValueError:
            raise NashError(f"--bits: {item!r} is not a whole number") from None
        if value % 8 or not 8 <= value <= 256:
            raise NashError(f"--bits: {value} must be a multiple of 8 between 8 and 256")
        if value not in bits:
            bits.append(value)
    if not bits:
        raise NashError("--bits: give at least one bit length, e.g. 8,16,32,64,128")
    return bits


def available_methods() -> tuple[str, ...]:
    """Every method ``nash eval`` can run (the engine's list, which includes ``tfidf``)."""
    from nashcli.methods import METHODS

    return tuple(METHODS) if EXACT in METHODS else (*METHODS, EXACT)


def parse_methods(text: str | Sequence[str] | None) -> list[str]:
    """``"nash,lsh"`` -> ``["nash", "lsh"]``; ``None``/``"all"`` -> every method."""
    known = available_methods()
    if text is None:
        return list(known)
    items = text.split(",") if isinstance(text, str) else list(text)
    methods: list[str] = []
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        if name == "all":
            methods.extend(m for m in known if m not in methods)
            continue
        if name not in known:
            raise NashError(f"--methods: unknown method {name!r} (known: {', '.join(known)})")
        if name not in methods:
            methods.append(name)
    if not methods:
        raise NashError(f"--methods: give at least one of {', '.join(known)}")
    return methods


# --------------------------------------------------------------------------------------------
# Evaluation


def prepare(
    dataset: Dataset, split: str = "canonical", seed: int = 0, **feature_kw
) -> tuple[Problem, Splits]:
    """TF-IDF problem (train = database, val = early stopping, test = queries) of ``dataset``."""
    from nashcli.features import make_problem

    splits = make_splits(dataset, split, seed=seed)
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = (
        dataset.subset(part) for part in (splits.train, splits.val, splits.test)
    )
    problem = make_problem(train_x, val_x, test_x, train_y, val_y, test_y, **feature_kw)
    return problem, splits


def database_labels(problem: Problem, include_val: bool = False) -> np.ndarray:
    """bool (documents x labels) of the database: the training part, then the validation part
    where it is searched too (``include_val``)."""
    y_train = np.asarray(problem.Y_train, dtype=bool)
    return np.vstack([y_train, np.asarray(problem.Y_val, dtype=bool)]) if include_val else y_train


def database_ids(dataset: Dataset, splits: Splits, include_val: bool = False) -> list[str]:
    """The ids of the database's documents, in :func:`database_labels`' order (the validation
    part carved from the training split comes after the rest of it)."""
    parts = (splits.train, splits.val) if include_val else (splits.train,)
    return [dataset.ids[i] for part in parts for i in part]


def database_rows(problem: Problem, include_val: bool = False) -> sp.csr_matrix:
    """TF-IDF rows (CSR) of the database, in :func:`database_labels`' order."""
    import scipy.sparse as sp

    x_train = problem.X_train.tocsr()
    return sp.vstack([x_train, problem.X_val.tocsr()], format="csr") if include_val else x_train


def caveats(problem: Problem, k: int = TOP_K, include_val: bool = False) -> list[str]:
    """What makes the figures of ``problem`` mean less than they seem, one line each; raises
    :class:`NashError` when no training document has a label (every precision would be 0)."""
    y_train = database_labels(problem, include_val)
    y_test = np.asarray(problem.Y_test, dtype=bool)
    if not y_train.any():
        raise NashError("no training document has a label: there is nothing to find")
    notes = []
    n_train, n_test = y_train.shape[0], y_test.shape[0]
    if n_train < k:
        notes.append(
            f"the database holds {n_train:,} document{'' if n_train == 1 else 's'}, fewer "
            f"than {k}: precision@{k} is the "
            f"precision of all {n_train:,}, the same for every method"
        )
    orphans = int((~(y_test & y_train.any(axis=0)).any(axis=1)).sum())
    if orphans:
        notes.append(
            f"{orphans:,} of {n_test:,} queries share no label with any training document "
            "(unlabelled, or labels only the test part has): each counts as precision 0"
        )
    return notes


def score_codes(
    train_codes: np.ndarray,
    train_labels: np.ndarray,
    test_codes: np.ndarray,
    test_labels: np.ndarray,
    k: int = TOP_K,
) -> tuple[float, float]:
    """(positional, tie-aware) precision@k of Hamming retrieval of train codes for test codes."""
    from nashcli.metrics import precision_at_k

    return precision_at_k(train_codes, train_labels, test_codes, test_labels, k=k)


def score_exact(problem: Problem, k: int = TOP_K, include_val: bool = False) -> tuple[float, float]:
    """(positional, tie-aware) precision@k of exact TF-IDF cosine retrieval (no hashing)."""
    from nashcli.metrics import precision_at_k

    x_train, x_test = database_rows(problem, include_val), problem.X_test.tocsr()

    def neg_cosine(query_rows: np.ndarray, db_rows: np.ndarray) -> np.ndarray:
        # rows are L2-normalised, so the dot product is the cosine.
        sims = x_test[query_rows[:, 0]] @ x_train.T
        return -np.asarray(sims.todense())

    queries = np.arange(x_test.shape[0])[:, None]
    database = np.arange(x_train.shape[0])[:, None]
    labels = database_labels(problem, include_val)
    return precision_at_k(database, labels, queries, problem.Y_test, k=k, distance=neg_cosine)


def run_method(
    problem: Problem,
    method: str,
    bits: int,
    *,
    supervised: bool = False,
    seed: int = 0,
    device: str = "auto",
    k: int = TOP_K,
    on_epoch: EpochCallback | None = None,
    keep_codes: bool = False,
    include_val: bool = False,
) -> EvalResult:
    """Train ``method`` at ``bits`` on ``problem`` and score it (``tfidf``: exact cosine).

    The database is the training part, and the validation part after it with ``include_val``
    (see the module's docstring); ``train_codes`` are the database's codes."""
    if method == EXACT:
        positional, tie_aware = score_exact(problem, k=k, include_val=include_val)
        return EvalResult(EXACT, 0, False, positional, tie_aware, 0.0, seed)
    import torch  # noqa: F401 - imported before the clock starts: ~1 s of the first run's time

    from nashcli.methods import encode_rows, fit_model

    supervised = supervised and uses_labels(method)
    start = time.perf_counter()
    model, _ = fit_model(
        method,
        bits,
        problem,
        supervised=supervised,
        seed=seed,
        device=device,
        on_epoch=on_epoch,
    )
    parts = [problem.X_train, problem.X_val] if include_val else [problem.X_train]
    train_bits = np.vstack([np.asarray(encode_rows(model, x), dtype=bool) for x in parts])
    test_bits = np.asarray(encode_rows(model, problem.X_test), dtype=bool)
    seconds = time.perf_counter() - start
    labels = database_labels(problem, include_val)
    expected = ((len(labels), bits), (problem.X_test.shape[0], bits))
    if (train_bits.shape, test_bits.shape) != expected:  # an engine bug, not a user error
        raise RuntimeError(
            f"{method} returned codes of shape {train_bits.shape}/{test_bits.shape}, "
            f"expected {expected[0]}/{expected[1]}"
        )
    positional, tie_aware = score_codes(train_bits, labels, test_bits, problem.Y_test, k)
    return EvalResult(
        method,
        bits,
        supervised,
        positional,
        tie_aware,
        seconds,
        seed,
        train_codes=train_bits if keep_codes else None,
        test_codes=test_bits if keep_codes else None,
    )


def uses_labels(method: str) -> bool:
    """Whether ``--supervised`` changes ``method`` (LSH and exact cosine never see labels)."""
    if method == EXACT:
        return False
    from nashcli import methods

    spec = getattr(methods, "SPECS", {}).get(method)
    return getattr(spec, "kind", None) != "lsh"


def plan(methods: Sequence[str], bits: Sequence[int]) -> list[tuple[str, int]]:
    """The (method, bits) runs of a table, in order; ``tfidf`` once, with bits 0."""
    runs: list[tuple[str, int]] = []
    for method in methods:
        if method == EXACT:
            runs.append((EXACT, 0))
        else:
            runs.extend((method, b) for b in bits)
    return runs


def evaluate(
    problem: Problem,
    methods: Sequence[str],
    bits: Sequence[int],
    *,
    supervised: bool = False,
    seed: int = 0,
    device: str = "auto",
    k: int = TOP_K,
    reporter: Reporter | None = None,
    keep_codes: bool = False,
    include_val: bool = False,
) -> list[EvalResult]:
    """Run every (method, bit length) on ``problem``; results in table order (``include_val``:
    the validation part is searched too, see :func:`run_method`)."""
    if problem.Y_train is None or problem.Y_test is None:
        raise NashError("evaluation needs labelled documents")
    reporter = reporter or Reporter()
    runs = plan(methods, bits)
    results: list[EvalResult] = []
    for index, (method, n_bits) in enumerate(runs):
        reporter.start(method, n_bits, index, len(runs))
        result = run_method(
            problem,
            method,
            n_bits,
            supervised=supervised,
            seed=seed,
            device=device,
            k=k,
            on_epoch=reporter.epoch,
            keep_codes=keep_codes,
            include_val=include_val,
        )
        reporter.done(result)
        results.append(result)
    return results


def check_codes_directory(directory: Path, files: Sequence[str] = ()) -> None:
    """Raise :class:`NashError` unless ``directory`` is, or can be made, a folder that takes
    ``files`` (the names :func:`save_codes` will write). ``nash eval`` checks before training,
    so a bad ``--save-codes`` does not cost the runs; nothing is left created by the check."""
    directory = Path(os.path.abspath(directory))
    existing = directory
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent  # the nearest entry there is, which mkdir would meet
    if existing.is_symlink() and not existing.exists():  # an unmounted drive's link
        raise NashError(
            f"--save-codes: cannot create {directory}: {existing} is a link to "
            f"{os.readlink(existing)}, which is not there"
        )
    if not existing.is_dir():
        raise NashError(f"--save-codes: cannot create {directory}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NashError(f"--save-codes: cannot write in {existing}: permission denied")
    try:  # what access() cannot tell: a read-only mount, /proc
        os.rmdir(tempfile.mkdtemp(prefix=".nash-check-", dir=existing))
    except OSError as error:
        raise NashError(f"--save-codes: cannot write in {existing}: {error.strerror}") from None
    for name in files:
        if existing == directory and (directory / name).is_dir():
            raise NashError(f"--save-codes: cannot write {directory / name}: it is a folder")


def save_codes(
    results: Sequence[EvalResult],
    problem: Problem,
    directory: Path,
    include_val: bool = False,
    *,
    ids: tuple[Sequence[str], Sequence[str]] | None = None,
) -> list[Path]:
    """Write ``METHOD-BITS.npz`` per hashing result (``tfidf`` has no codes, so no file).

    Each file holds ``train_codes``/``test_codes`` (uint8, ``np.packbits`` of the 0/1 code
    matrix along axis 1) and ``train_labels``/``test_labels`` (bool, documents x labels); the
    ``train_`` arrays are the database (with the validation part where ``include_val``). With
    ``ids`` (the database's and the queries' document ids, :func:`database_ids`) it holds
    ``train_ids``/``test_ids`` too, and ``label_names`` names the label columns: rows and
    columns can be matched with the corpus file's documents and labels.
    """
    directory = Path(directory)
    coded = [r for r in results if r.train_codes is not None and r.test_codes is not None]
    if coded:  # no folder for tfidf alone
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise NashError(f"--save-codes: cannot create {directory}: {error}") from None
    named_rows = {}
    if ids is not None:
        named_rows = {
            key: np.asarray(list(part), dtype=str)
            for key, part in zip(("train_ids", "test_ids"), ids, strict=True)
        }
    written = []
    for result in coded:
        path = directory / f"{result.method}-{result.bits}.npz"
        partial = path.with_name(path.stem + ".partial.npz")
        try:
            np.savez_compressed(
                partial,
                train_codes=np.packbits(result.train_codes, axis=1),
                test_codes=np.packbits(result.test_codes, axis=1),
                train_labels=database_labels(problem, include_val),
                test_labels=np.asarray(problem.Y_test, dtype=bool),
                label_names=np.asarray(problem.label_names or [], dtype=str),
                **named_rows,
            )
            partial.replace(path)
        except BaseException as error:  # no half-written file is left (a full disk, Ctrl-C)
            partial.unlink(missing_ok=True)
            if not isinstance(error, OSError):
                raise
            reason = error.strerror or error
            raise NashError(f"--save-codes: cannot write {path}: {reason}") from None
        written.append(path)
    return written
