"""Precision@k as the papers measure it, checked against brute force on tiny cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nashcli.metrics as metrics
from nashcli.metrics import (
    distance_histograms,
    hamming_distance_matrix,
    kth_smallest,
    label_hits,
    precision_at_k,
    precision_from_distances,
    tie_aware_precision,
)


def brute_force(distances: np.ndarray, hits: np.ndarray, k: int) -> tuple[float, float]:
    """(positional, tie-aware) precision@k by enumerating every order of each query's documents
    that sorts them by distance: positional is the order keeping database positions, tie-aware
    the mean over all of them."""
    positional, tie_aware = [], []
    for row, row_hits in zip(distances, hits, strict=True):
        stable = np.argsort(row, kind="stable")
        positional.append(row_hits[stable[:k]].sum() / k)
        groups = [list(np.flatnonzero(row == value)) for value in np.unique(row)]
        scores = []
        for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
            ranked = [doc for order in orders for doc in order]
            scores.append(row_hits[ranked[:k]].sum() / k)
        tie_aware.append(np.mean(scores))
    return float(np.mean(positional)), float(np.mean(tie_aware))


@pytest.mark.parametrize("seed", range(6))
def test_precision_matches_every_order_of_the_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, bits = 7, 3  # 3-bit codes over 7 documents: ties at almost every distance
    db, queries = rng.random((n, bits)) < 0.5, rng.random((4, bits)) < 0.5
    hits = label_hits(rng.random((4, 3)) < 0.4, rng.random((n, 3)) < 0.4)
    distances = hamming_distance_matrix(queries, db)
    for k in (1, 3, 5, 7):
        expected = brute_force(distances, hits, k)
        assert precision_from_distances(distances, hits, k) == pytest.approx(expected, abs=1e-12)
        assert tie_aware_precision(distances, hits, k) == pytest.approx(expected[1], abs=1e-12)


def test_all_tied_is_the_share_of_hits() -> None:
    # One code for everything: any 2 of the 5 documents are equally likely, so the expected
    # precision is the share of hits (3/5), while positional takes the first two (one hit).
    distances = np.zeros((1, 5), dtype=np.int32)
    hits = np.array([[False, True, True, False, True]])
    assert precision_from_distances(distances, hits, 2) == pytest.approx((0.5, 0.6))


def test_chunked_queries_give_the_same_precision() -> None:
    rng = np.random.default_rng(1)
    db, queries = rng.random((500, 16)) < 0.5, rng.random((90, 16)) < 0.5
    ydb, yq = rng.random((500, 4)) < 0.3, rng.random((90, 4)) < 0.3
    whole = precision_at_k(db, ydb, queries, yq, k=20, chunk=1000)
    assert precision_at_k(db, ydb, queries, yq, k=20, chunk=7) == pytest.approx(whole, abs=1e-12)


@pytest.mark.parametrize(
    "distances",
    [
        np.random.default_rng(0).integers(0, 33, (50, 400)).astype(np.int32),  # Hamming, 32 bits
        np.random.default_rng(1).integers(0, 2, (50, 400)).astype(np.int32),  # collapsed codes
        np.random.default_rng(2).integers(0, 257, (30, 300)).astype(np.uint16),  # 256 bits
        np.random.default_rng(3).integers(-5, 900, (30, 300)),  # not countable: partitioned
        np.random.default_rng(4).random((30, 300)),  # cosine distances (exact TF-IDF)
    ],
)
def test_kth_smallest_agrees_with_a_partition(
    distances: np.ndarray, histogram_backend: str
) -> None:
    for k in (1, 2, 100, distances.shape[1]):
        expected = np.partition(distances, k - 1, axis=1)[:, k - 1]
        assert np.array_equal(kth_smallest(distances, k), expected)


HAMMING_CASES = [  # (distances, hits): healthy codes of 8-128 bits, and collapsed ones
    (
        hamming_distance_matrix(rng.random((40, bits)) < 0.5, rng.random((700, bits)) < 0.5),
        rng.random((40, 700)) < share,
    )
    for rng, bits, share in [
        (np.random.default_rng(5), 8, 0.1),
        (np.random.default_rng(6), 32, 0.3),
        (np.random.default_rng(7), 128, 0.05),
        (np.random.default_rng(8), 1, 0.5),
    ]
]


@pytest.fixture(params=["kernel", "numpy"])
def histogram_backend(request, monkeypatch) -> str:
    """Run a test with the compiled histogram kernel and with the numpy fallback."""
    if request.param == "numpy":
        monkeypatch.setattr(metrics, "_hamming", None)
    elif getattr(metrics._hamming, "histogram", None) is None:
        pytest.skip("the compiled kernel was not built")
    return request.param


@pytest.mark.parametrize("case", range(len(HAMMING_CASES)))
def test_histograms_count_every_distance_and_hit(case: int, histogram_backend: str) -> None:
    distances, hits = HAMMING_CASES[case]
    width = int(distances.max()) + 3  # room above the largest distance stays empty
    counts, hit_counts = distance_histograms(distances, hits, width)
    expected, expected_hits = np.zeros_like(counts), np.zeros_like(hit_counts)
    for row in range(len(distances)):
        np.add.at(expected[row], distances[row], 1)
        np.add.at(expected_hits[row], distances[row], hits[row].astype(np.int64))
    assert np.array_equal(counts, expected) and np.array_equal(hit_counts, expected_hits)


@pytest.mark.parametrize("case", range(len(HAMMING_CASES)))
def test_histograms_without_hits_count_the_same(case: int, histogram_backend: str) -> None:
    distances, hits = HAMMING_CASES[case]
    width = int(distances.max()) + 1
    counts, hit_counts = distance_histograms(distances, None, width)
    assert hit_counts is None
    assert np.array_equal(counts, distance_histograms(distances, hits, width)[0])


def test_histograms_refuse_distances_outside_their_width(histogram_backend: str) -> None:
    hits = np.zeros((1, 3), dtype=bool)
    for distances in ([[0, 1, 4]], [[0, -1, 2]]):
        with pytest.raises(ValueError, match="outside 0..3"):
            distance_histograms(np.array(distances, dtype=np.int32), hits, 4)
        with pytest.raises(ValueError, match="outside 0..3"):
            distance_histograms(np.array(distances, dtype=np.int32), None, 4)


@pytest.mark.parametrize("case", range(len(HAMMING_CASES)))
def test_tie_aware_precision_from_histograms_is_the_same_to_the_last_bit(
    case: int, histogram_backend: str
) -> None:
    # Training picks its best epoch by this figure: the histogram path must not move it at all.
    distances, hits = HAMMING_CASES[case]
    for k in (1, 7, 100, distances.shape[1]):
        assert (
            tie_aware_precision(distances, hits, k)
            == precision_from_distances(distances, hits, k)[1]
        )


def test_bad_k_an_empty_database_or_no_queries_say_so():
    from nashcli.metrics import precision_from_distances, tie_aware_precision

    d, hits = np.array([[0, 1, 2]]), np.array([[True, False, True]])
    for k in (0, -1, 1.5, True):
        for score in (tie_aware_precision, precision_from_distances):
            with pytest.raises(ValueError, match="k must"):
                score(d, hits, k)
    for score in (tie_aware_precision, precision_from_distances):
        with pytest.raises(ValueError, match="empty database"):
            score(np.zeros((2, 0), int), np.zeros((2, 0), bool), 5)
        with pytest.raises(ValueError, match="no queries"):
            score(np.zeros((0, 3), int), np.zeros((0, 3), bool), 5)
