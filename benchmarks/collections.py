"""Personal-collection figures: precision of `nash similar`, indexing and query times.

Builds a folder of 20 Newsgroups articles sorted into one folder per newsgroup (a temp dir, from
``../shared/datasets``), indexes it with the real ``nash index`` (a subprocess, default
settings), and reports:

- precision of the 10 nearest by folder, for queries that are documents of the collection
  (never their own neighbour): Hamming order, cosine and fused re-rankings of pools of several
  sizes, exact tf-idf cosine over the whole collection as the reference (all queries, and the
  held-out half the fused weights were not chosen on; ``--sweep`` shows the choice);
- wall time of ``nash index`` from scratch, of a re-index with nothing changed, of one
  ``nash similar FILE`` / ``--text`` process, next to ``python -c pass``, ``import nashcli.cli``
  and ``import torch`` measured in the same run;
- the cost of getting the candidates' tf-idf: stored vectors vs re-reading the files;
- with ``--retrain-study``: precision when the model was fitted on only part of the collection
  and the rest was encoded incrementally (what :func:`nashcli.indexing.retrain_due` decides on);
- with ``--training-caps 5000,10000``: the same, indexed in-process with the model fitted on a
  random sample of at most that many documents (``SemanticHasher(max_documents=...)``, which
  large collections get), and the wall time of each such index.

Run: ``nice -n 10 python benchmarks/collections.py [--dataset reuters] [--sweep]``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
from small_collections import FILES, pick_articles


def build_folder(
    dest: Path, n_docs: int, dataset: str = "20ng", seed: int = 0, top_labels: int = 0
) -> list[Path]:
    """The articles of :func:`small_collections.pick_articles` as files, one folder a label."""
    paths = []
    for d in pick_articles(n_docs, dataset, seed, top_labels):
        folder = dest / d["labels"][0]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (d["id"].replace("/", "_") + ".txt")
        path.write_text(d["text"], encoding="utf-8")
        paths.append(path)
    return paths


def timed(cmd: list[str], env: dict, repeat: int = 1) -> tuple[float, float, str]:
    """Median wall and CPU (user + sys) seconds of running ``cmd``, and its last stdout.

    CPU time is reported too because the 2 shared cores are often busy with other work: wall
    time then measures the neighbours as much as nash.
    """
    walls, cpus, out = [], [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        out = done.stdout
    return statistics.median(walls), statistics.median(cpus), out


@contextlib.contextmanager
def data_dir(home: Path) -> Iterator[None]:
    """``NASH_HOME`` set to ``home`` meanwhile: a second index of the same folder (a folder
    belongs to one collection of a data dir)."""
    before = os.environ["NASH_HOME"]
    os.environ["NASH_HOME"] = str(home)
    try:
        yield
    finally:
        os.environ["NASH_HOME"] = before


def index_apart(
    work: Path,
    folder: Path,
    name: str,
    options: dict,
    args: argparse.Namespace,
    pools: list[int],
    bits: int | None = None,
) -> tuple[float, dict]:
    """Index ``folder`` in-process as collection ``name`` with ``hasher_options`` ``options``,
    in a data dir of its own (:func:`data_dir`): (wall seconds of the index, :func:`precision`)."""
    from nashcli.indexing import index_folder

    with data_dir(work / f"home-{name}"):
        start = time.perf_counter()
        index_folder(folder, name=name, bits=bits, hasher_options=options)
        seconds = time.perf_counter() - start
        return seconds, precision(name, args.queries, pools, args.seed)


def precision(
    collection_name: str, n_queries: int, pools: list[int], seed: int = 0, plain: bool = False
) -> dict:
    """Mean precision@10 by folder over ``n_queries`` documents of the collection, for each
    ranking of :data:`nashcli.similar.RANKINGS` (re-rankings at the default pool and at each of
    ``pools``), with exact tf-idf cosine over the whole collection as the reference; also on the
    second half of the queries alone (``held-out half``: the fused weights were chosen on the
    first half, :func:`sweep`), and the mean in-process milliseconds per query. With ``plain``,
    each ranking also with the plain Hamming distance in place of the weighted one (queries
    without the encoder's bit probabilities: the pool and the fused score as before the
    weighting; the Hamming order then breaks ties by the scrambled row alone, not by row)."""
    from nashcli.index import Collection
    from nashcli.similar import LinearQueryEncoder, default_pool, search_snapshot, stored_query

    col = Collection.open(collection_name)
    with col.snapshot() as snap:
        docs = snap.live_docs()
        label = {d.row: Path(d.path).parent.name for d in docs}
        rng = np.random.default_rng(seed)
        queries = rng.choice([d.row for d in docs], size=min(n_queries, len(docs)), replace=False)
        half = len(queries) // 2
        out: dict[str, float] = {"default pool": default_pool(snap.documents)}
        encoder = LinearQueryEncoder.load(snap.model_dir)
        asked = {"": [stored_query(snap, int(q), encoder) for q in queries]}
        if plain:
            asked[" (plain distance)"] = [replace(a, probabilities=None) for a in asked[""]]
        qvecs = snap.tfidf_of(queries)
        settings = [("hamming", 0)]
        for pool in [default_pool(snap.documents), *pools]:
            settings += [("cosine", pool), ("fused", pool)]
        for (ranking, pool), (suffix, questions) in itertools.product(settings, asked.items()):
            hits = []
            start = time.perf_counter()
            for query, q in zip(questions, queries, strict=True):
                found = search_snapshot(snap, query, 10, ranking, pool)
                hits.append(sum(label[h.row] == label[int(q)] for h in found))
            key = (ranking if pool == 0 else f"{ranking} pool {pool}") + suffix
            out[key] = sum(hits) / (10 * len(queries))
            out[f"{key} held-out half"] = sum(hits[half:]) / (10 * (len(queries) - half))
            out[f"{key} ms/query"] = 1000 * (time.perf_counter() - start) / len(queries)
        # Exact tf-idf cosine over the whole collection (the reference).
        rows = [d.row for d in docs]
        x = snap.tfidf_of(rows)
        pos = {r: i for i, r in enumerate(rows)}
        labels = np.array([label[r] for r in rows])
        sims = (qvecs @ x.T).toarray()
        sims[np.arange(len(queries)), [pos[int(q)] for q in queries]] = -np.inf
        top = np.argsort(-sims, axis=1, kind="stable")[:, :10]
        qlab = np.array([label[int(q)] for q in queries])
        good = labels[top] == qlab[:, None]
        out["exact tf-idf cosine"] = float(good.mean())
        out["exact tf-idf cosine held-out half"] = float(good[half:].mean())
    return out


def sweep(collection_name: str, n_queries: int, seed: int = 0, plain: bool = False) -> dict:
    """Precision@10 of the fused ranking over a grid of its weights, on the *first* half of the
    queries of :func:`precision` only (the half the defaults were chosen on), default pool;
    with ``plain``, with the plain Hamming distance in place of the weighted one."""
    from small_collections import fused_grid_hits

    from nashcli.index import Collection
    from nashcli.similar import LinearQueryEncoder, candidate_pool, default_pool, stored_query

    grid = [
        (lam, m, beta)
        for lam in (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
        for m, beta in ((0, 0.0), (3, 1.0), (3, 2.0), (5, 1.0), (5, 2.0), (10, 2.0))
    ]
    # the feedback documents' least cosine, as a share of the best's (0: any shared word); the
    # 3-tuples above use the default share (0.1 since 2026-12-07; result files before: 0)
    grid += [(1.0, 5, 2.0, share) for share in (0.0, 0.05, 0.1, 0.25, 0.5)]
    col = Collection.open(collection_name)
    with col.snapshot() as snap:
        docs = snap.live_docs()
        label = {d.row: Path(d.path).parent.name for d in docs}
        rng = np.random.default_rng(seed)
        queries = rng.choice([d.row for d in docs], size=min(n_queries, len(docs)), replace=False)
        queries = queries[: len(queries) // 2]
        pool = default_pool(snap.documents)
        encoder = LinearQueryEncoder.load(snap.model_dir)
        hits = dict.fromkeys(grid, 0)
        for q in queries:
            query = stored_query(snap, int(q), None if plain else encoder)
            rows, _, weighted = candidate_pool(snap, query, pool, np.array([q]))
            x, qvec = snap.tfidf_of(rows), query.vector
            same = np.array([label[int(r)] == label[int(q)] for r in rows])
            found = fused_grid_hits(x, qvec, rows, weighted, snap.bits, same, 10, grid)
            for key, h in found.items():
                hits[key] += h
    return {
        f"weight {p[0]} feedback {p[1]} x {p[2]}" + (f" share {p[3]}" if len(p) > 3 else ""): h
        / (10 * len(queries))
        for p, h in hits.items()
    }


def tfidf_source_cost(collection_name: str, pool: int = 100, repeat: int = 5) -> dict:
    """Seconds to get ``pool`` candidates' tf-idf: stored vectors vs re-reading the files."""
    from nashcli import documents
    from nashcli.index import Collection
    from nashcli.pipeline import SemanticHasher

    col = Collection.open(collection_name)
    with col.snapshot() as snap:
        docs = snap.live_docs()[:pool]
        rows = [d.row for d in docs]
        hasher = SemanticHasher.load(snap.model_dir, device="cpu")
        stored, reread = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            snap.tfidf_of(rows)
            stored.append(time.perf_counter() - t)
            t = time.perf_counter()
            hasher.vectorize([documents.read_text(Path(d.path)) for d in docs])
            reread.append(time.perf_counter() - t)
    return {"stored_s": statistics.median(stored), "reread_s": statistics.median(reread)}


