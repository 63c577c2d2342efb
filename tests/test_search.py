"""Exact Hamming search: every answer equals a brute-force reference on the unpacked bits."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from nashcli import search
from nashcli.codes import pack_codes, to_planes
from nashcli.metrics import hamming_distance_matrix
from nashcli.search import BACKENDS, MultiIndexHashing, hamming_distances, hamming_topk


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend this machine can run: the compiled kernel at each instruction set, numpy."""
    return request.param


def brute(db_bits: np.ndarray, q_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by counting differing bits; ties by position (a stable sort)."""
    dist = (q_bits[:, None, :] != db_bits[None, :, :]).sum(axis=2)
    order = np.argsort(dist, axis=1, kind="stable")[:, : min(k, len(db_bits))]
    return order, np.take_along_axis(dist, order, axis=1)


def random_bits(rng: np.random.Generator, n: int, bits: int, p: float = 0.5) -> np.ndarray:
    return rng.random((n, bits)) < p


@pytest.mark.parametrize("bits", [8, 16, 64, 72, 128, 256])
@pytest.mark.parametrize("k", [1, 7, 100, 400])
def test_topk_equals_brute_force(bits: int, k: int, backend: str) -> None:
    rng = np.random.default_rng(bits * 1000 + k)
    db = random_bits(rng, 300, bits, p=0.2)  # skewed bits: many ties at every distance
    db[50:60] = db[5]  # exact duplicates
    queries = random_bits(rng, 5, bits, p=0.2)
    queries[0] = db[5]
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), k, backend=backend)
    want_idx, want_dist = brute(db, queries, k)
    assert idx.dtype == np.int64 and dist.dtype == np.int32
    assert idx.shape == (5, min(k, 300))
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(idx, want_idx)


def test_many_chunks_and_threads_agree_with_brute_force(backend: str) -> None:
    # 8-bit codes over 150k documents: every distance is tied thousands of times, across chunk
    # and thread boundaries, so positional tie-breaking is really exercised.
    rng = np.random.default_rng(0)
    db = random_bits(rng, 150_000, 8)
    queries = random_bits(rng, 3, 8)
    planes = to_planes(pack_codes(db))
    want_idx, want_dist = brute(db, queries, 1000)
    for threads in (1, 2, 3, 5):
        idx, dist = hamming_topk(
            planes, pack_codes(queries), 1000, threads=threads, backend=backend
        )
        np.testing.assert_array_equal(dist, want_dist)
        np.testing.assert_array_equal(idx, want_idx)


@pytest.mark.parametrize("bits", [16, 64, 128])
def test_clustered_codes_many_prunes_and_threads(bits: int, backend: str) -> None:
    # Clustered codes (neighbours far closer than random, heavy ties) over ~20k documents, k on
    # both sides of the kernel's prune capacity (256 new candidates, or k), 1-4 threads: every
    # row must equal the stable brute-force order.
    rng = np.random.default_rng(bits + 11)
    centres = random_bits(rng, 30, bits)
    n = 20_011
    db = centres[rng.integers(0, 30, n)] ^ random_bits(rng, n, bits, p=0.06)
    queries = np.concatenate([centres[:4], random_bits(rng, 3, bits), db[[0, 9_999, n - 1]]])
    planes = to_planes(pack_codes(db))
    want_idx, want_dist = brute(db, queries, 700)
    for k, threads in ((1, 2), (5, 1), (256, 3), (257, 2), (700, 4)):
        idx, dist = hamming_topk(planes, pack_codes(queries), k, threads=threads, backend=backend)
        np.testing.assert_array_equal(dist, want_dist[:, :k])
        np.testing.assert_array_equal(idx, want_idx[:, :k])


def test_k_at_least_n_returns_everything_sorted(backend: str) -> None:
    rng = np.random.default_rng(1)
    db = random_bits(rng, 40, 64)
    q = random_bits(rng, 2, 64)
    for k in (40, 41, 10_000):
        idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(q), k, backend=backend)
        want_idx, want_dist = brute(db, q, k)
        assert idx.shape == (2, 40)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(dist, want_dist)
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(q), 0, backend=backend)
    assert idx.shape == dist.shape == (2, 0)


def test_single_query_equals_its_row_in_a_batch(backend: str) -> None:
    rng = np.random.default_rng(2)
    db = random_bits(rng, 5000, 128)
    queries = pack_codes(random_bits(rng, 37, 128))  # more than one block of queries
    planes = to_planes(pack_codes(db))
    batch_idx, batch_dist = hamming_topk(planes, queries, 50, backend=backend)
    for i in (0, 16, 36):
        idx, dist = hamming_topk(planes, queries[i], 50, backend=backend)
        assert idx.shape == (1, 50)
        np.testing.assert_array_equal(idx[0], batch_idx[i])
        np.testing.assert_array_equal(dist[0], batch_dist[i])


def test_identical_database_stops_early_and_keeps_first_positions(backend: str) -> None:
    code = pack_codes(np.ones((1, 64), dtype=bool))
    planes = to_planes(np.repeat(code, 200_000, axis=0))
    idx, dist = hamming_topk(planes, code[0], 5, backend=backend)
    np.testing.assert_array_equal(idx[0], np.arange(5))
    np.testing.assert_array_equal(dist[0], np.zeros(5))


def test_sequence_of_memmapped_planes(tmp_path, backend: str) -> None:
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
        idx, dist = hamming_topk(given, pack_codes(queries), 25, backend=backend)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(dist, want_dist)


def _rss_anon() -> int | None:
    """Anonymous resident memory of this process (Linux), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def test_memmapped_index_is_scanned_without_a_copy(tmp_path, backend: str) -> None:
    # 2M codes = 16 MB on disk; the search may allocate buffers, never a copy of the planes.
    # tracemalloc sees numpy's allocations, RssAnon the compiled kernel's too.
    n = 2_000_000
    path = tmp_path / "planes.u64"
    rng = np.random.default_rng(4)
    m = np.memmap(path, dtype=np.uint64, mode="w+", shape=(1, n))
    m[0] = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    m.flush()
    want = m[0, 123_456]
    del m
    planes = np.memmap(path, dtype=np.uint64, mode="r", shape=(1, n))
    query = np.array([want], dtype=np.uint64)
    # Two threads: each worker holds its own cache-sized buffers, so with the default (every
    # core) the allocations grow with the machine (6-7 MB on a 16-core one), not with the index.
    hamming_topk(planes[:, :1000], query, 10, threads=2, backend=backend)  # warm up
    anon = _rss_anon()
    tracemalloc.start()
    try:
        idx, dist = hamming_topk(planes, query, 10, threads=2, backend=backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dist[0, 0] == 0 and idx[0, 0] == 123_456
    assert peak < n * 8 / 4, f"search allocated {peak} bytes for a {n * 8} byte index"
    if anon is not None:
        grew = _rss_anon() - anon
        assert grew < n * 8 / 4, f"anonymous memory grew {grew} bytes for a {n * 8} byte index"


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_DONTNEED"), reason="no madvise")
def test_a_mapped_index_is_searched_by_segments_and_left_out_of_rss(
    tmp_path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 MB of codes in 2 MB segments: exact answers (ties across segments by position), and the
    # scanned pages are dropped from the process, so RSS grows by far less than the codes.
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(search, "_MAPPED_SEGMENT", 1 << 18)
    n, rng = 1 << 21, np.random.default_rng(8)
    bits = random_bits(rng, n, 16, p=0.5)  # 16-bit codes: many ties at every distance
    path = tmp_path / "planes.u64"
    m = np.memmap(path, dtype=np.uint64, mode="w+", shape=(1, n))
    m[:] = to_planes(pack_codes(bits))
    m.flush()
    del m
    q_bits = random_bits(rng, 3, 16)
    queries = pack_codes(q_bits)
    want_idx, want_dist = hamming_topk(np.fromfile(path, dtype=np.uint64)[None], queries, 300)
    planes = np.memmap(path, dtype=np.uint64, mode="r", shape=(1, n))
    before = psutil.Process().memory_info().rss
    idx, dist = hamming_topk(planes, queries, 300, backend=backend)
    grew = psutil.Process().memory_info().rss - before
    np.testing.assert_array_equal(dist, want_dist)
    np.testing.assert_array_equal(idx, want_idx)
    assert grew < n * 8 / 2, f"RSS grew {grew} bytes searching a {n * 8} byte mapped index"
    # A copy-on-write mapping keeps its pages (dropping them would drop private changes).
    cow = np.memmap(path, dtype=np.uint64, mode="c", shape=(1, n))
    cow[0, 5] ^= np.uint64(1)
    hamming_topk(cow, queries, 10, backend=backend)
    assert cow[0, 5] == np.fromfile(path, dtype=np.uint64)[5] ^ np.uint64(1)


def test_the_kernel_reads_memmaps_in_place_and_scans_odd_layouts_with_numpy(tmp_path) -> None:
    if search.BACKEND != "c":
        pytest.skip("the compiled kernel is not built here")
    m = np.memmap(tmp_path / "p.u64", dtype=np.uint64, mode="w+", shape=(2, 100))
    assert search._kernel_isa(None, [m[0], m[1]]) is not None
    rng = np.random.default_rng(8)
    db = random_bits(rng, 1000, 128)
    planes = to_planes(pack_codes(db))
    strided = np.asfortranarray(planes)  # each plane a strided view: numpy scans it
    raw = np.zeros(8 * planes.size + 4, dtype=np.uint8)
    misaligned = np.frombuffer(raw.data, dtype=np.uint64, count=planes.size, offset=4)
    misaligned = misaligned.reshape(planes.shape)
    misaligned[...] = planes
    queries = random_bits(rng, 3, 128)
    want_idx, want_dist = brute(db, queries, 30)
    for odd in (strided, misaligned):
        assert search._kernel_isa(None, list(odd)) is None
        idx, dist = hamming_topk(odd, pack_codes(queries), 30)
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(dist, want_dist)


def test_backend_is_reported_and_numpy_can_be_forced() -> None:
    assert search.BACKEND in ("c", "numpy") and search.BACKENDS[0] == search.BACKEND
    assert (search.KERNEL is None) == (search.BACKEND == "numpy")
    code = "import nashcli.search as s; print(s.BACKEND, s.KERNEL, s.BACKENDS)"
    env = {**os.environ, "NASH_SEARCH_BACKEND": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["numpy", "None", "('numpy',)"], out.stderr


def test_distances_match_brute_force_and_metrics(backend: str) -> None:
    rng = np.random.default_rng(5)
    for bits in (8, 16, 64, 72, 128, 256, 600):
        db = random_bits(rng, 7001, bits)  # past several chunks, and not a multiple of 8
        q = random_bits(rng, 20, bits)
        want = (q[:, None, :] != db[None, :, :]).sum(axis=2)
        got = hamming_distances(to_planes(pack_codes(db)), pack_codes(q), backend=backend)
        assert got.dtype == np.int32 and got.shape == (20, 7001)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(hamming_distance_matrix(q, db), want)


def test_bad_input_is_refused(backend: str) -> None:
    planes = to_planes(pack_codes(np.zeros((10, 128), dtype=bool)))
    with pytest.raises(ValueError, match="queries"):
        hamming_topk(planes, np.zeros(1, dtype=np.uint64), 3, backend=backend)
    with pytest.raises(ValueError, match="k must be"):
        hamming_topk(planes, np.zeros(2, dtype=np.uint64), -1, backend=backend)
    with pytest.raises(ValueError, match="uint64"):
        hamming_topk(planes.astype(np.float64), np.zeros(2, dtype=np.uint64), 3, backend=backend)
    with pytest.raises(ValueError, match="same length"):
        hamming_topk([planes[0], planes[1][:5]], np.zeros(2, dtype=np.uint64), 3, backend=backend)
    with pytest.raises(ValueError, match="backend"):
        hamming_topk(planes, np.zeros(2, dtype=np.uint64), 3, backend="fortran")


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


def test_a_later_closer_code_displaces_earlier_ones(backend: str) -> None:
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
        idx, dist = hamming_topk(
            to_planes(pack_codes(db)), query, k, threads=threads, backend=backend
        )
        assert list(idx[0, :2]) == [k - 1, 69_000]
        assert list(dist[0, :3]) == [1, 1, 2]
        assert list(idx[0, 2:]) == list(range(k - 2))


def test_long_codes_reach_their_full_distance(backend: str) -> None:
    rng = np.random.default_rng(6)
    db = random_bits(rng, 50, 512)
    queries = np.concatenate([~db[:1], random_bits(rng, 2, 512)])  # the complement: 512 apart
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), 50, backend=backend)
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
    # (the numpy backend packs (query, distance, position) into int64 sort keys; the kernel not)
    idx, dist = hamming_topk(to_planes(pack_codes(db)), pack_codes(queries), 20, backend="numpy")
    want_idx, want_dist = brute(db, queries, 20)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist)


def test_multi_index_hashing_refuses_bits_it_does_not_hold_and_caps_its_tables() -> None:
    """n_bits beyond the stored words gave an IndexError; substring_bits=40 tried to allocate
    terabytes for one table."""
    rng = np.random.default_rng(0)
    bits = rng.random((50, 64)) < 0.5
    planes = to_planes(pack_codes(bits))
    with pytest.raises(ValueError, match="do not fit"):
        MultiIndexHashing(planes, 100)
    mih = MultiIndexHashing(planes, 64, substring_bits=40)
    assert max(length for _, length in mih.parts) <= 28
    query = pack_codes(bits[:1])
    assert list(mih.search(query, 3)[0]) == list(hamming_topk(planes, query, 3)[0][0])
