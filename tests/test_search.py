"""Exact Hamming search: every answer equals a brute-force reference on the unpacked bits."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from nashcli.codes import pack_codes, to_planes
from nashcli.metrics import hamming_distance_matrix
from nashcli.search import MultiIndexHashing, hamming_distances, hamming_topk


def brute(db_bits: np.ndarray, q_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by counting differing bits; ties by position (a stable sort)."""
    dist = (q_bits[:, None, :] != db_bits[None, :, :]).sum(axis=2)
    order = np.argsort(dist, axis=1, kind="stable")[:, : min(k, len(db_bits))]
    return order, np.take_along_axis(dist, order, axis=1)


def random_bits(rng: np.random.Generator, n: int, bits: int, p: float = 0.5) -> np.ndarray:
    return rng.random((n, bits)) < p


@pytest.mark.parametrize("bits", [8, 16, 64, 72, 128, 256])
@pytest.mark.parametrize("k", [1, 7, 100, 400])
def test_topk_equals_brute_force(bits: int, k: int) -> None:
    rng = np.random.default_rng(bits * 1000 + k)
    db = random_bits(rng, 300, bits, p=0.2)  # skewed bits: many ties at every distance
    db[50:60] = db[5]  # exact duplicates
    queries = random_bits(rng, 5, bits, p=0.2)
    queries[0] = db[5]
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), k)
    want_idx, want_dist = brute(db, queries, k)
    assert idx.dtype == np.int64 and dist.dtype == np.int32
    assert idx.shape == (5, min(k, 300))
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(idx, want_idx)


def test_many_chunks_and_threads_agree_with_brute_force() -> None:
    # 8-bit codes over 150k documents: every distance is tied thousands of times, across chunk
    # and thread boundaries, so positional tie-breaking is really exercised.
    rng = np.random.default_rng(0)
    db = random_bits(rng, 150_000, 8)
    queries = random_bits(rng, 3, 8)
    planes = to_planes(pack_codes(db))
    want_idx, want_dist = brute(db, queries, 1000)
    for threads in (1, 2, 3):
        idx, dist = hamming_topk(planes, pack_codes(queries), 1000, threads=threads)
        np.testing.assert_array_equal(dist, want_dist)
        np.testing.assert_array_equal(idx, want_idx)


def test_k_at_least_n_returns_everything_sorted() -> None:
    rng = np.random.default_rng(1)
    db = random_bits(rng, 40, 64)
    q = random_bits(rng, 2, 64)
    for k in (40, 41, 10_000):
        idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(q), k)
        want_idx, want_dist = brute(db, q, k)
        assert idx.shape == (2, 40)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(dist, want_dist)
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(q), 0)
    assert idx.shape == dist.shape == (2, 0)


def test_single_query_equals_its_row_in_a_batch() -> None:
    rng = np.random.default_rng(2)
    db = random_bits(rng, 5000, 128)
    queries = pack_codes(random_bits(rng, 37, 128))  # more than one block of queries
    planes = to_planes(pack_codes(db))
    batch_idx, batch_dist = hamming_topk(planes, queries, 50)
    for i in (0, 16, 36):
        idx, dist = hamming_topk(planes, queries[i], 50)
        assert idx.shape == (1, 50)
        np.testing.assert_array_equal(idx[0], batch_idx[i])
        np.testing.assert_array_equal(dist[0], batch_dist[i])


def test_identical_database_stops_early_and_keeps_first_positions() -> None:
    code = pack_codes(np.ones((1, 64), dtype=bool))
    planes = to_planes(np.repeat(code, 200_000, axis=0))
    idx, dist = hamming_topk(planes, code[0], 5)
    np.testing.assert_array_equal(idx[0], np.arange(5))
    np.testing.assert_array_equal(dist[0], np.zeros(5))


def test_sequence_of_memmapped_planes(tmp_path) -> None:
    rng = np.random.default_rng(3)
    db = random_bits(rng, 3000, 128)
    planes = to_planes(pack_codes(db))
    maps = []
    for w, plane in enumerate(planes):
        m = np.memmap(tmp_path / f"plane{w}.u64", dtype=np.uint64, mode="w+", shape=plane.shape)
        m[:] = plane
        m.flush()
        maps.append(np.memmap(tmp_path / f"plane{w}.u64", dtype=np.uint64, mode="r"))
    queries = random_bits(rng, 4, 128)
    want_idx, want_dist = brute(db, queries, 25)
    for given in (maps, list(planes), tuple(maps)):
        idx, dist = hamming_topk(given, pack_codes(queries), 25)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(dist, want_dist)


