"""Exact Hamming search over bit-packed codes: top-k and full distance matrices.

The database is stored as *planes* (see :func:`nashcli.codes.to_planes`): one contiguous uint64
array per 64-bit word of the codes, so a scan reads each word of every code once, in order. The
scan walks the planes in cache-sized chunks (XOR with the query, popcount, add — all numpy ufuncs
writing into preallocated buffers, which release the GIL). Every core's thread takes the next
chunk when it is done with its last, and nothing larger than a chunk is ever materialised: that
is what lets a memory-mapped index larger than RAM be searched, the OS paging it in and out.

Top-k never sorts the distances. Distances are small integers (at most 256), so each query keeps a
*bound*: the k-th best distance seen so far. A chunk only yields the (few) positions under the
bound, and those candidates are pruned back to k whenever they pile up. Because chunks are
visited in database order, a later document that merely *ties* the k-th best can never displace
it (ties go to the earlier position), which lets the bound be strict.

Two backends compute the same answers. ``"c"`` is the compiled kernel ``nashcli/_hamming.c``
(built at install time when a C compiler is there; AVX-512 VPOPCNTDQ, popcnt or portable code
chosen at run time): it scans a cache-sized block of codes with every query of a batch before
reading the next, so a batch reads the database once. ``"numpy"`` is the pure numpy scan described
above, used where the extension was not built (or with ``NASH_SEARCH_BACKEND=numpy``).
:data:`BACKEND` says which one searches by default and :data:`KERNEL` which instruction set.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

try:  # the compiled kernel; absent where the package was installed without a C compiler
    if os.environ.get("NASH_SEARCH_BACKEND", "").strip().lower() == "numpy":
        raise ImportError("NASH_SEARCH_BACKEND=numpy")
    from nashcli import _hamming
except ImportError:
    _hamming = None

Planes = np.ndarray | Sequence[np.ndarray]

#: The backend searches use unless told otherwise: "c" (compiled kernel) or "numpy".
BACKEND: str = "c" if _hamming is not None else "numpy"
#: The compiled kernel's instruction set ("avx512vpopcntdq", "popcnt", "generic"), or None.
KERNEL: str | None = max(_hamming.ISAS, key=_hamming.ISAS.get) if _hamming is not None else None


def _backends() -> tuple[str, ...]:
    if _hamming is None:
        return ("numpy",)
    isas = sorted(_hamming.ISAS, key=_hamming.ISAS.get, reverse=True)
    return ("c", *(f"c:{name}" for name in isas[1:]), "numpy")


#: Every backend this process can run, best first; "c:<isa>" forces a slower instruction set.
BACKENDS: tuple[str, ...] = _backends()
# Below this many code words x queries one thread is quicker than starting others.
_C_MIN_PARALLEL_WORK = 1 << 18


def _kernel_isa(backend: str | None, rows: list[np.ndarray]) -> int | None:
    """The compiled kernel's instruction-set number for ``backend``, or None for numpy.

    The kernel reads the planes in place, so it needs each one contiguous and 8-byte aligned
    (every array numpy or ``np.memmap`` makes is); other planes are scanned with numpy rather
    than copied.
    """
    name = BACKEND if backend is None else backend
    if name == "numpy":
        return None
    if _hamming is None:
        raise ValueError(f"search backend {name!r} is not built here; available: numpy")
    isa = KERNEL if name == "c" else name[2:] if name.startswith("c:") else None
    if isa not in _hamming.ISAS:
        raise ValueError(f"unknown search backend {name!r}; available: {', '.join(BACKENDS)}")
    if len(rows) > 1023 or len(rows[0]) >= 1 << 48:
        return None
    if not all(r.flags.c_contiguous and r.flags.aligned for r in rows):
        return None
    return _hamming.ISAS[isa]


def _kernel_threads(threads: int | None, n: int, n_q: int, n_words: int) -> int:
    if n * n_q * n_words < _C_MIN_PARALLEL_WORK:
        return 1
    return default_threads() if threads is None else max(1, int(threads))


# Bytes of XOR buffer per worker: the chunk of a plane, its XOR and the distances stay in L2.
_BUFFER_BYTES = 1 << 19
# Queries scanned together against a chunk: fewer numpy calls per code, buffers still in L2.
_QUERY_BLOCK = 16


def _as_planes(planes: Planes) -> list[np.ndarray]:
    """Normalise to a list of equally long 1-D uint64 views; never copies the data."""
    if isinstance(planes, np.ndarray):
        if planes.ndim == 1:
            planes = planes[None, :]
        if planes.ndim != 2:
            raise ValueError(f"planes must be (n_words, n), got shape {planes.shape}")
        rows = [planes[i] for i in range(planes.shape[0])]
    else:
        rows = list(planes)
    if not rows:
        raise ValueError("no planes: a code needs at least one 64-bit word")
    out = []
    for row in rows:
        arr = np.asarray(row)  # a memmap becomes a plain ndarray view of the same pages
        if arr.ndim != 1:
            raise ValueError(f"each plane must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind not in "ui" or arr.dtype.itemsize != 8 or not arr.dtype.isnative:
            raise ValueError(f"planes must hold native uint64 words, got {arr.dtype}")
        out.append(arr.view(np.uint64))
    n = len(out[0])
    if any(len(r) != n for r in out):
        raise ValueError("all planes must have the same length")
    return out


def _as_queries(queries: np.ndarray, n_words: int) -> np.ndarray:
    """(q, n_words) contiguous uint64 queries from one code or a batch."""
    q = np.asarray(queries)
    if q.dtype.kind not in "ui":
        raise ValueError(f"queries must be packed uint64 words, got {q.dtype}")
    q = np.ascontiguousarray(q.astype(np.uint64, copy=False))
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != n_words:
        raise ValueError(
            f"queries must be ({n_words},) or (q, {n_words}) packed words, got {np.shape(queries)}"
        )
    return q


@lru_cache(maxsize=4)
def _pool(n_threads: int, pid: int) -> ThreadPoolExecutor:
    """A pool kept for the process (keyed by pid: a forked child gets its own, not a dead copy);
    starting threads on every query would cost more than a scan."""
    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="nash-search")


def default_threads() -> int:
    """Threads to scan with: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class _Chunks:
    """Hands out chunk numbers in increasing order to whichever thread asks first.

    Threads pull the next chunk when done with theirs, so a thread slowed by other processes on a
    shared core does not hold the others up; each thread still sees its chunks in database order.
    """

    def __init__(self, edges: list[int]) -> None:
        self.edges = edges
        self._next = itertools.count()  # next() on a count is atomic under the GIL

    def __iter__(self):
        while True:
            j = next(self._next)
            if j >= len(self.edges) - 1:
                return
            yield self.edges[j], self.edges[j + 1]


