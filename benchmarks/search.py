"""Exact Hamming top-k: nashcli.search against faiss IndexBinaryFlat and a naive numpy scan.

    python benchmarks/search.py --json                 # the table of issue 5 (single + batch)
    python benchmarks/search.py --json --memory        # + RSS of searching a memory-mapped index

All methods run in one process on the same random codes, interleaved query by query (the order
rotates), so load from other processes hits them alike; each figure is a median. Each timed call
follows a short pause (--gap-ms) so that faiss's OpenMP threads, which spin for a while after a
search, have gone idle and do not slow whichever method comes next. Output with
--json is one JSON list on stdout; each row has:

  mode            "single" (one query per call) or "batch" (``--batch`` queries per call)
  n, bits, k      database size, code length, neighbours asked for
  nash_ms         nashcli.search.hamming_topk, ms per query (batch: call time / batch size),
                  with its default backend (``backend``: "c", the compiled kernel, where it was
                  built; ``kernel``: its instruction set)
  nash_numpy_ms   the same search with the numpy backend (backend="numpy"), same unit
  faiss_ms        faiss.IndexBinaryFlat.search with faiss's default threads, same unit
  numpy_naive_ms  xor + bitwise_count over row-major codes, argpartition, sort (per query)
  ratio           nash_ms / faiss_ms
  agree           nash's top-k distances equal faiss's for every query (and the naive scan's)
  faiss_1t_ms     faiss with one thread: on a loaded machine OpenMP's default threads can wait
                  on each other for far longer than the scan takes, so this is the fairer
                  reference there; ratio_1t = nash_ms / faiss_1t_ms
  bound_ms        bandwidth bound: bytes scanned (n * bits / 8) / copy bandwidth, i.e. the median
                  time of np.copyto of the planes themselves, timed in the same rotation as the
                  searches (so with the same cache residency and the same load)
  bound_ratio     nash_ms / bound_ms (single mode only; a batch reads each code once per batch)
  queries         how many queries (single) or batches (batch) the medians are over
  threads         threads nash used (faiss: its default, printed on stderr)
  load1           1-minute load average when the row was measured (the machine is shared)

``--memory`` adds rows with mode "memory": a 10M-code index written to a temporary file as
planes and searched through ``np.memmap``; RSS (total), RssAnon (anonymous memory: what the
search itself allocated; the mapped file's pages are page cache, not anonymous) and USS (pages
private to this process, which *does* count the mapped file pages it touched) are read before and
after, with the codes' size for comparison. The copy bandwidth of a 256 MiB array (a reference
for the bounds) and each row as it is measured go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nashcli import search
from nashcli.search import MultiIndexHashing, default_threads, hamming_topk


def copy_bandwidth(nbytes: int = 1 << 28, repeats: int = 5) -> float:
    """Bytes per second of np.copyto on an array far larger than the caches (source bytes)."""
    src = np.ones(nbytes // 8, dtype=np.uint64)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t)
    return nbytes / float(np.median(times))


def random_codes(n: int, bits: int, seed: int) -> np.ndarray:
    """(n, bits // 64) uint64 uniformly random codes, row-major."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64 - 1, size=(n, bits // 64), dtype=np.uint64, endpoint=True)


def naive_topk(codes: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """The scan the issue started from: xor, bitwise_count, argpartition; sorted distances."""
    dist = np.bitwise_count(codes ^ query).sum(axis=1, dtype=np.int32)
    part = np.argpartition(dist, k - 1)[:k]
    return np.sort(dist[part])


# Pause before each timed call: faiss's OpenMP (libgomp) threads spin for milliseconds after a
# search, which would steal a core from whichever method is timed next.
GAP_S = 0.03


def _timed(fn):
    time.sleep(GAP_S)
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _faiss_search(index, qbytes: np.ndarray, k: int, threads: int | None):
    """index.search with ``threads`` OpenMP threads (None: faiss's default), restored after."""
    import faiss

    if threads is None:
        return index.search(qbytes, k)[0]
    default = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        return index.search(qbytes, k)[0]
    finally:
        faiss.omp_set_num_threads(default)


def _numpy_backend(planes, queries, k, threads):
    """hamming_topk with the numpy backend (what searches ran before the compiled kernel)."""
    return hamming_topk(planes, queries, k, threads=threads, backend="numpy")


def bench_single(codes, planes, index, queries, k, threads):
    """Per-query medians of every method, interleaved query by query with a rotating order."""
    times = {"nash": [], "nash_numpy": [], "faiss": [], "faiss_1t": [], "naive": [], "copy": []}
    agree = True
    qbytes = queries.view(np.uint8).reshape(len(queries), -1)
    copy_buf = np.empty_like(planes)
    for i, q in enumerate(queries):
        calls = {
            "copy": lambda: np.copyto(copy_buf, planes),
            "nash": lambda q=q: hamming_topk(planes, q, k, threads=threads)[1][0],
            "nash_numpy": lambda q=q: _numpy_backend(planes, q, k, threads)[1][0],
            "faiss": lambda i=i: _faiss_search(index, qbytes[i : i + 1], k, None)[0],
            "faiss_1t": lambda i=i: _faiss_search(index, qbytes[i : i + 1], k, 1)[0],
            "naive": lambda q=q: naive_topk(codes, q, k),
        }
        names = list(calls)
        names = names[i % len(names) :] + names[: i % len(names)]
        got = {}
        for name in names:
            dt, got[name] = _timed(calls[name])
            times[name].append(dt)
        for other in ("nash_numpy", "faiss", "faiss_1t", "naive"):  # (copy returns nothing)
            agree &= bool(np.array_equal(got["nash"], got[other]))
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}, agree


def bench_batch(codes, planes, index, queries, batch, k, threads, naive_batches):
    """Per-query time of whole batches; the order of the methods rotates from batch to batch."""
    times = {"nash": [], "nash_numpy": [], "faiss": [], "faiss_1t": [], "naive": []}
    agree = True
    n_batches = len(queries) // batch
    for b in range(n_batches):
        qb = queries[b * batch : (b + 1) * batch]
        qbytes = qb.view(np.uint8).reshape(batch, -1)
        calls = {
            "nash": lambda qb=qb: hamming_topk(planes, qb, k, threads=threads)[1],
            "nash_numpy": lambda qb=qb: _numpy_backend(planes, qb, k, threads)[1],
            "faiss": lambda qbytes=qbytes: _faiss_search(index, qbytes, k, None),
            "faiss_1t": lambda qbytes=qbytes: _faiss_search(index, qbytes, k, 1),
        }
        names = list(calls)
        names = names[b % len(names) :] + names[: b % len(names)]
        got = {}
        for name in names:
            dt, got[name] = _timed(calls[name])
            times[name].append(dt / batch)
        agree &= bool(np.array_equal(got["nash"], got["faiss"]))
        agree &= bool(np.array_equal(got["nash"], got["faiss_1t"]))
        agree &= bool(np.array_equal(got["nash"], got["nash_numpy"]))
        if b < naive_batches:
            dt, naive = _timed(lambda qb=qb: np.stack([naive_topk(codes, q, k) for q in qb]))
            times["naive"].append(dt / batch)
            agree &= bool(np.array_equal(got["nash"], naive))
    out = {name: 1e3 * float(np.median(t)) if t else None for name, t in times.items()}
    return out, agree, n_batches


def clustered_codes(n: int, bits: int, seed: int, flip: float = 0.08, per_cluster: int = 1000):
    """Codes in clusters: random centres, each bit flipped with probability ``flip``.

    Returns (codes, queries-maker): a query is a fresh noisy copy of a random centre, so its
    neighbours are much closer than a random code's, as with real semantic codes.
    """
    rng = np.random.default_rng(seed)
    n_words = bits // 64
    centres = rng.integers(0, 2**64 - 1, (max(1, n // per_cluster), n_words), dtype=np.uint64,
                           endpoint=True)  # fmt: skip
    threshold = np.uint8(round(flip * 256))

    def noisy(which: np.ndarray) -> np.ndarray:
        out = centres[which].copy()
        for a in range(0, len(which), 1 << 18):
            b = min(len(which), a + (1 << 18))
            flips = rng.integers(0, 256, (b - a, n_words * 64), dtype=np.uint8) < threshold
            packed = np.packbits(flips, axis=1, bitorder="little").view("<u8")
            out[a:b] ^= packed.astype(np.uint64, copy=False)
        return out

    codes = noisy(rng.integers(0, len(centres), n))
    return codes, lambda m: noisy(rng.integers(0, len(centres), m))


def bench_mih(n: int, bits: int, k: int, kind: str, n_queries: int, threads: int | None) -> dict:
    """Multi-index hashing against the scan and faiss on one code distribution."""
    import faiss

    if kind == "random":
        codes = random_codes(n, bits, seed=n + bits + 1)
        rng = np.random.default_rng(bits + 1)
        queries = rng.integers(0, 2**64 - 1, (n_queries, bits // 64), dtype=np.uint64,
                               endpoint=True)  # fmt: skip
    else:
        codes, make_queries = clustered_codes(n, bits, seed=n + bits + 2)
        queries = make_queries(n_queries)
    planes = np.ascontiguousarray(codes.T)
    index = faiss.IndexBinaryFlat(bits)
    index.add(codes.view(np.uint8).reshape(n, bits // 8))
    t = time.perf_counter()
    mih = MultiIndexHashing(planes, bits)
    build_s = time.perf_counter() - t
    times = {"nash": [], "mih": [], "faiss": []}
    agree = True
    kth = []
    qbytes = queries.view(np.uint8).reshape(n_queries, -1)
    for i, q in enumerate(queries):
        calls = {
            "nash": lambda q=q: hamming_topk(planes, q, k, threads=threads),
            "mih": lambda q=q: mih.search(q, k),
            "faiss": lambda i=i: index.search(qbytes[i : i + 1], k),
        }
        names = list(calls)
        names = names[i % 3 :] + names[: i % 3]
        got = {}
        for name in names:
            dt, got[name] = _timed(calls[name])
            times[name].append(dt)
        agree &= bool(np.array_equal(got["nash"][0][0], got["mih"][0]))
        agree &= bool(np.array_equal(got["nash"][1][0], got["faiss"][0][0]))
        kth.append(int(got["nash"][1][0, -1]))
    ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
    return {
        "mode": "mih", "codes": kind, "n": n, "bits": bits, "k": k,
        "nash_ms": round(ms["nash"], 4), "mih_ms": round(ms["mih"], 4),
        "faiss_ms": round(ms["faiss"], 4), "mih_vs_scan": round(ms["mih"] / ms["nash"], 3),
        "mih_build_s": round(build_s, 2), "substrings": mih.m,
        "median_kth_distance": float(np.median(kth)), "agree": agree, "queries": n_queries,
    }  # fmt: skip


def proc_memory() -> dict[str, int]:
    """RSS, RssAnon (from /proc/self/status) and USS of this process, in bytes."""
    import psutil

    info = psutil.Process().memory_full_info()
    anon = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1]) * 1024
    return {"rss": int(info.rss), "rss_anon": anon, "uss": int(info.uss)}


def bench_memory(n: int, bits: int, k: int, batch: int, threads: int | None) -> list[dict]:
    """RSS growth of searching a memory-mapped planes file of n codes."""
    rows = []
    n_words = bits // 64
    with tempfile.TemporaryDirectory(dir=os.environ.get("NASH_BENCH_TMP")) as tmp:
        path = Path(tmp) / "planes.u64"
        writer = np.memmap(path, dtype=np.uint64, mode="w+", shape=(n_words, n))
        rng = np.random.default_rng(7)
        step = 1 << 20
        for w in range(n_words):
            for a in range(0, n, step):
                b = min(n, a + step)
                writer[w, a:b] = rng.integers(0, 2**64 - 1, b - a, dtype=np.uint64, endpoint=True)
        writer.flush()
        del writer
        queries = rng.integers(0, 2**64 - 1, (batch, n_words), dtype=np.uint64, endpoint=True)
        for mode, qs in (("single", queries[0]), ("batch", queries)):
            planes = np.memmap(path, dtype=np.uint64, mode="r", shape=(n_words, n))
            before = proc_memory()
            t = time.perf_counter()
            hamming_topk(planes, qs, k, threads=threads)
            dt = time.perf_counter() - t
            after = proc_memory()
            row = {"mode": "memory", "search": mode, "n": n, "bits": bits, "k": k}
            row["codes_bytes"] = n * n_words * 8
            for key in before:
                row[f"{key}_delta"] = after[key] - before[key]
            row["seconds"] = round(dt, 4)
            row["anon_under_codes"] = row["rss_anon_delta"] < row["codes_bytes"]
            row["rss_under_codes"] = row["rss_delta"] < row["codes_bytes"]
            rows.append(row)
            del planes
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON list on stdout")
    ap.add_argument("--sizes", default="1000000,10000000", help="database sizes, comma-separated")
    ap.add_argument("--bits", default="64,128", help="code lengths (multiples of 64)")
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--queries", type=int, default=30, help="single queries per configuration")
    ap.add_argument("--batch", type=int, default=100, help="queries per batch (0: no batch rows)")
    ap.add_argument("--batches", type=int, default=5, help="batches per configuration")
    ap.add_argument("--naive-batches", type=int, default=1, help="batches the naive scan times")
    ap.add_argument("--threads", type=int, default=None, help="nash threads (default: cores)")
    ap.add_argument("--gap-ms", type=float, default=30.0, help="pause before each timed call")
    ap.add_argument("--memory", action="store_true", help="add the memory-mapped RSS rows")
    ap.add_argument("--memory-n", type=int, default=10_000_000)
    ap.add_argument("--mih", action="store_true", help="add multi-index hashing rows")
    ap.add_argument("--mih-sizes", default="100000,1000000,10000000")
    ap.add_argument("--mih-bits", default="64,128")
    ap.add_argument("--only-mih", action="store_true", help="skip the scan table")
    args = ap.parse_args(argv)

    import faiss

    global GAP_S
    GAP_S = args.gap_ms / 1e3
    threads = args.threads or default_threads()
    bw = copy_bandwidth()
    print(
        f"copy bandwidth {bw / 1e9:.2f} GB/s; faiss threads {faiss.omp_get_max_threads()}; "
        f"nash threads {threads}; nash backend {search.BACKEND} ({search.KERNEL})",
        file=sys.stderr,
    )
    rows = []
    for n in (int(s) for s in args.sizes.split(",") if not args.only_mih):
        for bits in (int(b) for b in args.bits.split(",")):
            codes = random_codes(n, bits, seed=n + bits)
            planes = np.ascontiguousarray(codes.T)
            index = faiss.IndexBinaryFlat(bits)
            index.add(codes.view(np.uint8).reshape(n, bits // 8))
            rng = np.random.default_rng(bits)
            n_q = max(args.queries, args.batch * args.batches)
            queries = rng.integers(0, 2**64 - 1, (n_q, bits // 64), dtype=np.uint64, endpoint=True)
            ms, agree = bench_single(codes, planes, index, queries[: args.queries], args.k, threads)
            bound_ms = ms["copy"]
            rows.append({
                "mode": "single", "n": n, "bits": bits, "k": args.k,
                "nash_ms": round(ms["nash"], 4), "faiss_ms": round(ms["faiss"], 4),
                "nash_numpy_ms": round(ms["nash_numpy"], 4),
                "numpy_naive_ms": round(ms["naive"], 4),
                "ratio": round(ms["nash"] / ms["faiss"], 3), "agree": agree,
                "faiss_1t_ms": round(ms["faiss_1t"], 4),
                "ratio_1t": round(ms["nash"] / ms["faiss_1t"], 3),
                "bound_ms": round(bound_ms, 4),
                "bound_ratio": round(ms["nash"] / bound_ms, 2), "queries": args.queries,
                "threads": threads, "backend": search.BACKEND, "kernel": search.KERNEL,
            })  # fmt: skip
            rows[-1]["load1"] = round(os.getloadavg()[0], 2)
            print(json.dumps(rows[-1]), file=sys.stderr)
            if args.batch:
                ms, agree, nb = bench_batch(
                    codes, planes, index, queries, args.batch, args.k, threads, args.naive_batches
                )
                rows.append({
                    "mode": "batch", "n": n, "bits": bits, "k": args.k, "batch": args.batch,
                    "nash_ms": round(ms["nash"], 4), "faiss_ms": round(ms["faiss"], 4),
                    "nash_numpy_ms": round(ms["nash_numpy"], 4),
                    "numpy_naive_ms": None if ms["naive"] is None else round(ms["naive"], 4),
                    "ratio": round(ms["nash"] / ms["faiss"], 3), "agree": agree,
                    "faiss_1t_ms": round(ms["faiss_1t"], 4),
                    "ratio_1t": round(ms["nash"] / ms["faiss_1t"], 3),
                    "bound_ms": round(bound_ms, 4), "queries": nb, "threads": threads,
                    "backend": search.BACKEND, "kernel": search.KERNEL,
                    "load1": round(os.getloadavg()[0], 2),
                })  # fmt: skip
                print(json.dumps(rows[-1]), file=sys.stderr)
            del codes, planes, index
    if args.mih or args.only_mih:
        for n in (int(s) for s in args.mih_sizes.split(",")):
            for bits in (int(b) for b in args.mih_bits.split(",")):
                for kind in ("random", "clustered"):
                    rows.append(bench_mih(n, bits, args.k, kind, args.queries, threads))
                    rows[-1]["load1"] = round(os.getloadavg()[0], 2)
                    print(json.dumps(rows[-1]), file=sys.stderr)
    if args.memory:
        for row in bench_memory(args.memory_n, 64, args.k, args.batch or 100, threads):
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
