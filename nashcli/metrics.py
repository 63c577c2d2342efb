"""Retrieval metrics of the semantic-hashing papers: precision of the top k.

Hamming distances between short codes tie a lot (at 16 bits the 100th distance is often shared by
hundreds of documents), so precision is reported twice: with ties broken by database position
(deterministic) and as the tie-aware expectation over every order of the tied documents, which is
exact and depends on no sort order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nashcli.codes import pack_codes, to_planes
from nashcli.features import whole_number
from nashcli.search import _hamming, hamming_distances


def label_hits(query_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """(q, n) bool: does query i share at least one label with database document j?"""
    q = np.asarray(query_labels, dtype=np.float32)
    d = np.asarray(db_labels, dtype=np.float32)
    return (q @ d.T) > 0


#: Largest distance :func:`kth_smallest` counts rather than partitions (Hamming distances of
#: codes up to 256 bits).
COUNTABLE_DISTANCE = 256


def kth_smallest(distances: np.ndarray, k: int) -> np.ndarray:
    """(q,) the k-th smallest value of each row of ``distances`` (1 <= k <= columns).

    Hamming distances are small non-negative integers, so each row's histogram
    (:func:`distance_histograms`) finds the k-th without a selection. That avoids
    ``np.partition``'s worst case: codes that have collapsed early in training tie almost every
    distance, and partitioning 777 × 6,992 such distances took 47-48 ms against 17-18 ms
    counted; healthy codes, 6-7 ms partitioned and 8-11 ms counted (``benchmarks/metrics.py``,
    medians of 7 on an Intel Xeon, ``results/metrics.json``). Other distances (floats,
    negatives) are partitioned.
    """
    integral = np.issubdtype(distances.dtype, np.integer) and distances.size > 0
    largest = int(distances.max()) if integral else None
    if integral and largest <= COUNTABLE_DISTANCE and distances.min() >= 0:
        counts, _ = distance_histograms(distances, None, largest + 1)
        return _kth_distance(np.cumsum(counts, axis=1), k).astype(distances.dtype)
    return np.partition(distances, k - 1, axis=1)[:, k - 1]


def _checked(distances: np.ndarray, hits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``distances`` and ``hits`` as (q, n) arrays of one shape with q, n ≥ 1, and k a whole
    number ≥ 1; ``ValueError`` otherwise (a NaN mean or an index error would say less)."""
    distances, hits = np.asarray(distances), np.asarray(hits, dtype=bool)
    if not whole_number(k) or k < 1:
        raise ValueError(f"k must be a whole number of at least 1, got {k!r}")
    if distances.ndim != 2 or distances.shape != hits.shape:
        raise ValueError(
            f"distances and hits must be (queries, documents) alike, got {distances.shape} "
            f"and {hits.shape}"
        )
    if distances.shape[0] == 0:
        raise ValueError("no queries")
    if distances.shape[1] == 0:
        raise ValueError("an empty database")
    return distances, hits


def _kth_distance(seen: np.ndarray, k: int) -> np.ndarray:
    """(q,) the k-th smallest distance of each query, from its cumulative histogram ``seen``."""
    return np.argmax(seen >= k, axis=1)