def index_bytes(collection_name: str) -> dict:
    """Bytes on disk: code planes, stored tf-idf vectors, model, SQLite metadata."""
    from nashcli.index import Collection

    col = Collection.open(collection_name)
    with col.snapshot() as snap:
        gdir = snap.gen_dir
        sizes = {"planes": sum(p.stat().st_size for p in gdir.glob("plane-*.u64"))}
        sizes["tfidf"] = sum(p.stat().st_size for p in gdir.glob("tfidf.*"))
        sizes["model"] = sum(p.stat().st_size for p in (gdir / "model").iterdir())
        sizes["sqlite"] = sum(p.stat().st_size for p in col.directory.glob("meta.sqlite*"))
        sizes["documents"] = snap.documents
    return sizes


def retrain_study(
    paths: list[Path], fractions: list[float], n_queries: int, method: str | None, seed: int = 0
) -> dict:
    """Precision@10 (Hamming, and re-ranked pool 100) when the model saw only a fraction."""
    from nashcli import codes, documents, search
    from nashcli.pipeline import SemanticHasher

    texts = [documents.read_text(p) for p in paths]
    labels = np.array([p.parent.name for p in paths])
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(texts), size=min(n_queries, len(texts)), replace=False)
    results = {}
    for fraction in fractions:
        n_fit = int(round(fraction * len(texts)))
        t = time.perf_counter()
        kw = {"method": method} if method else {}
        hasher = SemanticHasher(64, device="cpu", seed=seed, **kw).fit(texts[:n_fit])
        fit_s = time.perf_counter() - t
        x = hasher.vectorize(texts)
        words = codes.pack_codes(hasher.encode_vectors(x))
        planes = codes.to_planes(words)
        idx, _ = search.hamming_topk(planes, words[queries], 101)
        ham_hits = rerank_hits = 0
        for i, q in enumerate(queries):
            cand = [c for c in idx[i] if c != q]
            ham_hits += int((labels[cand[:10]] == labels[q]).sum())
            cos = (x[cand] @ x[q].T).toarray().ravel()
            best = [cand[j] for j in np.argsort(-cos, kind="stable")[:10]]
            rerank_hits += int((labels[best] == labels[q]).sum())
        results[f"{fraction:.2f}"] = {
            "fitted_on": n_fit,
            "fit_s": round(fit_s, 1),
            "hamming": ham_hits / (10 * len(queries)),
            "rerank pool 100": rerank_hits / (10 * len(queries)),
        }
        print(f"  model fitted on {fraction:.0%}: {results[f'{fraction:.2f}']}", flush=True)
    return results