def test_memmapped_index_is_scanned_without_a_copy(tmp_path) -> None:
    # 2M codes = 16 MB on disk; the search may allocate buffers, never a copy of the planes.
    n = 2_000_000
    path = tmp_path / "planes.u64"
    rng = np.random.default_rng(4)
    m = np.memmap(path, dtype=np.uint64, mode="w+", shape=(1, n))
    m[0] = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    m.flush()
    want = m[0, 123_456]
    del m
    planes = np.memmap(path, dtype=np.uint64, mode="r", shape=(1, n))
    tracemalloc.start()
    try:
        idx, dist = hamming_topk(planes, np.array([want], dtype=np.uint64), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dist[0, 0] == 0 and idx[0, 0] == 123_456
    assert peak < n * 8 / 4, f"search allocated {peak} bytes for a {n * 8} byte index"


def test_distances_match_brute_force_and_metrics() -> None:
    rng = np.random.default_rng(5)
    for bits in (8, 72, 256):
        db = random_bits(rng, 700, bits)
        q = random_bits(rng, 20, bits)
        want = (q[:, None, :] != db[None, :, :]).sum(axis=2)
        got = hamming_distances(to_planes(pack_codes(db)), pack_codes(q))
        assert got.dtype == np.int32 and got.shape == (20, 700)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(hamming_distance_matrix(q, db), want)


def test_bad_input_is_refused() -> None:
    planes = to_planes(pack_codes(np.zeros((10, 128), dtype=bool)))
    with pytest.raises(ValueError, match="queries"):
        hamming_topk(planes, np.zeros(1, dtype=np.uint64), 3)
    with pytest.raises(ValueError, match="k must be"):
        hamming_topk(planes, np.zeros(2, dtype=np.uint64), -1)
    with pytest.raises(ValueError, match="uint64"):
        hamming_topk(planes.astype(np.float64), np.zeros(2, dtype=np.uint64), 3)
    with pytest.raises(ValueError, match="same length"):
        hamming_topk([planes[0], planes[1][:5]], np.zeros(2, dtype=np.uint64), 3)


@pytest.mark.parametrize("bits", [16, 64, 72, 128])
def test_multi_index_hashing_is_exact(bits: int) -> None:
    rng = np.random.default_rng(bits)
    centres = random_bits(rng, 20, bits)
    db = centres[rng.integers(0, 20, 4000)] ^ random_bits(rng, 4000, bits, p=0.05)
    db[100:130] = db[7]  # ties at distance 0 across many positions
    queries = np.concatenate([db[7:8], centres[:3] ^ random_bits(rng, 3, bits, p=0.05)])
    queries = np.concatenate([queries, random_bits(rng, 2, bits)])  # far: falls back to a scan
    planes = to_planes(pack_codes(db))
    mih = MultiIndexHashing(planes, bits)
    want_idx, want_dist = brute(db, queries, 100)
    for i, q in enumerate(pack_codes(queries)):
        for k in (1, 100):
            idx, dist = mih.search(q, k)
            np.testing.assert_array_equal(idx, want_idx[i, :k])
            np.testing.assert_array_equal(dist, want_dist[i, :k])


def test_a_later_closer_code_displaces_earlier_ones() -> None:
    # Exactly k candidates in the first piece, the closest of them last in position; a code far
    # later (another chunk) is closer than most of them and must make it into the top k.
    n, k = 70_000, 100
    db = np.zeros((n, 64), dtype=bool)
    db[:, :40] = True  # distance 40 from the all-zero query
    db[: k - 1] = False
    db[: k - 1, :2] = True  # distance 2
    db[k - 1] = False
    db[k - 1, 0] = True  # distance 1
    db[69_000] = db[k - 1]  # distance 1, much later
    query = pack_codes(np.zeros((1, 64), dtype=bool))
    for threads in (1, 2):
        idx, dist = hamming_topk(to_planes(pack_codes(db)), query, k, threads=threads)
        assert list(idx[0, :2]) == [k - 1, 69_000]
        assert list(dist[0, :3]) == [1, 1, 2]
        assert list(idx[0, 2:]) == list(range(k - 2))


def test_long_codes_reach_their_full_distance() -> None:
    rng = np.random.default_rng(6)
    db = random_bits(rng, 50, 512)
    queries = np.concatenate([~db[:1], random_bits(rng, 2, 512)])  # the complement: 512 apart
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), 50)
    want_idx, want_dist = brute(db, queries, 50)
    assert dist[0, -1] == 512
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(idx, want_idx)


def test_a_batch_too_large_for_one_pass_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    import nashcli.search as search

    class SmallKeys(search._Keys):
        def __init__(self, n: int, n_words: int) -> None:
            super().__init__(n, n_words)
            self.max_queries = 4

    monkeypatch.setattr(search, "_Keys", SmallKeys)
    rng = np.random.default_rng(7)
    db = random_bits(rng, 500, 64)
    queries = random_bits(rng, 11, 64)
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), 20)
    want_idx, want_dist = brute(db, queries, 20)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist)
