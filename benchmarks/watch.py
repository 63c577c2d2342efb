"""`nash watch` figures: how soon a new file is answerable, bursts, idle CPU, memory over a soak.

Builds a folder of 20 Newsgroups articles (a temp dir, one folder per newsgroup, from
``../shared/datasets``), indexes it with the real ``nash index``, starts the real ``nash watch``
on it (a child process), and measures:

- latency: a new article is written into the folder; the time until the index lists it (polled
  through the reader API every 20 ms), then a ``find_similar`` with its text must return it first;
  median / p90 / max over ``--probes`` files written one at a time;
- a burst of ``--burst`` new files written at once: seconds until all are in the index, and how
  many index updates (batches) the watcher used;
- idle: the watcher's CPU seconds (user + sys, psutil) over ``--idle`` seconds with no changes;
- soak: ``--soak`` seconds of steady changes (``--rate`` per second, cycling create / edit /
  rename / delete); the watcher's RSS at the start and end (and its maximum), then a check that
  the index lists exactly the files on disk;
- ``nash index`` on the watched collection while the watcher runs (it waits for the lock);
- with ``--retrain``: enough new files to make ``indexing.retrain_due`` true, then queries
  every 0.5 s while the watcher retrains in the background (all must answer), and the new
  generation once it switched.

References measured in the same run: the from-scratch ``nash index`` of the folder and the
watcher's debounce (the floor of the latency).

Run: ``nice -n 10 python benchmarks/watch.py [--docs 10000] [--soak 600] [--retrain]``; add
``--workdir DIR`` to keep the folder and index, and run again with ``--workdir DIR --reuse`` to
measure on that collection as it is now (e.g. after the watcher refitted its model).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NASH = [sys.executable, "-c", "from nashcli.cli import main; main()"]


def load_articles(seed: int = 0) -> list[dict]:
    """20NG articles with some text, shuffled (both splits)."""
    with gzip.open(DATASETS / "20newsgroups_bydate.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    docs = [d for d in docs if len(d["labels"]) == 1 and len(d["text"].split()) >= 20]
    random.Random(seed).shuffle(docs)
    return docs


def write_article(folder: Path, doc: dict, prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}{doc['id'].replace('/', '_')}.txt"
    path.write_text(doc["text"], encoding="utf-8")
    return path


def wait_until(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def documents(name: str) -> int:
    from nashcli.index import Collection

    with Collection.open(name).snapshot() as snap:
        return snap.documents


def is_listed(name: str, path: Path) -> bool:
    from nashcli.index import Collection

    with Collection.open(name).snapshot() as snap:
        return snap.doc_by_path(str(path)) is not None


def live_paths(name: str) -> set[str]:
    from nashcli.index import Collection

    with Collection.open(name).snapshot() as snap:
        return {doc.path for doc in snap.live_docs()}


class Watcher:
    """The real `nash watch` in a child process, output to a log file."""

    def __init__(self, root: Path, log: Path, env: dict) -> None:
        import psutil

        self.log = log
        self.handle = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*NASH, "watch", str(root)],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        self.ps = psutil.Process(self.proc.pid)

    def output(self) -> str:
        return self.log.read_text()

    def batches(self) -> int:
        """Index updates the watcher reported so far (one line per applied chunk)."""
        return sum(
            1
            for line in self.output().splitlines()
            if line[9:].startswith(("indexed ", "moved ", "removed "))
        )

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def quiet_for(self, seconds: float, timeout: float = 120.0) -> bool:
        """Wait until the watcher's output has not changed for ``seconds``."""
        deadline = time.monotonic() + timeout
        last, since = self.output(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.output()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return True
        return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(120)
        self.handle.close()
        return code


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10000, help="documents in the collection")
    parser.add_argument("--probes", type=int, default=30, help="single new files for latency")
    parser.add_argument("--burst", type=int, default=1000, help="files written at once")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU sampling")
    parser.add_argument("--soak", type=float, default=600.0, help="seconds of steady changes")
    parser.add_argument("--rate", type=float, default=2.0, help="changes per second in the soak")
    parser.add_argument("--retrain", action="store_true", help="also measure a background retrain")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here (else temp)")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the collection a --workdir run left there"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="nash-watch-bench-"))
    home, root = work / "home", work / "20ng"
    reuse = args.reuse and (home / "collections" / "20ng").is_dir()
    if not reuse:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    os.environ["NASH_HOME"] = str(home)
    env = dict(os.environ)
    name = "20ng"
    tag = time.strftime("%H%M%S")  # this run's subfolders: new-TAG, burst-TAG, soak-TAG
    results: dict = {"command": " ".join([sys.executable, *sys.argv]), "docs": args.docs}
    print(f"work dir {work}", flush=True)

    articles = load_articles()
    if reuse:  # articles already in the folder (under any prefix) are not written again
        used = {re.sub(r"^((probe|s\d+|r\d+)-)*", "", p.stem) for p in root.rglob("*.txt")}
        spare = iter([d for d in articles if d["id"].replace("/", "_") not in used])
        results["reused_collection_of_documents"] = documents(name)
    else:
        need = args.docs + args.probes + args.burst + int(args.soak * args.rate) + 10
        if len(articles) < need:
            raise SystemExit(f"only {len(articles)} articles, the run needs {need}: lower sizes")
        spare = iter(articles[args.docs :])
        for doc in articles[: args.docs]:
            write_article(root / doc["labels"][0], doc)

        # Reference: the from-scratch index of the same folder.
        start = time.perf_counter()
        done = subprocess.run([*NASH, "index", str(root)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        results["index_from_scratch_s"] = round(time.perf_counter() - start, 2)
        print(f"nash index from scratch: {results['index_from_scratch_s']} s", flush=True)

    watcher = Watcher(root, work / "watch.log", env)
    try:
        start = time.perf_counter()
        if not wait_until(lambda: "up to date" in watcher.output(), 600, 0.1):
            raise SystemExit(f"the watcher did not catch up:\n{watcher.output()}")
        results["watch_start_catch_up_s"] = round(time.perf_counter() - start, 2)
        watcher.quiet_for(1.0)

        # 1. Latency of single new files.
        from nashcli.similar import find_similar

        latencies, query_s, answered = [], [], 0
        for _ in range(args.probes):
            doc = next(spare)
            folder = root / f"new-{tag}"
            t0 = time.perf_counter()
            path = write_article(folder, doc, "probe-")
            ok = wait_until(lambda p=path: is_listed(name, p), 30)
            latencies.append(time.perf_counter() - t0 if ok else float("inf"))
            q0 = time.perf_counter()
            hits = find_similar(doc["text"], name, top=1)
            query_s.append(time.perf_counter() - q0)
            if hits and Path(hits[0].path) == path:
                answered += 1
            else:
                first = (hits[0].path.name, hits[0].distance, hits[0].score) if hits else None
                print(f"  {path.name} is not the first hit: {first}", flush=True)
            time.sleep(1.0)
        results["latency_s"] = (
            {}
            if not latencies
            else {
                "median": round(statistics.median(latencies), 3),
                "p90": round(percentile(latencies, 0.9), 3),
                "max": round(max(latencies), 3),
                "probes": args.probes,
                "answered_first_by_find_similar": answered,
                "find_similar_median_s": round(statistics.median(query_s), 3),
                "debounce_floor_s": 0.2,
            }
        )
        print(f"latency: {results['latency_s']}", flush=True)

        # 2. A burst.
        watcher.quiet_for(1.0)
        before, batches_before = documents(name), watcher.batches()
        t0 = time.perf_counter()
        for _ in range(args.burst):
            write_article(root / f"burst-{tag}", next(spare))
        written = time.perf_counter() - t0
        ok = wait_until(lambda: documents(name) >= before + args.burst, 300, 0.05)
        absorbed = time.perf_counter() - t0
        watcher.quiet_for(1.0)
        results["burst"] = {
            "files": args.burst,
            "write_s": round(written, 2),
            "absorbed_s": round(absorbed, 2) if ok else None,
            "index_updates": watcher.batches() - batches_before,
        }
        print(f"burst: {results['burst']}", flush=True)

        # 3. Idle CPU.
        watcher.quiet_for(2.0)
        cpu0, t0 = watcher.cpu(), time.perf_counter()
        time.sleep(args.idle)
        cpu1, elapsed = watcher.cpu(), time.perf_counter() - t0
        results["idle"] = {
            "seconds": round(elapsed, 1),
            "cpu_s": round(cpu1 - cpu0, 3),
            "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 3),
        }
        print(f"idle: {results['idle']}", flush=True)

        # 4. Soak: steady changes, memory over time.
        rng = random.Random(1)
        mine: list[Path] = []
        samples: list[tuple[float, float]] = [(0.0, watcher.rss_mb())]
        cpu0, t0 = watcher.cpu(), time.perf_counter()
        ops = {"create": 0, "edit": 0, "rename": 0, "delete": 0}
        step = 1.0 / args.rate
        i = 0
        while time.perf_counter() - t0 < args.soak:
            kind = ("create", "edit", "create", "rename", "create", "delete")[i % 6]
            if kind == "create" or not mine:
                mine.append(write_article(root / f"soak-{tag}", next(spare), f"s{i}-"))
                kind = "create"
            elif kind == "edit":
                target = rng.choice(mine)
                with open(target, "a", encoding="utf-8") as f:
                    f.write(f"\nedit {i}\n")
            elif kind == "rename":
                k = rng.randrange(len(mine))
                new = mine[k].with_name(f"r{i}-" + mine[k].name)
                os.replace(mine[k], new)
                mine[k] = new
            else:
                mine.pop(rng.randrange(len(mine))).unlink()
            ops[kind] += 1
            i += 1
            if time.perf_counter() - t0 >= len(samples) * 10:
                samples.append((time.perf_counter() - t0, watcher.rss_mb()))
            time.sleep(max(0.0, t0 + i * step - time.perf_counter()))
        soak_s = time.perf_counter() - t0
        on_disk = {
            str(p) for p in root.rglob("*.txt") if p.is_file() and not p.name.startswith(".")
        }
        c0 = time.perf_counter()
        converged = wait_until(lambda: live_paths(name) == on_disk, 300, 0.25)
        converged_s = time.perf_counter() - c0
        samples.append((time.perf_counter() - t0, watcher.rss_mb()))
        listed = live_paths(name)
        half = [rss for t, rss in samples if t >= soak_s / 2]
        results["soak"] = {
            "seconds": round(soak_s, 1),
            "operations": ops,
            "rss_start_mb": round(samples[0][1], 1),
            "rss_end_mb": round(samples[-1][1], 1),
            "rss_max_mb": round(max(r for _, r in samples), 1),
            "rss_second_half_min_max_mb": [round(min(half), 1), round(max(half), 1)],
            "rss_samples_mb": [[round(t), round(r, 1)] for t, r in samples],
            "cpu_percent_of_one_core": round(100 * (watcher.cpu() - cpu0) / soak_s, 2),
            "index_matches_disk": listed == on_disk,
            "converged_after_last_change_s": round(converged_s, 2) if converged else None,
            "missing_from_index": len(on_disk - listed),
            "stale_in_index": len(listed - on_disk),
        }
        print(f"soak: {results['soak']}", flush=True)

        # 5. `nash index` while the watcher runs: it waits for the lock, then runs.
        t0 = time.perf_counter()
        done = subprocess.run([*NASH, "index", str(root)], env=env, capture_output=True, text=True)
        results["nash_index_while_watching"] = {
            "exit_code": done.returncode,
            "seconds": round(time.perf_counter() - t0, 2),
            "stderr": done.stderr.strip()[-200:],
        }
        print(f"nash index while watching: {results['nash_index_while_watching']}", flush=True)

        if args.retrain:
            results["retrain"] = measure_retrain(name, root / f"growth-{tag}", spare, watcher)
            print(f"retrain: {results['retrain']}", flush=True)
    finally:
        results["watcher_exit_code"] = watcher.stop()
    print(f"watcher stopped with exit code {results['watcher_exit_code']}", flush=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


def measure_retrain(name: str, folder: Path, spare, watcher: Watcher) -> dict:
    """Grow the collection past the retrain threshold; query throughout the background retrain."""
    from nashcli import indexing
    from nashcli.index import Collection
    from nashcli.similar import find_similar

    with Collection.open(name).snapshot() as snap:
        gen0, trained, rows = snap.generation, snap.trained_docs, snap.rows
    needed = 0
    while not indexing.due_for_retrain(trained, rows - trained + needed):
        needed += 1
    probe = next(spare)["text"]
    rss_before = watcher.rss_mb()
    written = 0
    for doc in spare:
        if written >= needed + 10:
            break
        write_article(folder, doc)
        written += 1
    t0 = time.perf_counter()
    queries, failures, slowest = 0, 0, 0.0
    switched = None
    while time.perf_counter() - t0 < 1800:
        q0 = time.perf_counter()
        try:
            find_similar(probe, name, top=10)
        except Exception:  # noqa: BLE001 - counted: a query that does not answer
            failures += 1
        slowest = max(slowest, time.perf_counter() - q0)
        queries += 1
        with Collection.open(name).snapshot() as snap:
            if snap.generation != gen0 and "retrained:" in watcher.output():
                switched = time.perf_counter() - t0
                break
        time.sleep(0.5)
    with Collection.open(name).snapshot() as snap:
        return {
            "files_added": written,
            "generation_before_after": [gen0, snap.generation],
            "trained_docs_after": snap.trained_docs,
            "switched_after_s": round(switched, 1) if switched else None,
            "queries_during": queries,
            "queries_failed": failures,
            "slowest_query_s": round(slowest, 3),
            "watcher_rss_before_after_mb": [round(rss_before, 1), round(watcher.rss_mb(), 1)],
        }


if __name__ == "__main__":
    main()