def _split_at_kth(
    distances: np.ndarray, hits: np.ndarray, k: int
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``(k, hits_closer, slots, tied)`` per query: hits among the documents closer than the k-th
    distance, how many top-k places the documents tied at it fill, and the (q, n) tied mask."""
    k = min(k, distances.shape[1])
    kth = kth_smallest(distances, k)[:, None]  # (q, 1)
    closer = distances < kth
    return k, (closer & hits).sum(axis=1), k - closer.sum(axis=1), distances == kth


def _expected_precision(hits_closer, slots, tied_hits, tied, k: int) -> np.ndarray:
    """Per query: the expected precision@k over a uniformly random order of the tied documents."""
    return (hits_closer + slots * tied_hits / tied) / k


def distance_histograms(
    distances: np.ndarray, hits: np.ndarray | None, width: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(counts, hit_counts)``, int64 (q, width): per query, how many database documents lie
    at each distance and how many of those are hits (``None`` without ``hits``: the k-th
    distance needs the counts alone). Every distance must be in 0..width-1.

    Precision@k needs no more than these: the k-th distance, the hits closer than it and the
    documents and hits tied at it. One pass of the compiled kernel where it was built
    (``nashcli._hamming``), else one ``np.bincount``.
    """
    distances = np.ascontiguousarray(distances, dtype=np.int32)
    if hits is not None:
        hits = np.ascontiguousarray(hits, dtype=bool)
    q = distances.shape[0]
    kernel = getattr(_hamming, "histogram", None)
    if kernel is not None:
        counts = np.zeros((q, width), np.int64)
        hit_counts = None if hits is None else np.zeros((q, width), np.int64)
        kernel(distances, hits, counts, hit_counts)
        return counts, hit_counts
    if distances.size and (distances.min() < 0 or distances.max() >= width):
        raise ValueError(f"a distance outside 0..{width - 1}")
    slots = 1 if hits is None else 2  # each distance's bin, or its (not a hit, hit) pair
    key = distances.astype(np.intp)
    if hits is not None:
        key *= 2
        key += hits
    key += (np.arange(q, dtype=np.intp) * (slots * width))[:, None]
    both = np.bincount(key.ravel(), minlength=q * slots * width).reshape(q, width, slots)
    hit_counts = None if hits is None else np.ascontiguousarray(both[:, :, 1])
    return both.sum(axis=2), hit_counts


def tie_aware_precision(distances: np.ndarray, hits: np.ndarray, k: int) -> float:
    """Mean tie-aware precision@k alone: :func:`precision_from_distances`'s second figure without
    the positional one, which needs the documents' order and so the whole matrix again.

    Small non-negative integer distances (Hamming) go through :func:`distance_histograms`:
    the same figure, to the last bit, in 8 ms instead of 43 ms for 777 × 6,992 distances
    (medians; a training run scores its validation codes after every epoch, 8 s of a 75 s
    faithful run in a profile).
    """
    distances, hits = _checked(distances, hits, k)
    if np.issubdtype(distances.dtype, np.integer):
        smallest, largest = int(distances.min()), int(distances.max())
        if smallest >= 0 and largest <= COUNTABLE_DISTANCE:
            k = min(k, distances.shape[1])
            counts, hit_counts = distance_histograms(distances, hits, largest + 1)
            seen = np.cumsum(counts, axis=1)
            kth = _kth_distance(seen, k)
            rows = np.arange(len(kth))
            tied, tied_hits = counts[rows, kth], hit_counts[rows, kth]
            closer = seen[rows, kth] - tied
            hits_closer = np.cumsum(hit_counts, axis=1)[rows, kth] - tied_hits
            return float(_expected_precision(hits_closer, k - closer, tied_hits, tied, k).mean())
    k, hits_closer, slots, tied = _split_at_kth(distances, hits, k)
    tied_hits = (tied & hits).sum(axis=1)
    return float(_expected_precision(hits_closer, slots, tied_hits, tied.sum(axis=1), k).mean())


def precision_from_distances(
    distances: np.ndarray, hits: np.ndarray, k: int
) -> tuple[float, float]:
    """Mean precision@k over queries, positional and tie-aware.

    ``distances`` and ``hits`` are (q, n). Returns ``(positional, tie_aware)``: positional breaks
    ties at the k-th distance by database position; tie-aware is the expectation over a uniformly
    random order of the documents tied at the k-th distance.
    """
    distances, hits = _checked(distances, hits, k)
    k, hits_closer, slots, tied = _split_at_kth(distances, hits, k)
    tied_hits = (tied & hits).sum(axis=1)
    tie_aware = _expected_precision(hits_closer, slots, tied_hits, tied.sum(axis=1), k)
    # Positional: the first `slots` tied documents in database order.
    tied_hits_in_order = np.cumsum(tied & hits, axis=1)
    tied_in_order = np.cumsum(tied, axis=1)
    # index of the slots-th tied document in each row
    last = np.argmax(tied_in_order >= slots[:, None], axis=1)
    positional = (hits_closer + tied_hits_in_order[np.arange(len(distances)), last]) / k
    return float(positional.mean()), float(tie_aware.mean())


def hamming_distance_matrix(query_bits: np.ndarray, db_bits: np.ndarray) -> np.ndarray:
    """(q, n) int32 Hamming distances between 0/1 code matrices.

    Packs the bits and runs the same popcount scan as ``nash similar`` (nashcli.search): exact,
    and 5-20x faster than the float matmul it replaced on 1k x 11k codes of 16-128 bits.
    """
    q = np.asarray(query_bits)
    d = np.asarray(db_bits)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"code matrices must be (q, bits) and (n, bits), got {q.shape}, {d.shape}")
    return hamming_distances(to_planes(pack_codes(d)), pack_codes(q))


def precision_at_k(
    db_bits: np.ndarray,
    db_labels: np.ndarray,
    query_bits: np.ndarray,
    query_labels: np.ndarray,
    k: int = 100,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray] = hamming_distance_matrix,
    chunk: int = 1024,
) -> tuple[float, float]:
    """Precision@k of retrieving ``db`` for each query; a hit shares a label with the query.

    ``db_bits``/``query_bits`` are code matrices (or any vectors ``distance`` understands);
    labels are (documents, labels) bool matrices. Returns ``(positional, tie_aware)``.
    """
    n_queries = len(query_bits)
    if n_queries == 0:
        raise ValueError("no queries")
    positional = tie_aware = 0.0
    for start in range(0, n_queries, chunk):
        stop = min(start + chunk, n_queries)
        dist = distance(query_bits[start:stop], db_bits)
        hits = label_hits(query_labels[start:stop], db_labels)
        p, t = precision_from_distances(dist, hits, k)
        positional += p * (stop - start)
        tie_aware += t * (stop - start)
    return positional / n_queries, tie_aware / n_queries
