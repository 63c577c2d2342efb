"""Sparse tf-idf rows as plain CSR arrays: what `nash similar` computes with, without scipy.

Importing ``scipy.sparse`` takes about 0.18 s (its array-API layer pulls in ``numpy.testing`` and
``numpy.f2py``): a third of a whole `nash similar FILE`. A query needs three operations on a pool
of a few hundred stored rows (dot products with one dense vector, the mean of a few rows, and the
linear encoder's ``x·Wᵀ``), each a few numpy lines over the CSR arrays. Indexing and training
keep scipy.sparse, but training gathers each minibatch's rows with :meth:`CsrRows.take` (faster
than scipy's row indexing); :meth:`CsrRows.to_scipy` converts, and :meth:`CsrRows.of` takes a
scipy CSR matrix, so the functions here accept either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class CsrRows:
    """``n`` rows of a (n, n_features) matrix in CSR form: row i's column ids are
    ``indices[indptr[i]:indptr[i + 1]]`` (int32) and its values the same slice of ``data``
    (float32)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_features: int

    @classmethod
    def of(cls, matrix: CsrRows | sp.spmatrix | sp.sparray) -> CsrRows:
        """``matrix`` (a CsrRows, or a scipy sparse matrix in CSR form) as CsrRows."""
        if isinstance(matrix, CsrRows):
            return matrix
        if getattr(matrix, "format", None) != "csr":
            matrix = matrix.tocsr()
        if not matrix.has_canonical_format:  # (duplicate entries: one per column, summed)
            matrix = matrix.copy()
            matrix.sum_duplicates()
        return cls(
            np.asarray(matrix.indptr, dtype=np.int64),
            np.asarray(matrix.indices, dtype=np.int32),
            np.asarray(matrix.data, dtype=np.float32),
            int(matrix.shape[1]),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, self.n_features

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        """Stored entries."""
        return len(self.data)

    def row_of_entry(self) -> np.ndarray:
        """int64 (nnz,): the row each stored entry belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    def dot(self, dense: np.ndarray) -> np.ndarray:
        """float64 (n,): each row's dot product with the dense vector ``dense`` (n_features,)."""
        products = self.data.astype(np.float64) * np.asarray(dense, dtype=np.float64)[self.indices]
        return np.bincount(self.row_of_entry(), weights=products, minlength=len(self))

    def mean_row(self, rows: np.ndarray | None = None) -> np.ndarray:
        """float64 (n_features,): the mean of ``rows`` (default: all rows) as a dense vector."""
        picked = self if rows is None else self.take(rows)
        total = np.zeros(self.n_features, dtype=np.float64)
        np.add.at(total, picked.indices, picked.data.astype(np.float64))
        return total / max(len(picked), 1)

    def take(self, rows: Sequence[int] | np.ndarray) -> CsrRows:
        """The given rows, in the given order (they may repeat)."""
        rows = np.asarray(rows, dtype=np.int64)
        outside = rows[(rows < -len(self)) | (rows >= len(self))]
        if len(outside):
            raise IndexError(f"row {outside[0]} of {len(self)}")
        rows = np.where(rows < 0, rows + len(self), rows)  # (-1: the last row, as numpy's)
        starts = np.asarray(self.indptr[rows], dtype=np.int64)
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Positions of every stored entry of the wanted rows, in row order (one gather).
        at = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        return CsrRows(indptr, self.indices[at], self.data[at], self.n_features)

    def times_transposed(self, weight: np.ndarray) -> np.ndarray:
        """float32 (n, k): ``rows · weightᵀ`` for a dense float32 ``weight`` (k, n_features),
        each row's terms added one by one in stored order, in float32, as scipy's CSR × dense
        product adds them: the same floats (a bit is 1[logit > 0], so a last-place difference
        could flip it) as the product that encodes the indexer's batches and encoded queries
        before. A loop over rows: meant for a query's one row, not for batches."""
        weight = np.asarray(weight, dtype=np.float32)
        out = np.zeros((len(self), weight.shape[0]), dtype=np.float32)
        for i in np.flatnonzero(np.diff(self.indptr) > 0):
            part = slice(self.indptr[i], self.indptr[i + 1])
            terms = weight[:, self.indices[part]].T * self.data[part, None]
            out[i] = np.add.accumulate(terms, axis=0)[-1]  # sequential, unlike sum's pairwise
        return out

    def to_dense(self) -> np.ndarray:
        """float32 (n, n_features) array."""
        out = np.zeros(self.shape, dtype=np.float32)
        out[self.row_of_entry(), self.indices] = self.data
        return out

    def to_scipy(self) -> sp.csr_matrix:
        """The same rows as a ``scipy.sparse.csr_matrix`` (imports scipy)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)
