"""Texts in, binary codes out: TF-IDF features + a hashing model, fit, encode, save and load.

This is what ``nash index`` uses. A saved hasher is a directory of plain data: ``features.json`` /
``features.npz`` (vocabulary, idf) and ``model.json`` / ``model.npz`` (config with version stamps,
weights). Loading reads arrays with ``allow_pickle=False``, so a hasher file never executes code.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import nashcli
from nashcli.errors import NashError
from nashcli.features import _PARAMS as _FEATURE_PARAMS
from nashcli.features import (
    DamagedFeatures,
    TfidfFeatures,
    make_problem,
    text_list,
    whole_number,
)
from nashcli.methods import DEFAULT_METHOD, METHODS, OnEpoch

FORMAT_VERSION = 1
MIN_DOCUMENTS = 2
#: Every collection trains on all its documents for a fixed number of optimiser steps (at least
#: one pass over each document) instead of holding out a tenth to keep the epoch with the lowest
#: validation loss: that loss does not follow retrieval quality. On a few hundred documents it
#: was lowest after the first epoch, so the index kept codes that had hardly learnt (800 20NG
#: articles, 5 topics: Hamming precision@10 0.43 there, 0.73-0.76 after 20-40 epochs); on
#: 10,000 it let training run on while the default (fused) ranking got worse (0.68 against 0.71
#: after 200 steps). Measured along training (precision@10 by folder, batches of 256,
#: benchmarks/training_curves.py), retrieval peaked after 120-200 steps from 200 to 3,200
#: documents; from 2,500 to 18,846 the fused ranking peaked after 100-290 steps and then fell
#: (by 0.02-0.03 at 600 on 20NG) while the Hamming order mostly kept improving, so from 5,000
#: documents the schedule takes 200 steps, which cost the fused ranking nothing there and gave
#: better codes than 150; on 800-1,600 documents 200 were worse than 150 on all six folders
#: (README, "Small folders" and "Larger collections").
TRAINING_STEPS = 150
LARGE_COLLECTION = 5000
LARGE_COLLECTION_STEPS = 200
#: In large collections shorter codes take longer to learn: on 10,000 20NG articles the fused
#: ranking peaked after 160-200 steps at 64 and 128 bits, 200-320 at 32 and 320-480 at 8 and 16,
#: and the codes themselves (the Hamming order, a small re-ranked pool) kept improving longer
#: the shorter they were (also at 16 bits on all 9,160 single-label Reuters articles). There,
#: below ``FULL_SPEED_BITS`` the schedule grows by half for every halving of the code, to at
#: most twice as many steps (32 bits: 1.5×, 16 and fewer: 2×). Not below ``LARGE_COLLECTION``
#: documents: on 400-1,600 20NG articles at 16 bits, 300 steps were worse than 150 (fused
#: 0.770 / 0.835 / 0.866 against 0.789 / 0.837 / 0.873, 3 folders a size).
FULL_SPEED_BITS = 64
#: A larger collection is fitted on a random sample of this many documents (vocabulary, neighbour
#: graph, model); every document is still encoded. The default model's TF-IDF neighbour graph
#: costs time quadratic in the documents it is built on: a first `nash index` of 120,000
#: documents took 456 s fitted on all against 117 s with the cap (benchmarks/large_folder.py),
#: and a million would take about 10 hours. Below the cap nothing changes. Sampling costs some
#: precision: 20 Newsgroups, all 18,846 articles, fitted on all / a random 10,000 / 5,000:
#: fused precision@10 0.775 / 0.762 / 0.756; Reuters, 9,160 articles, all / 5,000 / 2,500:
#: 0.887 / 0.888 / 0.888 (`benchmarks/collections.py --training-caps`).
MAX_TRAINING_DOCUMENTS = 50_000
#: The largest seed: scikit-learn's random states (k-means) take 32-bit ones.
MAX_SEED = 2**32 - 1
#: What ``model.json``'s ``fit`` records of how the hasher trains.
_FIT_SETTINGS = ("time_budget", "max_epochs", "max_documents")


def steps_factor(bits: int) -> float:
    """How many times the large-collection schedule's steps ``bits``-bit codes train for."""
    return min(2.0, max(1.0, 1.0 + math.log2(FULL_SPEED_BITS / max(bits, 1)) / 2))