def drift_study(paths: list[Path], method: str, n_queries: int = 500, seed: int = 0) -> dict:
    """What a stale vocabulary/model costs when a collection grows with *new topics*.

    Fits on the documents of half of the folders (the collection as it was trained), then on
    those plus a share of the other half, then on everything; encodes all documents each time
    and measures precision@10 (Hamming, re-ranked pool of 1,000, exact cosine on that fit's
    tf-idf) for queries from the new folders and from the old ones.
    """
    from nashcli import codes, documents, search
    from nashcli.pipeline import SemanticHasher

    texts = [documents.read_text(p) for p in paths]
    labels = np.array([p.parent.name for p in paths])
    old = set(sorted(set(labels))[::2])
    in_old = np.array([label in old for label in labels])
    idx_old, idx_new = np.flatnonzero(in_old), np.flatnonzero(~in_old)
    rng = np.random.default_rng(seed)
    queries = {
        "new-topic queries": rng.choice(idx_new, min(n_queries, len(idx_new)), replace=False),
        "old-topic queries": rng.choice(idx_old, min(n_queries, len(idx_old)), replace=False),
    }
    fits = {"old folders only": idx_old}
    for share in (0.1, 0.25, 0.5):
        extra = rng.choice(idx_new, int(share * len(idx_old)), replace=False)
        fits[f"old + new = {share:.0%} of old"] = np.concatenate([idx_old, extra])
    fits["everything"] = np.arange(len(texts))
    results = {}
    for name, fit_idx in fits.items():
        hasher = SemanticHasher(64, method=method, device="cpu", seed=seed)
        hasher.fit([texts[i] for i in fit_idx])
        x = hasher.vectorize(texts)
        words = codes.pack_codes(hasher.encode_vectors(x))
        planes = codes.to_planes(words)
        row = {}
        for qname, q in queries.items():
            idx, _ = search.hamming_topk(planes, words[q], 1001)
            sims = (x[q] @ x.T).toarray()
            sims[np.arange(len(q)), q] = -np.inf
            top = np.argsort(-sims, axis=1, kind="stable")[:, :10]
            ham = rerank = 0
            for i, qq in enumerate(q):
                cand = np.array([c for c in idx[i] if c != qq])
                ham += int((labels[cand[:10]] == labels[qq]).sum())
                cos = (x[cand] @ x[qq].T).toarray().ravel()
                best = cand[np.argsort(-cos, kind="stable")[:10]]
                rerank += int((labels[best] == labels[qq]).sum())
            row[qname] = {
                "hamming": ham / (10 * len(q)),
                "rerank pool 1000": rerank / (10 * len(q)),
                "exact cosine": float((labels[top] == labels[q][:, None]).mean()),
            }
        results[f"{name} ({len(fit_idx)} docs)"] = row
        print(f"  fitted on {name}: {row}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--dataset", choices=sorted(FILES), default="20ng")
    parser.add_argument(
        "--methods", default="", help="other hashing methods to compare (e.g. lsh), in-process"
    )
    parser.add_argument(
        "--no-process-timing", action="store_true", help="skip the per-process query timings"
    )
    parser.add_argument(
        "--top-labels", type=int, default=0, help="only the N largest folders (0: all)"
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--bits", type=int, default=64, help="code length of the index")
    parser.add_argument(
        "--seed", type=int, default=0, help="draws the folder's articles and the queries"
    )
    parser.add_argument("--pools", default="200,1000")
    parser.add_argument(
        "--sweep", action="store_true", help="also sweep the fused weights (first query half)"
    )
    parser.add_argument(
        "--plain-distance",
        action="store_true",
        help="also rank with the plain Hamming distance in place of the weighted one",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per query-time figure")
    parser.add_argument("--retrain-study", action="store_true")
    parser.add_argument("--fractions", default="0.25,0.5,0.67,1.0")
    parser.add_argument("--study-method", help="method of the retrain study [default: DEFAULT]")
    parser.add_argument(
        "--drift-study", metavar="METHOD", help="also run the new-topics study with METHOD"
    )
    parser.add_argument(
        "--training-caps",
        default="",
        help="also index with the model fitted on at most N documents each (e.g. 5000,10000)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and index")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="nash-bench-"))
    env = dict(os.environ, NASH_HOME=str(work / "home"))
    os.environ["NASH_HOME"] = env["NASH_HOME"]
    nash = [shutil.which("nash") or "nash"]
    figures: dict = {"docs": args.docs, "cores": os.cpu_count()}
    try:
        folder = work / "news"
        paths = build_folder(folder, args.docs, args.dataset, args.seed, args.top_labels)
        figures["dataset"] = args.dataset
        figures["top_labels"] = args.top_labels
        figures["seed"] = args.seed
        figures["bits"] = args.bits
        print(f"{len(paths)} documents in {len(list(folder.iterdir()))} folders under {folder}")

        wall, cpu, out = timed([*nash, "index", str(folder), "--bits", str(args.bits)], env)
        figures["index_scratch"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
        print(out.strip(), "\n ", figures["index_scratch"], flush=True)
        wall, cpu, out = timed([*nash, "index", str(folder)], env, 3)
        figures["reindex_unchanged"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
        print(out.strip(), "\n ", figures["reindex_unchanged"], flush=True)
        figures["load_average"] = os.getloadavg()

        pools = [int(p) for p in args.pools.split(",")]
        figures["precision_at_10"] = {
            "default": precision("news", args.queries, pools, args.seed, args.plain_distance)
        }
        for k, v in figures["precision_at_10"]["default"].items():
            print(f"  precision@10 {k:32s} {v:.4f}", flush=True)
        if args.sweep:
            figures["fused_sweep_first_half"] = sweep("news", args.queries)
            if args.plain_distance:
                figures["fused_sweep_first_half_plain_distance"] = sweep(
                    "news", args.queries, plain=True
                )
            for key in ("fused_sweep_first_half", "fused_sweep_first_half_plain_distance"):
                for k, v in figures.get(key, {}).items():
                    print(f"  {key} {k:32s} {v:.4f}", flush=True)
        for method in filter(None, args.methods.split(",")):
            _, found = index_apart(work, folder, f"news-{method}", {"method": method}, args, pools)
            figures["precision_at_10"][method] = found
            for k, v in found.items():
                print(f"  {method} precision@10 {k:32s} {v:.4f}", flush=True)
        for cap in [int(c) for c in filter(None, args.training_caps.split(","))]:
            key, options = f"fitted on {cap}", {"max_documents": cap}
            seconds, found = index_apart(
                work, folder, f"news-cap{cap}", options, args, pools, bits=args.bits
            )
            figures.setdefault("training_caps", {})[key] = {
                "index_wall_s": round(seconds, 2),
                "precision_at_10": found,
            }
            print(f"  {key}: index {round(seconds, 2)} s", flush=True)
            for k, v in found.items():
                print(f"  {key} precision@10 {k:32s} {v:.4f}", flush=True)
        figures["index_bytes"] = index_bytes("news")
        print(f"  index size on disk: {figures['index_bytes']}")
        figures["tfidf_source_pool100"] = tfidf_source_cost("news")
        print(f"  candidates' tf-idf (pool 100): {figures['tfidf_source_pool100']}")

        query = str(paths[0])
        reference = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import nashcli.cli": [sys.executable, "-c", "import nashcli.cli"],
            "import torch": [sys.executable, "-c", "import torch"],
            "nash --help": [*nash, "--help"],
            "nash similar FILE": [*nash, "similar", query, "--json", "-c", "news"],
            "nash similar FILE --rank cosine": [
                *nash,
                "similar",
                query,
                "--json",
                "--rank",
                "cosine",
                "-c",
                "news",
            ],
            "nash similar FILE --rank hamming": [
                *nash,
                "similar",
                query,
                "--json",
                "--rank",
                "hamming",
                "-c",
                "news",
            ],
            "nash similar --text": [
                *nash,
                "similar",
                "--text",
                "rocket launch orbit",
                "--json",
                "-c",
                "news",
            ],
        }
        figures["process"] = {}
        for k, cmd in reference.items() if not args.no_process_timing else ():
            wall, cpu, _ = timed(cmd, env, args.repeat)
            figures["process"][k] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
            print(f"  {k:32s} wall {wall:.3f} s  cpu {cpu:.3f} s", flush=True)

        if args.retrain_study:
            fractions = [float(f) for f in args.fractions.split(",")]
            figures["retrain_study"] = retrain_study(
                paths, fractions, args.queries, args.study_method
            )
        if args.drift_study:
            figures["drift_study"] = drift_study(paths, args.drift_study)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