def _run(n: int, chunk: int, threads: int | None, fn, *args) -> list:
    """Run ``fn(chunks, *args)`` on up to ``threads`` threads (default: the cores) sharing chunks.

    The calling thread works too; helpers that have not started by the time it runs out of
    chunks are cancelled, so on a busy machine a search never waits for a thread to be scheduled
    only to find nothing left to do.
    """
    t = default_threads() if threads is None else max(1, int(threads))
    chunks = _Chunks([*range(0, n, chunk), n])
    t = max(1, min(t, (n + chunk - 1) // chunk))
    pool = _pool(t - 1, os.getpid()) if t > 1 else None
    futures = [pool.submit(fn, chunks, *args) for _ in range(t - 1)]
    results = [fn(chunks, *args)]
    results += [f.result() for f in futures if not f.cancel()]
    return results


def _acc_dtype(n_words: int) -> type:
    """Smallest integer type holding a distance of ``64 * n_words`` bits."""
    return np.uint8 if 64 * n_words <= 255 else np.uint16


class _Scanner:
    """Per-worker buffers for XOR + popcount of a block of queries against a chunk of planes."""

    def __init__(self, n_words: int, n_queries: int, chunk: int) -> None:
        acc = _acc_dtype(n_words)
        self.xor = np.empty((n_queries, chunk), dtype=np.uint64)
        self.dist = np.empty((n_queries, chunk), dtype=acc)
        self.tmp = np.empty((n_queries, chunk), dtype=np.uint8) if n_words > 1 else None
        self.wide = acc is not np.uint8

    def distances(self, planes: list[np.ndarray], qcols: list[np.ndarray], lo: int, hi: int):
        """(q, hi - lo) distances of the query block to codes lo..hi-1 (a view of a buffer)."""
        c = hi - lo
        q = qcols[0].shape[0]
        xor = self.xor[:q, :c]
        dist = self.dist[:q, :c]
        for w, plane in enumerate(planes):
            np.bitwise_xor(plane[lo:hi], qcols[w], out=xor)
            if w == 0 and not self.wide:
                np.bitwise_count(xor, out=dist)
            elif w == 0:
                np.bitwise_count(xor, out=self.tmp[:q, :c])
                np.copyto(dist, self.tmp[:q, :c])
            else:
                np.bitwise_count(xor, out=self.tmp[:q, :c])
                np.add(dist, self.tmp[:q, :c], out=dist)
        return dist


def _chunk_for(n_queries: int) -> int:
    return max(1024, min(1 << 16, _BUFFER_BYTES // (8 * n_queries)))


def _block_for(n_queries: int) -> int:
    return min(n_queries, _QUERY_BLOCK)


class _Keys:
    """Packs (query row, distance, position) into one int64 so that sorting orders all three."""

    def __init__(self, n: int, n_words: int) -> None:
        self.idx_bits = max(1, int(n - 1).bit_length())
        self.dist_shift = self.idx_bits
        self.dist_mask = (1 << (64 * n_words).bit_length()) - 1
        self.row_shift = self.idx_bits + (64 * n_words).bit_length()
        self.max_queries = 1 << max(0, 63 - self.row_shift)  # rows that fit in the key
        if self.row_shift >= 63:
            raise ValueError(f"{n} codes of {64 * n_words} bits are too many to search")

    def rows(self, keys: np.ndarray) -> np.ndarray:
        return keys >> self.row_shift

    def dist(self, keys: np.ndarray) -> np.ndarray:
        return (keys >> self.dist_shift) & self.dist_mask

    def idx(self, keys: np.ndarray) -> np.ndarray:
        return keys & ((1 << self.idx_bits) - 1)


def _prune(keys: np.ndarray, codec: _Keys, row0: int, n_queries: int, k: int):
    """Keep each query's k best candidates by (distance, position).

    ``keys`` hold rows row0..row0+n_queries-1. Returns ``(kept sorted keys, counts, kth)``;
    ``kth`` is each query's k-th distance, or -1 where it has fewer than k candidates.
    """
    keys = np.sort(keys)
    if n_queries == 1:
        keys = keys[:k]
        counts = np.array([len(keys)])
    else:
        rows = codec.rows(keys) - row0
        starts = np.searchsorted(rows, np.arange(n_queries))
        keys = keys[(np.arange(len(keys)) - starts[rows]) < k]
        counts = np.bincount(codec.rows(keys) - row0, minlength=n_queries)
    kth = np.full(n_queries, -1, dtype=np.int64)
    full = counts >= k
    if full.any():
        ends = np.cumsum(counts)
        kth[full] = codec.dist(keys[ends[full] - 1])
    return keys, counts, kth


class _Block:
    """Top-k state of a block of queries (rows row0..) during one worker's scan.

    Each chunk's hits are only noted (positions and distances, two numpy calls); they are packed
    into sort keys and pruned back to k per query in one go once enough have piled up.
    """

    def __init__(self, qwords: np.ndarray, row0: int, k: int, codec: _Keys) -> None:
        n_words = qwords.shape[1]
        self.q = len(qwords)
        self.row0 = row0
        self.k = k
        self.codec = codec
        self.qcols = [np.ascontiguousarray(qwords[:, w : w + 1]) for w in range(n_words)]
        self.open = 64 * n_words + 1  # a bound that admits every distance
        self.bound = np.full((self.q, 1), self.open, dtype=_acc_dtype(n_words))  # admit d < bound
        self.bounded = False  # has every query got k candidates (and so a real bound)?
        self.keys = np.empty(0, dtype=np.int64)  # the kept candidates, packed
        self.pending: list[tuple[np.ndarray, np.ndarray, int, int]] = []  # (flat, dist, lo, c)
        self.n_pending = 0
        self.slack = self.q * max(k, 256)  # prune once this many new candidates wait
        self.done = False

    def add(self, dist: np.ndarray, lo: int, mask: np.ndarray) -> None:
        c = dist.shape[1]
        bound = self.bound
        if not self.bounded and c >= self.k:
            # A query with no bound yet takes the k-th distance of this chunk alone (inclusive):
            # anything farther has k better documents in the chunk already.
            bound = bound.copy()
            for r in np.flatnonzero(bound[:, 0] == self.open):
                cum = np.cumsum(np.bincount(dist[r], minlength=self.open))
                bound[r, 0] = int(np.searchsorted(cum, self.k)) + 1
        np.less(dist, bound, out=mask)
        flat = mask.reshape(-1).nonzero()[0]
        if flat.size == 0:
            return
        self.pending.append((flat, dist.reshape(-1)[flat], lo, c))
        self.n_pending += flat.size
        if not self.bounded or self.n_pending > self.slack:
            self.prune()

    def _pack_pending(self) -> np.ndarray:
        """Sort keys of the noted hits: (row, distance, position) in one int64 each."""
        codec = self.codec
        flats, dists, los, cs = zip(*self.pending, strict=True)
        sizes = [len(f) for f in flats]
        flat = np.concatenate(flats) if len(flats) > 1 else flats[0]
        key = (np.concatenate(dists) if len(dists) > 1 else dists[0]).astype(np.int64)
        key <<= codec.dist_shift
        if self.q == 1:
            key += flat
            key += np.repeat(np.array(los, dtype=np.int64), sizes) if len(los) > 1 else los[0]
            if self.row0:
                key += self.row0 << codec.row_shift
            return key
        rows, cols = np.divmod(flat, np.repeat(np.array(cs, dtype=np.int64), sizes))
        cols += np.repeat(np.array(los, dtype=np.int64), sizes)
        rows += self.row0
        rows <<= codec.row_shift
        key += rows
        key += cols
        return key

    def prune(self) -> None:
        if not self.pending:
            return
        keys = np.concatenate([self.keys, self._pack_pending()])
        self.pending, self.n_pending = [], 0
        if self.q == 1:  # the common case, in as few numpy calls as possible
            if len(keys) > self.k:
                keys = np.partition(keys, self.k - 1)[: self.k]  # keys[-1] is now the k-th
                kth_key = int(keys[-1])
            elif len(keys) == self.k:
                kth_key = int(keys.max())
            self.keys = keys
            if len(keys) == self.k:
                self.bound[0, 0] = (kth_key >> self.codec.dist_shift) & self.codec.dist_mask
                self.bounded = True
                self.done = self.bound[0, 0] == 0
            return
        self.keys, _, kth = _prune(keys, self.codec, self.row0, self.q, self.k)
        full = kth >= 0
        self.bound[full, 0] = kth[full]  # strict: a later tie loses to the earlier document
        self.bounded = bool(full.all())
        self.done = bool(np.all(self.bound == 0))

    def result(self) -> np.ndarray:
        """The kept candidate keys (at most k per query), in no particular order."""
        self.prune()
        return self.keys


def _topk_worker(chunks: _Chunks, planes, queries: np.ndarray, k: int, codec: _Keys):
    """Top-k of every query over the chunks this thread gets, as sorted candidate keys."""
    n_q, n_words = queries.shape
    block = _block_for(n_q)
    chunk = _chunk_for(block)
    scanner = _Scanner(n_words, block, chunk)
    mask = np.empty((block, chunk), dtype=bool)
    blocks = [_Block(queries[s : s + block], s, k, codec) for s in range(0, n_q, block)]
    # The first piece is short: it sets each query's bound cheaply before the long ones.
    first = max(4096, 4 * k)
    for lo, hi in chunks:
        live = [blk for blk in blocks if not blk.done]
        if not live:
            break
        pieces = [(lo, hi)]
        if not all(blk.bounded for blk in live) and hi - lo > 2 * first:
            pieces = [(lo, lo + first), (lo + first, hi)]
        for a, b in pieces:
            for blk in live:
                dist = scanner.distances(planes, blk.qcols, a, b)
                blk.add(dist, a, mask[: blk.q, : b - a])
    return np.concatenate([blk.result() for blk in blocks])


def hamming_topk(
    planes: Planes,
    queries: np.ndarray,
    k: int,
    *,
    threads: int | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest codes by Hamming distance, for one query or a batch.

    ``planes`` is a (n_words, n) uint64 array or a sequence of n_words 1-D uint64 arrays
    (``np.memmap`` is fine: it is read in chunks, never copied whole); ``queries`` is one packed
    code (n_words,) or a batch (q, n_words), packed as :func:`nashcli.codes.pack_codes` does.
    Returns ``(indices int64 (q, k'), distances int32 (q, k'))`` with ``k' = min(k, n)``, each row
    sorted by distance and then by database position. ``threads`` defaults to the usable cores;
    ``backend`` to :data:`BACKEND` (any of :data:`BACKENDS`; the answers are the same).
    """
    rows = _as_planes(planes)
    qwords = _as_queries(queries, len(rows))
    n = len(rows[0])
    n_q = len(qwords)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(int(k), n)
    isa = _kernel_isa(backend, rows)
    if k == 0 or n_q == 0:
        return np.empty((n_q, k), dtype=np.int64), np.empty((n_q, k), dtype=np.int32)
    mappings = _file_mappings(rows) if n > _MAPPED_SEGMENT else None
    if not mappings:
        return _topk_rows(rows, qwords, k, threads, isa)
    # A file-mapped database is scanned a segment at a time, and each segment's pages are
    # dropped from this process once scanned, so the search never adds the whole file to RSS.
    best_idx = np.empty((n_q, 0), dtype=np.int64)
    best_dist = np.empty((n_q, 0), dtype=np.int32)
    for lo in range(0, n, _MAPPED_SEGMENT):
        hi = min(n, lo + _MAPPED_SEGMENT)
        idx, dist = _topk_rows([r[lo:hi] for r in rows], qwords, min(k, hi - lo), threads, isa)
        _release_pages(rows, mappings, lo, hi)
        # The best so far come from earlier positions, so a stable sort by distance of the two
        # lists side by side keeps ties by position.
        idx = np.concatenate([best_idx, idx + lo], axis=1)
        dist = np.concatenate([best_dist, dist], axis=1)
        keep = np.argsort(dist, axis=1, kind="stable")[:, :k]
        best_idx = np.take_along_axis(idx, keep, axis=1)
        best_dist = np.take_along_axis(dist, keep, axis=1)
    return best_idx, best_dist


def _topk_rows(
    rows: list[np.ndarray], qwords: np.ndarray, k: int, threads: int | None, isa: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of every query over ``rows`` with the compiled kernel (``isa``) or numpy."""
    if isa is not None:
        n_q = len(qwords)
        idx = np.empty((n_q, k), dtype=np.int64)
        dist = np.empty((n_q, k), dtype=np.int32)
        t = _kernel_threads(threads, len(rows[0]), n_q, len(rows))
        _hamming.topk(rows, qwords, k, idx, dist, t, isa)
        return idx, dist
    return _topk_numpy(rows, qwords, k, threads)


#: Codes per segment when the planes are a file mapping (32 MB of each plane).
_MAPPED_SEGMENT = 1 << 22


def _file_mappings(rows: list[np.ndarray]) -> list | None:
    """Each plane's shared file mapping (``mmap.mmap`` of an ``np.memmap`` opened "r", "r+" or
    "w+"), or None where none of them is one. Copy-on-write mappings ("c") are left alone:
    dropping their pages would drop the caller's private changes."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return None
    found = []
    for row in rows:
        if not row.flags.c_contiguous:  # pages of a strided plane hold other data too
            found.append(None)
            continue
        base, shared = row, False
        while base is not None and not isinstance(base, mmap.mmap):
            if isinstance(base, np.memmap):
                shared = base.mode in ("r", "r+", "w+", "readonly", "readwrite", "write")
            base = getattr(base, "base", None)
        found.append(base if shared else None)
    return found if any(m is not None for m in found) else None


def _release_pages(rows: list[np.ndarray], mappings: list, lo: int, hi: int) -> None:
    """Drop the pages of codes lo..hi from this process's mappings (``MADV_DONTNEED``): they
    stay in the page cache, so a later search maps them again without reading the disk."""
    page = mmap.PAGESIZE
    for row, mm in zip(rows, mappings, strict=True):
        if mm is None:
            continue
        try:
            start = np.frombuffer(mm, dtype=np.uint8).ctypes.data
            a = row.ctypes.data - start + 8 * lo
            b = a + 8 * (hi - lo)
            a = -(-a // page) * page  # whole pages inside the range only
            b = b // page * page
            if b > a:
                mm.madvise(mmap.MADV_DONTNEED, a, b - a)
        except (OSError, ValueError, TypeError):  # a closed mapping, or no madvise here
            pass


def _topk_numpy(
    rows: list[np.ndarray], qwords: np.ndarray, k: int, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The numpy backend of :func:`hamming_topk` (1 <= k <= n, at least one query)."""
    n = len(rows[0])
    n_q = len(qwords)
    codec = _Keys(n, len(rows))
    if n_q > codec.max_queries:  # a batch so large its row numbers overflow the keys: split it
        parts = [
            _topk_numpy(rows, qwords[s : s + codec.max_queries], k, threads)
            for s in range(0, n_q, codec.max_queries)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    chunk = _chunk_for(_block_for(n_q))
    parts = _run(n, chunk, threads, _topk_worker, rows, qwords, k, codec)
    keys = parts[0] if len(parts) == 1 else np.concatenate(parts)
    keys, counts, _ = _prune(keys, codec, 0, n_q, k)
    if not np.all(counts == k):
        raise AssertionError("every query must keep min(k, n) results")
    keys = keys.reshape(n_q, k)
    return codec.idx(keys), codec.dist(keys).astype(np.int32)


def _distances_worker(chunks: _Chunks, planes, queries: np.ndarray, out: np.ndarray) -> None:
    n_q, n_words = queries.shape
    block = _block_for(n_q)
    scanner = _Scanner(n_words, block, _chunk_for(block))
    qcols = [
        [np.ascontiguousarray(queries[s : s + block, w : w + 1]) for w in range(n_words)]
        for s in range(0, n_q, block)
    ]
    for a, b in chunks:
        for i, cols in enumerate(qcols):
            s = i * block
            out[s : s + len(cols[0]), a:b] = scanner.distances(planes, cols, a, b)


def hamming_distances(
    planes: Planes,
    queries: np.ndarray,
    *,
    threads: int | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """(q, n) int32 Hamming distances of each query to every code (for evaluation).

    Same inputs as :func:`hamming_topk`. The result itself is q * n * 4 bytes: callers with many
    queries should pass them in batches.
    """
    rows = _as_planes(planes)
    qwords = _as_queries(queries, len(rows))
    n = len(rows[0])
    out = np.empty((len(qwords), n), dtype=np.int32)
    isa = _kernel_isa(backend, rows)
    if isa is not None and n and len(qwords):
        t = _kernel_threads(threads, n, len(qwords), len(rows))
        _hamming.distances(rows, qwords, out, t, isa)
    elif n and len(qwords):
        chunk = _chunk_for(_block_for(len(qwords)))
        _run(n, chunk, threads, _distances_worker, rows, qwords, out)
    return out


def _substring(planes: list[np.ndarray], start: int, length: int, sl: slice) -> np.ndarray:
    """Bits start..start+length-1 of each code in ``sl``, as int64 keys."""
    w, off = divmod(start, 64)
    key = planes[w][sl] >> np.uint64(off)
    if off + length > 64 and w + 1 < len(planes):
        key = key | (planes[w + 1][sl] << np.uint64(64 - off))
    return (key & np.uint64((1 << length) - 1)).astype(np.int64)


@lru_cache(maxsize=64)
def _masks(length: int, weight: int) -> np.ndarray:
    """All ``length``-bit masks with exactly ``weight`` ones."""
    if weight == 0:
        return np.zeros(1, dtype=np.int64)
    smaller = _masks(length, weight - 1)
    bits = np.int64(1) << np.arange(length, dtype=np.int64)
    grown = (smaller[:, None] | bits[None, :]).ravel()
    grown = grown[np.bitwise_count(grown) == weight]
    return np.unique(grown)


#: The longest substring :class:`MultiIndexHashing` indexes, whatever ``substring_bits`` asks:
#: its table holds 2**bits offsets of 8 bytes (40 bits asked for 8 TiB; 28 take 2 GiB).
MAX_SUBSTRING_BITS = 28


class MultiIndexHashing:
    """Exact k-NN by multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012 / TPAMI 2014).

    The code is cut into ``m`` disjoint substrings, each indexed by a table (codes sorted by
    substring value). Two codes within distance ``r`` agree within ``r // m`` bits on some
    substring (pigeonhole), so probing each table at substring radius 0, 1, 2, ... finds every code
    within ``m * (s + 1) - 1`` after radius ``s``; the search stops once the k-th best distance is
    within that. Exact, with the same (distance, position) order as :func:`hamming_topk`. Costs
    4 bytes per code per table and a sort per table to build; wins only where neighbours are much
    closer than a random code (see ``benchmarks/search.py --mih``). Falls back to a scan once the
    probes touch more than ``scan_fraction`` of the database.
    """

    def __init__(self, planes: Planes, n_bits: int, substring_bits: int | None = None,
                 scan_fraction: float = 0.1) -> None:  # fmt: skip
        self.planes = _as_planes(planes)
        self.n = n = len(self.planes[0])
        if not 1 <= n_bits <= 64 * len(self.planes):
            raise ValueError(f"{n_bits} bits do not fit in {len(self.planes)} words of 64")
        self.n_bits = n_bits
        if substring_bits is None:  # Norouzi et al.: substrings of about log2(n) bits
            substring_bits = int(np.clip(round(np.log2(max(n, 2))), 8, 24))
        if substring_bits < 1:
            raise ValueError(f"substring_bits must be at least 1, not {substring_bits}")
        # (no substring over MAX_SUBSTRING_BITS, whatever was asked: a table has 2**bits offsets)
        self.m = max(1, round(n_bits / substring_bits), -(-n_bits // MAX_SUBSTRING_BITS))
        cuts = np.linspace(0, n_bits, self.m + 1).astype(int)
        self.parts = [(int(a), int(b - a)) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        self.scan_fraction = scan_fraction
        self.tables = []
        pos_dtype = np.int32 if n < 2**31 else np.int64
        for start, length in self.parts:
            key = _substring(self.planes, start, length, slice(None))
            order = np.argsort(key, kind="stable").astype(pos_dtype)
            offsets = np.zeros((1 << length) + 1, dtype=np.int64)
            np.cumsum(np.bincount(key, minlength=1 << length), out=offsets[1:])
            self.tables.append((order, offsets))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices (k',), distances (k',)) of one packed query, like one row of hamming_topk."""
        q = _as_queries(query, len(self.planes))
        if len(q) != 1:
            raise ValueError("MultiIndexHashing.search takes one query")
        k = min(int(k), self.n)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        qplanes = [q[:, w] for w in range(q.shape[1])]
        qkeys = [int(_substring(qplanes, a, length, slice(None))[0]) for a, length in self.parts]
        seen = np.zeros(self.n, dtype=bool)  # calloc'd: only the pages probed get touched
        pool_idx: list[np.ndarray] = []
        pool_dist: list[np.ndarray] = []
        touched = 0
        for radius in range(max(length for _, length in self.parts) + 1):
            found = []
            for (_, length), (order, offsets), qk in zip(
                self.parts, self.tables, qkeys, strict=True
            ):
                if radius > length:
                    continue
                ids = qk ^ _masks(length, radius)
                lo, hi = offsets[ids], offsets[ids + 1]
                sizes = hi - lo
                total = int(sizes.sum())
                touched += total
                if total == 0:
                    continue
                shift = np.repeat(lo - np.cumsum(sizes) + sizes, sizes)
                found.append(order[shift + np.arange(total)])
            if touched > self.scan_fraction * self.n:
                idx, dist = hamming_topk(self.planes, q, k)
                return idx[0], dist[0]
            if found:
                new = np.unique(np.concatenate(found)).astype(np.int64)
                new = new[~seen[new]]
                seen[new] = True
                dist = np.zeros(len(new), dtype=np.int32)
                for w, plane in enumerate(self.planes):
                    dist += np.bitwise_count(plane[new] ^ q[0, w])
                pool_idx.append(new)
                pool_dist.append(dist)
            n_seen = sum(len(p) for p in pool_idx)
            if n_seen >= k:
                all_dist = np.concatenate(pool_dist)
                kth = np.partition(all_dist, k - 1)[k - 1]
                if kth <= self.m * (radius + 1) - 1:
                    all_idx = np.concatenate(pool_idx)
                    best = np.lexsort((all_idx, all_dist))[:k]
                    return all_idx[best], all_dist[best]
                pool_idx, pool_dist = [np.concatenate(pool_idx)], [all_dist]
        idx, dist = hamming_topk(self.planes, q, k)  # every table exhausted: n < k or tiny n
        return idx[0], dist[0]