def epochs_for_steps(method: str, documents: int, steps: int) -> int:
    """Epochs over ``documents`` that make about ``steps`` optimiser steps of ``method``'s batch
    size (at least one)."""
    from nashcli.methods import SPECS
    from nashcli.training import TrainConfig

    batch = int(dict(SPECS[method].train).get("batch_size", TrainConfig.batch_size))
    per_epoch = max(1, math.ceil(documents / batch))
    return max(1, math.ceil(steps / per_epoch))


def scheduled_epochs(method: str, documents: int, bits: int = FULL_SPEED_BITS) -> int:
    """Epochs of the step schedule for a collection of ``documents`` and ``bits``-bit codes.

    The schedule was measured with the default method; a method that trains otherwise (other
    batches, rates, dropout or rounds: smaller or noisier steps) gets at least the minimum
    number of epochs of training, as every method had before the schedule.
    """
    from nashcli.methods import SPECS
    from nashcli.training import TrainConfig

    steps = TRAINING_STEPS
    if documents >= LARGE_COLLECTION:
        steps = round(LARGE_COLLECTION_STEPS * steps_factor(bits))
    epochs = epochs_for_steps(method, documents, steps)
    spec, default = SPECS[method], SPECS[DEFAULT_METHOD]
    trains_like_default = (spec.kind, spec.train, spec.dropout, spec.rounds) == (
        default.kind,
        default.train,
        default.dropout,
        default.rounds,
    )
    return epochs if trains_like_default else max(TrainConfig.min_epochs, epochs)


