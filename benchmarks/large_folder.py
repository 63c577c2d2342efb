"""Time a first `nash index` of a large folder (wall, CPU, peak memory), then what follows it.

Writes a folder of ``--docs`` plain-text documents (a temp dir) from the benchmark corpora in
``../shared/datasets`` (20 Newsgroups, Reuters, TMC: 58,219 non-empty texts; beyond them, each
further document is a random 70 % of one of their words, in order, so the vocabulary stays
realistic), then runs the real ``nash index`` on it in a subprocess, with the default settings
(a collection larger than ``pipeline.MAX_TRAINING_DOCUMENTS`` is fitted on a random sample of
that many) and, with ``--uncapped``, fitted on every document as before the cap, in the same run.
After the default index: a second ``nash index`` with nothing changed (from a cold page cache
too, where the script may empty it: Linux, as root), ``nash similar FILE``
(the median of 3 whole processes) and the index's size on disk.

Run: ``python benchmarks/large_folder.py --docs 120000 [--uncapped] [--json F]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SOURCES = ("20newsgroups_bydate", "reuters21578_modapte", "tmc2007_500_bow")
UNCAPPED = (
    "import sys; from nashcli.indexing import index_folder; "
    "r = index_folder(sys.argv[1], hasher_options={'max_documents': None}); "
    "print(f'{r.documents:,} documents, fitted on all')"
)


def corpus_texts() -> list[str]:
    """Every text of the three benchmark corpora, in file order (empty ones included)."""
    texts = []
    for name in SOURCES:
        with gzip.open(DATASETS / f"{name}.jsonl.gz", "rt", encoding="utf-8") as lines:
            texts.extend(json.loads(line)["text"] for line in lines)
    return texts


def write_folder(folder: Path, docs: int, seed: int = 0) -> None:
    """``docs`` text files, 1,000 a sub-folder."""
    texts = [text for text in corpus_texts() if text.strip()]
    rng = random.Random(seed)
    rng.shuffle(texts)
    for i in range(docs):
        text = texts[i % len(texts)]
        if i >= len(texts):
            text = " ".join(w for w in text.split() if rng.random() < 0.7)
        sub = folder / f"d{i // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.txt").write_text(text, encoding="utf-8")


def timed(cmd: list[str], env: dict) -> dict:
    """Wall and CPU seconds and peak RSS (MB) of ``cmd`` (a fresh child process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # ru_maxrss of children is the largest of any child so far: run the largest last, or alone.
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024),
        "summary": out.strip().splitlines()[0] if out.strip() else "",
    }


def drop_page_cache() -> bool:
    """Empty the OS page cache (Linux, as root), so that the next run reads the folder from
    disk as it would after a reboot; False where that is not allowed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def afterwards(nash: str, folder: Path, env: dict) -> dict:
    """Wall seconds of a re-index with nothing changed (with the page cache emptied first when
    allowed, then warm) and of ``nash similar FILE`` (median of 3), and the index's bytes on
    disk."""
    query = str(next(iter(sorted(folder.glob("d0003/*.txt")))))
    similar = [timed([nash, "similar", query, "--json"], env)["wall_s"] for _ in range(3)]
    home = Path(env["NASH_HOME"])
    reindex = [nash, "index", str(folder)]
    cold = timed(reindex, env)["wall_s"] if drop_page_cache() else None
    return {
        "reindex_unchanged_cold_s": cold,
        "reindex_unchanged_s": timed(reindex, env)["wall_s"],
        "similar_file_s": sorted(similar)[1],
        "index_mb": round(sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=120_000)
    parser.add_argument("--uncapped", action="store_true", help="also index fitted on all")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from nashcli.pipeline import MAX_TRAINING_DOCUMENTS

    work = Path(tempfile.mkdtemp(prefix="nash-large-"))
    figures: dict = {"docs": args.docs, "max_training_documents": MAX_TRAINING_DOCUMENTS}
    try:
        folder = work / "docs"
        write_folder(folder, args.docs)
        # Both runs in this interpreter's environment: the `nash` beside it, not one on PATH.
        nash = str(Path(sys.executable).with_name("nash"))
        runs = {"default": [nash, "index", str(folder)]}
        if args.uncapped:  # after the default: ru_maxrss only ever grows
            runs["fitted on every document"] = [sys.executable, "-c", UNCAPPED, str(folder)]
        for label, cmd in runs.items():
            env = dict(os.environ, NASH_HOME=str(work / f"home-{len(figures)}"))
            figures[label] = timed(cmd, env)
            figures[label]["load_average"] = os.getloadavg()
            if label == "default":
                figures[label]["after"] = afterwards(nash, folder, env)
            print(label, figures[label], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
