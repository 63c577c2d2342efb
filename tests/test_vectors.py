"""CsrRows, the query path's scipy-free CSR rows, against scipy.sparse on the same matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nashcli.vectors import CsrRows


@pytest.fixture
def matrix() -> sp.csr_matrix:
    """40 rows over 300 features, with an empty row and rows of one entry."""
    x = sp.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=7)
    empty = sp.csr_matrix((1, 300), dtype=np.float32)
    one = sp.csr_matrix(([0.5], ([0], [299])), shape=(1, 300), dtype=np.float32)
    return sp.vstack([x[:10], empty, one, x[10:]], format="csr")


def test_round_trip_and_take(matrix) -> None:
    rows = CsrRows.of(matrix)
    assert rows.shape == matrix.shape and len(rows) == 42 and rows.nnz == matrix.nnz
    np.testing.assert_array_equal(rows.to_dense(), matrix.toarray())
    assert (rows.to_scipy() != matrix).nnz == 0
    picked = [11, 10, 3, 3, 41]  # any order, repeats, the empty row
    np.testing.assert_array_equal(rows.take(picked).to_dense(), matrix[picked].toarray())
    assert len(rows.take([])) == 0 and rows.take([]).nnz == 0
    assert CsrRows.of(rows) is rows
    np.testing.assert_array_equal(CsrRows.of(matrix.tocoo()).to_dense(), matrix.toarray())


def test_dot_and_mean_row_as_the_sparse_products(matrix) -> None:
    rows = CsrRows.of(matrix)
    dense = np.random.default_rng(0).standard_normal(300)
    np.testing.assert_allclose(rows.dot(dense), matrix.toarray() @ dense, rtol=1e-6, atol=1e-9)
    assert rows.dot(dense)[10] == 0.0  # the empty row
    best = np.array([0, 11, 5])
    # rank_pool's feedback: the mean over b of x · x[b], as the sparse product gave it
    by_scipy = np.asarray((matrix @ matrix[best].T).todense(), dtype=np.float64).mean(axis=1)
    np.testing.assert_allclose(rows.dot(rows.mean_row(best)), by_scipy.ravel(), atol=1e-6)
    np.testing.assert_allclose(rows.mean_row(), matrix.toarray().mean(axis=0), atol=1e-7)


def test_times_transposed_gives_scipys_floats_exactly(matrix) -> None:
    """The encoder's logits of a query must be the very floats the indexer's CSR product gave
    (a bit is 1[logit > 0]: a last-place difference could flip it), so the terms are added in
    the same order, not pairwise."""
    long_rows = sp.random(20, 300, density=0.5, format="csr", dtype=np.float32, random_state=3)
    for x in (matrix, long_rows):
        for bits in (1, 24):  # one bit: a plain sum would go pairwise along the terms
            weight = np.random.default_rng(bits).standard_normal((bits, 300)).astype(np.float32)
            got = CsrRows.of(x).times_transposed(weight)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, np.asarray(x @ weight.T))


def test_rows_with_duplicate_entries_and_negative_row_numbers() -> None:
    """A scipy matrix with two entries in one column: to_dense kept the last where dot summed
    them; take([-1]) failed with "negative dimensions"."""
    data, indices, indptr = (
        np.array([1, 2, 3], np.float32),
        np.array([0, 0, 1]),
        np.array([0, 2, 3]),
    )
    matrix = sp.csr_matrix((data, indices, indptr), shape=(2, 3))
    rows = CsrRows.of(matrix)
    np.testing.assert_array_equal(rows.to_dense(), [[3, 0, 0], [0, 3, 0]])
    np.testing.assert_array_equal(rows.take([-1, 0]).to_dense(), [[0, 3, 0], [3, 0, 0]])
    with pytest.raises(IndexError, match="row 2 of 2"):
        rows.take([2])
    with pytest.raises(IndexError, match="row -100 of 2"):
        rows.take([-100, 0])