class SemanticHasher:
    """TF-IDF features and a hashing model (``method``) producing ``n_bits``-bit codes.

    ``time_budget`` caps training seconds (the model keeps its best weights so far);
    ``max_epochs`` sets the epochs (None: the step schedule, :func:`scheduled_epochs`);
    ``max_documents`` how many documents, drawn at random, it is fitted on at most (None: all).
    Other keywords go to ``TfidfFeatures`` (``max_features``, ``min_df``, ``stop_words``...).
    """

    def __init__(
        self,
        n_bits: int = 64,
        method: str = DEFAULT_METHOD,
        device: str = "auto",
        seed: int = 0,
        *,
        time_budget: float | None = 40.0,
        max_epochs: int | None = None,
        max_documents: int | None = MAX_TRAINING_DOCUMENTS,
        **feature_kw,
    ) -> None:
        if method not in METHODS or method == "tfidf":
            raise NashError(f"unknown hashing method {method!r}")
        if not whole_number(n_bits) or not 1 <= n_bits <= 1024:
            raise NashError(
                f"the number of bits must be a whole number from 1 to 1024, not {n_bits!r}"
            )
        if not whole_number(seed) or not 0 <= seed <= MAX_SEED:
            raise NashError(f"the seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}")
        try:
            TfidfFeatures(**feature_kw)
        except TypeError:
            unknown = ", ".join(map(repr, sorted(set(feature_kw) - set(_FEATURE_PARAMS))))
            raise NashError(
                f"unknown setting {unknown} (the hasher's own or a feature's: "
                f"{', '.join(_FEATURE_PARAMS)})"
            ) from None
        _check_device(device)
        if time_budget is not None and (
            not isinstance(time_budget, numbers.Real)
            or isinstance(time_budget, bool)
            or not time_budget >= 0  # (NaN too; 0: the fewest epochs, TrainConfig.min_epochs)
        ):
            raise NashError(
                f"time_budget must be a number of seconds (0 or more) or None, not {time_budget!r}"
            )
        if max_epochs is not None and (not whole_number(max_epochs) or max_epochs < 1):
            raise NashError(
                f"max_epochs must be a whole number of at least 1 or None, not {max_epochs!r}"
            )
        if max_documents is not None and (
            not whole_number(max_documents) or max_documents < MIN_DOCUMENTS
        ):
            raise NashError(
                f"max_documents must be a whole number of at least {MIN_DOCUMENTS} or None, "
                f"not {max_documents!r}"
            )
        self.n_bits = int(n_bits)  # (a numpy integer would not go into model.json)
        self.method = method
        self.device = device
        self.seed = int(seed)
        self.time_budget = time_budget
        self.max_epochs = max_epochs
        self.max_documents = max_documents
        self.feature_kw = feature_kw
        self.features_: TfidfFeatures | None = None
        self.model_ = None
        self.train_info_: dict = {}
        self.fit_rows_: sp.csr_matrix | None = None

    # -- scikit-learn's parameter protocol ---------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        """The ``__init__`` arguments (feature settings flattened in), as scikit-learn's
        ``get_params``: ``sklearn.base.clone`` makes an unfitted copy from them."""
        return {
            "n_bits": self.n_bits,
            "method": self.method,
            "device": self.device,
            "seed": self.seed,
            "time_budget": self.time_budget,
            "max_epochs": self.max_epochs,
            "max_documents": self.max_documents,
            **self.feature_kw,
        }

    def set_params(self, **params) -> SemanticHasher:
        """Change settings, checked as ``__init__`` checks them; a changed setting drops the
        fitted model (its codes would not be what the settings say): fit again."""
        before = self.get_params()
        settings = {**before, **params}
        checked = type(self)(**settings)
        for name in ("n_bits", "method", "device", "seed", "time_budget", "max_epochs",
                     "max_documents", "feature_kw"):  # fmt: skip
            setattr(self, name, getattr(checked, name))
        if settings != before:  # a fitted model is not what the settings say now: refit it
            self.features_, self.model_, self.train_info_, self.fit_rows_ = None, None, {}, None
        return self

    # -- fit / encode ----------------------------------------------------------------------------
    def training_sample(self, n_documents: int) -> np.ndarray | None:
        """The sorted positions of the documents :meth:`fit` trains on out of ``n_documents``
        (a random ``max_documents`` of them), or None when it trains on all. A caller with
        more documents than it wants in memory reads these, and passes ``collection``."""
        if self.max_documents is None or n_documents <= self.max_documents:
            return None
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n_documents, self.max_documents, replace=False))

    def fit(
        self,
        texts: Sequence[str],
        y: object = None,
        *,
        on_epoch: OnEpoch | None = None,
        collection: int | None = None,
        keep_rows: bool = False,
    ) -> SemanticHasher:
        """Learn the vocabulary and train the model on ``texts`` (unlabelled; ≥ 2 documents;
        ``y`` is ignored, as by scikit-learn's unsupervised transformers, so that a ``Pipeline``
        that passes its labels along can hold it):
        every document (a random ``max_documents`` of them when there are more), for
        ``max_epochs`` when given, else for the step schedule (:func:`scheduled_epochs`).
        ``collection``: how many documents ``texts`` were drawn from by
        :meth:`training_sample` (recorded in ``train_info_``), when the caller drew them.
        ``keep_rows``: keep the texts' TF-IDF rows in ``fit_rows_`` (where it fitted on all)."""
        from nashcli import methods

        texts = text_list(texts)
        if len(texts) < MIN_DOCUMENTS:
            raise NashError(f"need at least {MIN_DOCUMENTS} documents to learn codes from")
        pick = self.training_sample(len(texts))
        if collection is None:
            collection = len(texts)
        if pick is not None:
            texts = [texts[i] for i in pick]
        problem = make_problem(texts, [], [], **self.feature_kw)
        max_epochs = self.max_epochs
        if max_epochs is None:
            max_epochs = scheduled_epochs(self.method, len(texts), self.n_bits)
        model, result = methods.fit_model(
            self.method,
            self.n_bits,
            problem,
            seed=self.seed,
            device=self.device,
            on_epoch=on_epoch,
            time_budget=self.time_budget,
            max_epochs=max_epochs,
        )
        self.features_ = problem.features
        self.model_ = model
        # The training texts' TF-IDF rows, which vectorize(texts) would give again, to the bit
        # (tests/test_pipeline.py): a caller that encodes them next takes them rather than
        # tokenising the texts twice (and then drops them).
        self.fit_rows_ = problem.X_train if keep_rows and pick is None else None
        self.train_info_ = {
            "documents": len(texts),
            "collection": collection,
            "vocabulary": problem.vocabulary_size,
        }
        if result is not None:
            self.train_info_.update(
                epochs=result.epochs, best_epoch=result.best_epoch, seconds=result.seconds
            )
        return self

    def _check_fitted(self) -> None:
        if self.model_ is None or self.features_ is None:
            raise NashError("the hasher is not trained yet")

    def vectorize(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows of ``texts`` (for re-ranking by cosine)."""
        self._check_fitted()
        return self.features_.transform(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Deterministic codes, bool (n, n_bits)."""
        from nashcli.methods import encode_rows

        return encode_rows(self.model_, self.vectorize(texts))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`encode` under scikit-learn's name."""
        return self.encode(texts)

    def fit_transform(
        self, texts: Sequence[str], y: object = None, *, on_epoch: OnEpoch | None = None
    ) -> np.ndarray:
        """:meth:`fit` on ``texts`` (``y`` ignored), then their codes."""
        texts = text_list(texts)  # (an iterator would be used up by the fit)
        self.fit(texts, on_epoch=on_epoch, keep_rows=True)
        rows, self.fit_rows_ = self.fit_rows_, None  # (the fit's rows: not tokenised twice)
        return self.encode(texts) if rows is None else self.encode_vectors(rows)

    def encode_vectors(self, x: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Codes of TF-IDF rows already computed by :meth:`vectorize` (any scipy sparse
        matrix or a dense array of finite values, one column per word)."""
        from nashcli.methods import encode_rows

        self._check_fitted()
        x = sp.csr_matrix(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.features_.vocabulary_size:
            raise NashError(
                f"expected rows of {self.features_.vocabulary_size} TF-IDF weights "
                f"(one per word of the vocabulary), got shape {x.shape}"
            )
        if not np.isfinite(x.data).all():
            raise NashError("the TF-IDF rows hold NaN or infinite values")
        return encode_rows(self.model_, x)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        """Write the hasher into ``directory`` (created if needed): JSON + npz, no pickle."""
        import torch

        from nashcli.baselines import LSH

        self._check_fitted()
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # (what a disk refuses stays an OSError)
            raise NashError(
                f"{directory}: not a folder (the hasher is saved into a folder)"
            ) from None
        if isinstance(self.model_, LSH):
            kind, model_config = "lsh", {"n_bits": self.n_bits, "seed": self.seed}
            arrays = {"planes": self.model_.planes_}
        else:
            kind = "vdsh" if hasattr(self.model_, "fit_thresholds") else "nash"
            model_config = self.model_.config.to_dict()
            arrays = {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        config = {
            "format": FORMAT_VERSION,
            "versions": {
                "nashcli": nashcli.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "method": self.method,
            "n_bits": self.n_bits,
            "seed": self.seed,
            "kind": kind,
            "model": model_config,
            "train": self.train_info_,
            "fit": {  # how a refit of the loaded hasher trains
                "time_budget": self.time_budget,
                "max_epochs": self.max_epochs,
                "max_documents": self.max_documents,
            },
        }
        text = json.dumps(config, indent=1)  # (fails, if it does, before anything is written)
        # Every file is written under a temporary name first and renamed once all are: an
        # error on the way (a full disk) leaves the hasher saved there before as it was.
        written = self.features_.write_temporary(directory)
        try:
            written["model.npz"] = directory / "model.npz.tmp"
            with open(written["model.npz"], "wb") as f:
                np.savez(f, **arrays)
            written["model.json"] = directory / "model.json.tmp"
            written["model.json"].write_text(text, encoding="utf-8")
        except BaseException:
            for temporary in written.values():
                temporary.unlink(missing_ok=True)
            raise
        for name in ("features.npz", "features.json", "model.npz", "model.json"):
            os.replace(written[name], directory / name)

    @classmethod
    def load(cls, directory: Path | str, device: str = "auto") -> SemanticHasher:
        """Rebuild a hasher saved by :meth:`save` (reads data only, never executes code).

        Any damaged, missing or mismatched file raises one :class:`NashError` naming it (and, for
        a collection's model, the collection and how to rebuild it: ``index.damage_error``).
        """
        import torch

        from nashcli.index import damage_error
        from nashcli.model_files import model_problem

        _check_device(device)  # (the caller's mistake: not the saved model's damage)
        directory = Path(directory)
        problem = model_problem(directory)
        if problem is not None:
            raise damage_error(directory / problem[0], problem[1])
        try:
            config = json.loads((directory / "model.json").read_text(encoding="utf-8"))
            with np.load(directory / "model.npz", allow_pickle=False) as data:
                arrays = {k: np.array(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise damage_error(directory / "model.npz", f"unreadable ({error})") from None
        if config.get("format") != FORMAT_VERSION:
            raise damage_error(directory / "model.json", "unknown format version")
        fit = config.get("fit")
        fit = {k: v for k, v in fit.items() if k in _FIT_SETTINGS} if isinstance(fit, dict) else {}
        try:
            self = cls(
                config["n_bits"], config["method"], device=device, seed=config["seed"], **fit
            )
        except (NashError, TypeError) as error:  # an unknown method, bits out of range, a
            raise damage_error(directory / "model.json", str(error)) from None  # "fit" of words
        try:
            self.features_ = TfidfFeatures.load(directory)
        except DamagedFeatures as error:
            raise damage_error(directory / error.file, error.reason) from None
        except (NashError, TypeError, ValueError, AttributeError) as error:  # (its settings)
            raise damage_error(directory / "features.json", str(error)) from None
        self.feature_kw = self.features_.get_params()  # (a refit learns with the same settings)
        self.train_info_ = config.get("train", {})
        kind = config["kind"]
        words = self.features_.vocabulary_size
        if kind == "lsh":
            from nashcli.baselines import LSH

            if "planes" not in arrays:
                raise damage_error(directory / "model.npz", "no 'planes' array")
            if arrays["planes"].shape != (words, self.n_bits):
                reason = (
                    f"its planes have shape {arrays['planes'].shape}, not ({words}, {self.n_bits})"
                    " (the vocabulary's words by model.json's bits)"
                )
                raise damage_error(directory / "model.npz", reason)
            model = LSH(config["n_bits"], seed=config["seed"])
            model.planes_ = arrays["planes"].astype(np.float32)
        else:
            settings = config["model"]
            for key, expected in (("n_bits", self.n_bits), ("vocab_size", words)):
                if settings.get(key) != expected:
                    reason = f"its model's {key} is {settings.get(key)!r}, not {expected}"
                    raise damage_error(directory / "model.json", reason)
            from nashcli.methods import resolve_device

            try:
                if kind == "vdsh":
                    from nashcli.baselines import VDSH, VdshConfig

                    model = VDSH(VdshConfig(**config["model"]))
                else:
                    from nashcli.model import NASH, NashConfig

                    model = NASH(NashConfig(**config["model"]))
            except (TypeError, ValueError) as error:
                reason = f"invalid settings ({error})"
                raise damage_error(directory / "model.json", reason) from None
            if not all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f"):
                # (NaN weights would encode every text as the same code, without a word)
                raise damage_error(
                    directory / "model.npz", "its weights hold NaN or infinite values"
                )
            try:
                model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
            except (RuntimeError, TypeError) as error:
                reason = f"does not match model.json ({_first_detail(error)})"
                raise damage_error(directory / "model.npz", reason) from None
            model.to(resolve_device(device)).eval()
        self.model_ = model
        return self


def _check_device(device: object) -> None:
    """:class:`NashError` unless ``device`` is ``auto``, ``cpu``, ``cuda`` or one GPU as torch
    names it (``cuda:0``, ``cuda:1``...); whether a GPU is there is asked when it is used."""
    if isinstance(device, str):
        prefix, _, number = device.partition(":")
        if device in ("auto", "cpu", "cuda") or (
            prefix == "cuda" and number.isascii() and number.isdigit()
        ):
            return
    raise NashError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)")


def _first_detail(error: Exception, limit: int = 200) -> str:
    """The line of ``error`` that says what is wrong, cut to ``limit`` characters: torch's
    ``load_state_dict`` puts it under a heading ("Error(s) in loading state_dict for NASH:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [repr(error)]
    line = lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
