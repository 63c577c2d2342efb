"""Precision@100 tables of every method on the three benchmark corpora, resumable.

    python benchmarks/eval_tables.py                      # everything, in priority order
    python benchmarks/eval_tables.py --datasets reuters --methods nash-dn,lsh --bits 16,32
    python benchmarks/eval_tables.py --plan               # list the runs still to do

Priority order (so that a run cut short loses seeds before coverage): the headline methods
(``--first-methods``: the default method, NASH-DN, exact TF-IDF, LSH) x bit lengths on Reuters,
supervised NASH-DN on Reuters, the headline methods on 20 Newsgroups and TMC, then every other
method on each corpus, then extra seeds of the headline rows (the best hashing method at seed 0
and NASH-DN, on Reuters and 20NG).

Each finished run is appended at once to ``results/eval_runs.jsonl`` (one JSON object per line,
with the commit, machine, date and train seconds), so the script can be stopped at any point and
started again: runs already recorded for the same engine source (a hash of the engine's modules)
are skipped. ``results/eval_tables.md`` and ``results/eval_tables.json`` are rewritten from all
recorded runs after every run. ``--split random`` runs (each seed its own shuffle of the corpus)
get tables of their own beside the canonical ones.

An engine edit makes every method's runs stale by hash, even a method it does not touch.
``--carry-over`` re-runs, with the edited engine, one recorded cell per method (and one
supervised cell where there are any) in its recorded number of threads; a method whose figures
come out identical to the last digit keeps its runs (``results/engine_equivalences.jsonl``), any
other is reported and re-run as usual. A recorded figure can also differ because the machine
did (another CPU's float kernels: a change at the 6th decimal that grows through training;
and before 65177cc its sort, which chose the vocabulary among words of equal count):
``--carry-over --reference REV`` then re-runs each differing cell with the engine of git
revision REV as well, by REV's own copy of this script (its hash of REV's engine must be the
recorded engine's, so REV must be 1c41086 or later), here; where the edited engine
matches it to the last digit, the edit is shown not to change the method's figures, and the
equivalence line says the comparison was made on this machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from operator import itemgetter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The checkout whose engine is imported and hashed: this one, or, for a ``--reference`` re-run
#: (a child process), a worktree of an earlier commit.
ENGINE_ROOT = Path(os.environ.get("NASH_ENGINE_ROOT") or ROOT)
sys.path.insert(0, str(ENGINE_ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # its neighbours, however it is loaded

from revisions import cpu_model, cpu_name, git_commit, reference_worktree  # noqa: E402

from nashcli import evaluation  # noqa: E402
from nashcli.datasets import load_dataset  # noqa: E402

#: Engine modules whose bytes decide each kind of method's results (the method's own spec is
#: hashed too). All of methods.py counts, so any edit there makes every earlier run stale.
#: metrics.py counts for trained models since 2026-12-06: its validation precision picks the
#: epoch they keep. tokens.py counts since the tokenizer moved there out of features.py, and
#: vectors.py since training gathers its minibatches' rows with it.
SOURCES = {
    "tfidf": ("tokens.py", "features.py"),
    "lsh": ("tokens.py", "features.py", "baselines.py", "methods.py"),
    "vdsh": (
        "tokens.py",
        "features.py",
        "baselines.py",
        "training.py",
        "vectors.py",
        "methods.py",
        "metrics.py",
    ),
    "nash": (
        "tokens.py",
        "features.py",
        "model.py",
        "training.py",
        "vectors.py",
        "methods.py",
        "metrics.py",
    ),
}
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
EQUIVALENCES = "engine_equivalences.jsonl"
FIGURES = ("precision_at_100", "precision_at_100_tie_aware")
TITLES = {
    "reuters-vdsh": (
        "Reuters-21578 as the VDSH release the papers used (20 category-name-token labels, "
        "5-500 words, test split halved into validation and queries; `datasets.vdsh_release`)"
    ),
    "20ng-vdsh": (
        "20 Newsgroups as the VDSH release (headers, quotes and signatures removed, 5-500 "
        "words, test split halved into validation and queries; `datasets.vdsh_release`)"
    ),
    "reuters": "Reuters-21578 (ModApte, 90 categories, multi-label)",
    "20ng": "20 Newsgroups (bydate, 20 groups)",
    "tmc": "TMC 2007 (500-word bag-of-words version, 22 labels, multi-label)",
}
PAPER = {  # published figures, shown beside ours and labelled as the paper's (never measured here)
    "reuters": [
        ("NASH-DN (paper, Shen et al. 2018)", [0.7470, 0.8013, 0.8418, 0.8297, 0.7924]),
        ("NASH-DN supervised (paper)", [0.9214, 0.9327, 0.9380, 0.9427, 0.9336]),
        ("best later published (AMMI/SNUH)", [None, 0.832, 0.847, 0.856, 0.862]),
    ],
    "20ng": [
        ("NASH-DN (paper, as recalled, unverified)", [0.4040, 0.5610, 0.6160, 0.6159, 0.5725])
    ],
}
# The papers' figures were measured on the VDSH release, so they belong beside its tables too.
PAPER["reuters-vdsh"] = PAPER["reuters"]
PAPER["20ng-vdsh"] = PAPER["20ng"]
PAPER_BITS = [8, 16, 32, 64, 128]


def table_name(run: dict) -> str:
    """The table a run belongs to: its corpus, plus the split where it is not the canonical one
    (a random split is another experiment on the same documents, never mixed into its table)."""
    split = run.get("split", "canonical")
    return run["dataset"] if split == "canonical" else f"{run['dataset']}@{split}"


def title(name: str) -> str:
    dataset, _, split = name.partition("@")
    base = TITLES.get(dataset, dataset)
    if split == "random":
        return (
            f"{base.split(' (')[0]}, random split (every document shuffled into 60/20/20 "
            "database/validation/queries; each seed draws its own split)"
        )
    return base


def published(name: str) -> list[tuple[str, list[float | None]]]:
    """The papers' rows for a table: the random split of a corpus compares with them too."""
    return PAPER.get(name.partition("@")[0], [])


# --------------------------------------------------------------------------------------------
# Provenance


def engine_fingerprint(method: str) -> str:
    """Hash of everything in the engine that decides ``method``'s results."""
    from nashcli import methods

    spec = methods.SPECS.get(method)
    kind = "tfidf" if method == evaluation.EXACT else getattr(spec, "kind", "nash")
    digest = hashlib.sha256(f"{method}\0{spec!r}\0".encode())
    # All of methods.py, not only fit_model: its helpers (k-NN graph use, pseudo-labels, target
    # mixing) decide results too, and an edit there once left a stale run looking current.
    for name in SOURCES.get(kind, SOURCES["nash"] + ("baselines.py",)):
        digest.update(name.encode() + b"\0" + (ENGINE_ROOT / "nashcli" / name).read_bytes())
    return digest.hexdigest()[:12]


def fingerprints(method_names) -> dict[str, str]:
    """Per-method source hashes. The engine is imported first, so that what runs is what was
    hashed (the modules are otherwise imported lazily, possibly after an edit)."""
    import nashcli.baselines
    import nashcli.features
    import nashcli.methods
    import nashcli.model
    import nashcli.training  # noqa: F401

    return {m: engine_fingerprint(m) for m in method_names}


def machine(device: str) -> dict:
    import numpy
    import torch

    from nashcli.methods import resolve_device

    cpu = cpu_name()
    resolved = resolve_device(device)
    info = {
        "cpu": cpu,
        "cpu_model": cpu_model(),  # (recorded from 2026-12-06 17:30 UTC on)
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),  # its kernels' SIMD
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "device": str(resolved),
    }
    if resolved.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(resolved)
    return info


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# --------------------------------------------------------------------------------------------
# The plan


#: What a planned run is; a recorded run adds its figures and provenance.
PLAN_FIELDS = ("dataset", "split", "method", "bits", "supervised", "seed")


def run_key(run: dict) -> tuple:
    return tuple(run[field] for field in PLAN_FIELDS)


def searched_whole_training_split(run: dict) -> bool:
    """Whether ``run``'s database was the corpus's whole training split, as it is since the
    validation part carved from the training split is searched too (runs record
    ``val_searched``). Earlier runs of a canonical split whose validation part was carved (a
    tenth of the training split) searched the training part without it: their figures are of
    another protocol, so they count as not done."""
    if "val_searched" in run:
        return True
    carved = run["split"] == "canonical" and run["n_val"] == round(
        0.1 * (run["n_train"] + run["n_val"])
    )
    return not carved


def database_note(runs: list[dict]) -> str:
    """What a table's database is, from its runs (a table being re-run may mix both)."""
    old = [r for r in runs if not searched_whole_training_split(r)]
    if not old:
        if any(r.get("val_searched") for r in runs):
            return "the whole training split; a fixed 10% of it also guides early stopping"
        first = runs[0]
        return f"{first['n_val']:,} validation documents held out for early stopping"
    if len(old) == len(runs):
        return (
            "the training split without the fixed 10% of it held out for early stopping, "
            "as eval searched before 4152907"
        )
    return (
        f"{len(runs) - len(old)} of {len(runs)} runs searched the whole training split, "
        f"{len(old)} (before 4152907) the training split without its validation tenth"
    )


def coverage(dataset: str, methods: list[str], bits: list[int], split: str) -> list[dict]:
    return [
        dict(dataset=dataset, split=split, method=m, bits=b, supervised=False, seed=0)
        for m, b in evaluation.plan(methods, bits)
    ]


def best_method(
    done: list[dict], dataset: str, bits: list[int], split: str, among: list[str]
) -> str | None:
    """The hashing method with the highest mean tie-aware precision over ``bits`` at seed 0;
    ``None`` until each hashing method of ``among`` has its whole seed-0 row (workers side by
    side would otherwise crown the first row done: LSH, seconds a run, before NASH-DN)."""
    scores: dict[str, list[float]] = defaultdict(list)
    for run in done:
        if (
            run["dataset"] == dataset
            and run["split"] == split
            and run["seed"] == 0
            and not run["supervised"]
            and run["method"] != evaluation.EXACT
            and run["bits"] in bits
        ):
            scores[run["method"]].append(run["precision_at_100_tie_aware"])
    complete = {m: statistics.mean(v) for m, v in scores.items() if len(v) == len(bits)}
    if not complete or any(m not in complete for m in among if m != evaluation.EXACT):
        return None
    return max(complete, key=complete.get)


def full_plan(args: argparse.Namespace, done: list[dict]) -> list[dict]:
    runs: list[dict] = []
    # 1. the headline methods on every corpus (+ supervised), 2. the other methods, 3. seeds.
    first = [m for m in args.methods if m in args.first_methods]
    for dataset in args.datasets:
        if not args.supervised_only:
            runs += coverage(dataset, first, args.bits, args.split)
        if dataset in args.supervised_datasets:
            runs += [
                dict(dataset=dataset, split=args.split, method=m, bits=b, supervised=True, seed=s)
                for s in args.supervised_seeds
                for m in args.supervised_methods
                if m in args.methods
                for b in args.bits
            ]
    for dataset in args.datasets if not args.supervised_only else ():
        runs += coverage(dataset, args.methods, args.bits, args.split)
    for dataset in args.seed_datasets:
        if dataset not in args.datasets or args.supervised_only:
            continue
        headline = [m for m in args.headline_methods if m in args.methods]
        best = best_method(done, dataset, args.bits, args.split, args.methods)
        if best and best not in headline and best in args.methods:
            headline.insert(0, best)
        for method in headline:
            for seed in args.seeds:
                runs += [
                    dict(
                        dataset=dataset,
                        split=args.split,
                        method=method,
                        bits=b,
                        supervised=False,
                        seed=seed,
                    )
                    for b in args.bits
                ]
    seen, unique = set(), []
    for run in runs:
        if run_key(run) not in seen:
            seen.add(run_key(run))
            unique.append(run)
    return unique


# --------------------------------------------------------------------------------------------
# Recording


def load_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut off by a kill: ignore it
                continue
    return runs


def load_equivalences(out: Path) -> dict[tuple[str, str], str]:
    """``(method, engine) -> newer engine`` that ``--carry-over`` showed gives that method the
    same figures."""
    return {
        (item["method"], item["from"]): item["to"]
        for item in load_runs(out / EQUIVALENCES)
        if item.get("method") and item.get("from") and item.get("to")
    }


def carried(runs: list[dict], equivalences: dict[tuple[str, str], str]) -> list[dict]:
    """Runs of an engine shown equivalent to a newer one count as the newer one's; the engine
    that measured them stays in ``measured_engine``."""
    out = []
    for run in runs:
        engine, seen = run["engine"], set()
        while (run["method"], engine) in equivalences and engine not in seen:
            seen.add(engine)
            engine = equivalences[(run["method"], engine)]
        if engine != run["engine"]:
            run = {**run, "engine": engine, "measured_engine": run["engine"]}
        out.append(run)
    return out


def read_log(out: Path) -> list[dict]:
    """Every recorded run, equivalent engines carried over."""
    return carried(load_runs(out / "eval_runs.jsonl"), load_equivalences(out))


def append_run(path: Path, run: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(run) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def claim(path: Path, run: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"key": list(run_key(run)), "pid": os.getpid()}) + "\n")


def claimed_by_others(path: Path) -> set[tuple]:
    """Keys of runs claimed by other processes that are still alive (their latest claim)."""
    if not path.exists():
        return set()
    latest_claim: dict[int, tuple] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        latest_claim[item["pid"]] = tuple(item["key"])
    busy = set()
    for pid, key in latest_claim.items():
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        busy.add(key)
    return busy


def latest(runs: list[dict]) -> list[dict]:
    """The last recorded run per key (a re-run replaces an earlier one)."""
    by_key = {}
    for run in runs:
        by_key[run_key(run)] = run
    return list(by_key.values())


def fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(rows: list[tuple[str, list[str]]], bits: list[int], extra: str | None = None) -> str:
    header = "| method | " + " | ".join(str(b) for b in bits) + (f" | {extra}" if extra else "")
    lines = [header + " |", "|---" * (len(bits) + 1 + bool(extra)) + "|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    return "\n".join(lines)


def table_order(runs: list[dict]) -> list[str]:
    """Tables in the order of ``TITLES``, a corpus's random split after its canonical one, then
    any other corpus in order of appearance."""
    names = list(dict.fromkeys(table_name(r) for r in runs))

    def rank(name: str) -> tuple[int, bool]:
        dataset, _, split = name.partition("@")
        position = list(TITLES).index(dataset) if dataset in TITLES else len(TITLES)
        return position, bool(split)

    return sorted(names, key=rank)


def ordered(names) -> list[str]:
    """Methods in a fixed order: the default first, then the engine's list, exact cosine last."""
    from nashcli.methods import DEFAULT_METHOD, METHODS

    def rank(name: str) -> tuple:
        position = METHODS.index(name) if name in METHODS else len(METHODS)
        return (name == evaluation.EXACT, name != DEFAULT_METHOD, position, name)

    return sorted(set(names), key=rank)


def over_seeds(
    method: str, supervised: bool, multi: dict, bits: list[int]
) -> tuple[str, list[str]]:
    """One row of the over-seeds table: mean ± sample sd of each length's seeds."""
    cells = []
    for b in bits:
        v = multi.get((method, supervised, b), [])
        if len(v) >= 2:
            cells.append(f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f} (n={len(v)})")
        else:
            cells.append(fmt(v[0]) + " (n=1)" if v else "–")
    return (method + (" supervised" if supervised else ""), cells)


def counted(runs: list[dict], field: str) -> str:
    """How many documents ``field`` counts in ``runs``: one number, or the range where the rows
    were measured on preparations of different sizes (before 65177cc some CPUs chose another
    vocabulary, and so another VDSH release)."""
    low, high = min(r[field] for r in runs), max(r[field] for r in runs)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def table_section(table_id: str, runs: list[dict], bits: list[int]) -> list[str]:
    seed0 = [r for r in runs if r["seed"] == 0]
    unsup = [r for r in seed0 if not r["supervised"]]
    sup = [r for r in seed0 if r["supervised"]]
    first = runs[0]
    out = [
        f"## {title(table_id)}",
        "",
        f"Database = {counted(runs, 'n_train')} training documents ({database_note(runs)}), "
        "queries = "
        f"{counted(runs, 'n_test')} test documents; "
        f"features: {first.get('vocabulary', '?')} TF-IDF terms, built in "
        f"{fmt(first.get('feature_seconds'), 1)} s.",
        "",
    ]
    methods = ordered(r["method"] for r in unsup)
    cell = {(r["method"], r["bits"]): r for r in unsup}

    def rows(key: str, digits: int = 4) -> list[tuple[str, list[str]]]:
        result = []
        for m in methods:
            if m == evaluation.EXACT:
                exact = cell.get((m, 0))
                result.append(
                    (
                        "tfidf (exact cosine, no hashing)",
                        ["" for _ in bits] + [fmt(exact[key] if exact else None, digits)],
                    )
                )
            else:
                values = [cell.get((m, b)) for b in bits]
                result.append((m, [fmt(v[key] if v else None, digits) for v in values] + [""]))
        return result

    extra = "no hashing"
    out += [
        "Tie-aware precision@100 (unsupervised, seed 0):",
        "",
        table(rows("precision_at_100_tie_aware"), bits, extra),
        "",
    ]
    out += [
        "Ties broken by database position:",
        "",
        table(rows("precision_at_100"), bits, extra),
        "",
    ]
    out += [
        "Train seconds (wall clock, includes encoding both parts):",
        "",
        table(rows("train_seconds", 1), bits, extra),
        "",
    ]
    if sup:
        scell = {(r["method"], r["bits"]): r for r in sup}
        smethods = ordered(r["method"] for r in sup)
        srows = [
            (
                f"{m} supervised",
                [
                    fmt(scell[(m, b)]["precision_at_100_tie_aware"]) if (m, b) in scell else "–"
                    for b in bits
                ],
            )
            for m in smethods
        ]
        out += [
            "Supervised (tie-aware; positional in eval_tables.json):",
            "",
            table(srows, bits),
            "",
        ]
    seeds = sorted({r["seed"] for r in runs})
    if len(seeds) > 1:
        multi = defaultdict(list)
        for r in runs:
            if r["method"] != evaluation.EXACT:
                multi[(r["method"], r["supervised"], r["bits"])].append(r[TIE])
        mrows = []
        for supervised in (False, True):
            for m in ordered(
                r["method"] for r in runs if r["seed"] != 0 and r["supervised"] == supervised
            ):
                mrows.append(over_seeds(m, supervised, multi, bits))
        out += ["Over seeds (tie-aware mean ± sample sd, n = seeds):", "", table(mrows, bits), ""]
    if published(table_id):
        prow = [(name, [fmt(v) for v in values]) for name, values in published(table_id)]
        out += [
            "Published figures (the papers' preprocessed corpora, not measured here):",
            "",
            table(prow, PAPER_BITS),
            "",
        ]
    return out


def readme_snippet(runs: list[dict], bits: list[int]) -> str:
    """Compact tie-aware tables for the README, our rows beside the published ones."""
    lines: list[str] = []
    for table_id in table_order(runs):
        mine = [r for r in runs if table_name(r) == table_id]
        lines += [
            f"**{title(table_id)}**: {counted(mine, 'n_train')} database documents "
            f"({database_note(mine)}), {counted(mine, 'n_test')} queries; tie-aware "
            "precision@100.",
            "",
        ]
        rows: list[tuple[str, list[str]]] = []
        values = defaultdict(list)
        for r in mine:
            values[(r["method"], r["supervised"], r["bits"])].append((r["seed"], r[TIE]))
        for supervised in (False, True):
            for method in ordered(r["method"] for r in mine if r["supervised"] == supervised):
                label = method + (" supervised" if supervised else "")
                if method == evaluation.EXACT:
                    exact = values[(method, False, 0)][0][1]
                    rows.append(
                        ("tfidf: exact cosine, no hashing (any length)", [fmt(exact)] * len(bits))
                    )
                    continue
                cells, counts = [], []
                for b in bits:
                    got = values.get((method, supervised, b), [])
                    counts.append(len(got))
                    if len(got) >= 2:
                        vals = [v for _, v in got]
                        cells.append(f"{statistics.mean(vals):.4f} ± {statistics.stdev(vals):.4f}")
                    else:
                        cells.append(fmt(got[0][1]) if got else "–")
                suffix = ""
                if max(counts) > 1 and len(set(counts)) == 1:
                    suffix = f" (mean ± sd, {counts[0]} seeds)"
                elif max(counts) > 1:  # say which lengths had more than one seed
                    suffix = f" (mean ± sd where seeds > 1: n = {'/'.join(map(str, counts))})"
                rows.append((f"{label}{suffix}", cells))
        for name, figures in published(table_id):
            by_bits = dict(zip(PAPER_BITS, figures, strict=True))
            rows.append((f"*{name}*", [fmt(by_bits.get(b)) for b in bits]))
        lines += [table(rows, bits), ""]
    return "\n".join(lines)


TIE = "precision_at_100_tie_aware"


def newest_engine_runs(runs: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Per table (corpus and split), method and supervision, the runs of the engine that ran it
    most recently (latest per key).

    Reports use this rather than the working tree's hashes, so an edit in progress elsewhere does
    not hide finished runs; each run names its commit and engine hash in the log. Supervised and
    unsupervised rows of a method are separate rows, so re-running one keeps the other.
    """

    def row(run: dict) -> tuple[str, str, bool]:
        return table_name(run), run["method"], bool(run["supervised"])

    newest: dict[tuple[str, str, bool], tuple[str, str]] = {}
    for run in runs:
        if row(run) not in newest or run["date"] >= newest[row(run)][0]:
            newest[row(run)] = (run["date"], run["engine"])
    engines = {
        f"{d}/{m}" + ("/supervised" if s else ""): engine
        for (d, m, s), (_, engine) in newest.items()
    }
    kept = [r for r in runs if r["engine"] == newest[row(r)][1]]
    return latest(kept), engines


def machines(runs: list[dict]) -> str:
    """The CPUs the runs were measured on, with how many each (figures can differ between
    CPUs in the last digits, which grow through training)."""
    cpus = Counter(r.get("machine", {}).get("cpu", "unknown") for r in runs)
    return " and ".join(f"{cpu} ({n:,} runs)" for cpu, n in cpus.most_common())


def write_reports(out_dir: Path, runs: list[dict], meta: dict, bits: list[int]) -> None:
    current, prints = newest_engine_runs(runs)
    all_bits = sorted({r["bits"] for r in current if r["bits"]} | set(bits))
    lines = [
        "# `nash eval` tables: precision of the top 100",
        "",
        "Generated by `benchmarks/eval_tables.py` (do not edit by hand). Database = training "
        "documents, queries = test documents, a hit shares at least one label. "
        '"Tie-aware" is the exact expectation over random orders of documents tied in Hamming '
        "distance; the positional figure breaks ties by database position. `tfidf` = exact "
        "TF-IDF cosine, no hashing (one number, independent of the code length).",
        "",
        "Per method, only runs of the engine version that ran it most recently are shown "
        "(per-method source hashes in eval_tables.json; commits "
        f"{', '.join(sorted({r['commit'] for r in current}))}); "
        f"machines: {machines(current)}, {meta['machine']['usable_cores']} usable cores "
        f"(shared with other jobs), torch {meta['machine']['torch']}, device "
        f"{meta['machine']['device']}; last update {meta['updated']}.",
        "",
    ]
    carried_runs = sum("measured_engine" in r for r in current)
    if carried_runs:
        lines += [
            f"{carried_runs} of these runs were measured by an earlier engine and count as the "
            "current one's because `--carry-over` re-ran a recorded cell of their method with "
            "the current engine and got identical figures, or, run on another CPU than the "
            "record, figures identical to the recorded engine's re-run there "
            f"(`{EQUIVALENCES}`).",
            "",
        ]
    for table_id in table_order(current):
        mine = [r for r in current if table_name(r) == table_id]
        lines += table_section(table_id, mine, all_bits)
    (out_dir / "eval_tables.md").write_text("\n".join(lines), encoding="utf-8")
    summary = {"meta": {**meta, "engines": prints}, "runs": current}
    partial = out_dir / "eval_tables.json.partial"
    partial.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    partial.replace(out_dir / "eval_tables.json")


def execute(run: dict, args: argparse.Namespace, problems: dict, prints: dict, meta: dict) -> dict:
    """Run one planned cell with the engine in the tree; its log record. ``problems`` caches the
    last corpus's features between calls."""
    key = (run["dataset"], run["split"], run["seed"] if run["split"] == "random" else 0)
    if key not in problems:
        t0 = time.perf_counter()
        corpus = load_dataset(run["dataset"], args.data_dir)
        problem, splits = evaluation.prepare(corpus, run["split"], seed=key[2])
        problems.clear()  # one corpus in memory at a time
        problems[key] = (problem, splits.val_from_train, time.perf_counter() - t0)
    problem, val_searched, feature_seconds = problems[key]
    result = evaluation.run_method(
        problem,
        run["method"],
        run["bits"],
        supervised=run["supervised"],
        seed=run["seed"],
        device=args.device,
        include_val=val_searched,
    )
    return {
        **{field: run[field] for field in PLAN_FIELDS},
        "labels_used": result.supervised,
        "precision_at_100": result.precision_at_100,
        "precision_at_100_tie_aware": result.precision_at_100_tie_aware,
        "train_seconds": round(result.train_seconds, 3),
        "n_train": len(evaluation.database_labels(problem, val_searched)),
        "n_val": problem.X_val.shape[0],
        "val_searched": val_searched,  # the validation part is in the database (n_train)
        "n_test": problem.X_test.shape[0],
        "vocabulary": problem.X_train.shape[1],
        "feature_seconds": round(feature_seconds, 3),
        "engine": prints[run["method"]],
        "commit": meta["commit"],
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**meta["machine"], "torch_threads": torch_threads()},
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def carry_over(args: argparse.Namespace, prints: dict[str, str], meta: dict) -> int:
    """For each method whose newest recorded runs are of an older engine, re-run that engine's
    cheapest recorded cell (and its cheapest supervised one, if it ran any) with the engine in
    the tree, in the same number of threads. Where every figure comes out identical, the older
    engine's runs count as this engine's (a line in ``engine_equivalences.jsonl``): an edit that
    leaves a method's results alone need not re-run its tables. Returns 1 if any method differed."""
    import torch

    log = args.out / "eval_runs.jsonl"
    runs, problems, differed = read_log(args.out), {}, []
    for method in args.methods:
        # Only an engine that ran after this one last did: an engine this one already replaced
        # (its runs superseded, or carried over before) is nothing to compare with.
        last_now = max(
            (r["date"] for r in runs if r["method"] == method and r["engine"] == prints[method]),
            default="",
        )
        older = [
            r
            for r in runs
            if r["method"] == method and r["engine"] != prints[method] and r["date"] > last_now
        ]
        if not older:
            continue
        engine = max(older, key=lambda r: r["date"])["engine"]
        mine = [r for r in older if r["engine"] == engine]
        # A cell that searched the training part alone would differ for that reason alone (and
        # such runs are planned again whatever the engine), so only the whole split's compare.
        comparable = [r for r in mine if searched_whole_training_split(r)]
        checks = [
            min(rows, key=itemgetter("train_seconds"))
            for rows in ([r for r in comparable if r["supervised"] == s] for s in (False, True))
            if rows
        ]
        if not checks:
            continue
        same, here = True, []
        for old in checks:
            threads = old.get("machine", {}).get("torch_threads") or 1
            torch.set_num_threads(threads)
            os.environ["NASH_TRAIN_THREADS"] = str(threads)
            print(
                f"{method} ({engine} -> {prints[method]}): re-running {old['dataset']} "
                f"{old['split']} {old['bits']} bits{' supervised' if old['supervised'] else ''} "
                f"seed {old['seed']}, {threads} thread(s) ...",
                flush=True,
            )
            record = execute(old, args, problems, prints, meta)
            append_run(log, record)
            figures = [(old[f], record[f]) for f in FIGURES]
            identical = all(a == b for a, b in figures)
            shown = ", ".join(f"{a:.6f} -> {b:.6f}" for a, b in figures)
            if not identical and args.reference:
                again = reference_run(old, engine, threads, args)
                if again is None:
                    why = f"{args.reference}'s engine is not {engine}, no reference"
                    print(f"    DIFFERENT: {shown} ({why})", flush=True)
                    same = False
                    continue
                figures = [(again[f], record[f]) for f in FIGURES]
                identical = all(a == b for a, b in figures)
                shown = (
                    f"recorded {', '.join(f'{old[f]:.6f}' for f in FIGURES)}; here, "
                    f"{engine} at {args.reference} -> edited engine: "
                    + ", ".join(f"{a:.6f} -> {b:.6f}" for a, b in figures)
                )
                if identical:
                    here.append(list(run_key(old)))
            same = same and identical
            print(f"    {'identical' if identical else 'DIFFERENT'}: {shown}", flush=True)
        if same:
            append_run(
                args.out / EQUIVALENCES,
                {
                    "method": method,
                    "from": engine,
                    "to": prints[method],
                    "reproduced": [list(run_key(r)) for r in checks],
                    **(
                        {"reference": args.reference, "compared_on_this_machine": here}
                        if here
                        else {}
                    ),
                    "commit": meta["commit"],
                    "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                },
            )
            carried_runs = sum(r["engine"] == engine for r in older)
            print(f"    {carried_runs} runs of {engine} now count as {prints[method]}'s")
        else:
            differed.append(method)
    if differed:
        print(f"not carried over (figures changed, re-run their tables): {', '.join(differed)}")
    runs = read_log(args.out)
    write_reports(args.out, runs, {**meta, "updated": max(r["date"] for r in runs)}, args.bits)
    return 1 if differed else 0


def reference_run(run: dict, engine: str, threads: int, args: argparse.Namespace) -> dict | None:
    """``run`` re-run here with the engine of git revision ``args.reference`` (a child process
    over a temporary worktree); None when that revision's engine for the method is not
    ``engine``, the one that made the recorded figures."""
    with (
        tempfile.TemporaryDirectory(prefix="nash-reference-") as scratch,
        reference_worktree(args.reference, Path(scratch)) as tree,
    ):
        # REV's own script: it hashes REV's engine as the recorded runs were hashed.
        script = tree / "benchmarks" / "eval_tables.py"
        if "--run-cell" not in script.read_text(encoding="utf-8"):
            raise SystemExit(f"{args.reference}'s eval_tables.py cannot re-run one cell")
        cmd = [
            sys.executable,
            str(script),
            "--run-cell",
            json.dumps({field: run[field] for field in PLAN_FIELDS}),
            "--methods",
            run["method"],
            "--threads",
            str(threads),
            "--data-dir",
            str(args.data_dir),
            "--device",
            args.device,
        ]
        env = dict(os.environ, NASH_ENGINE_ROOT=str(tree))
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    record = json.loads(out.stdout.strip().splitlines()[-1])
    return record if record["engine"] == engine else None


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="reuters,20ng,tmc")
    parser.add_argument(
        "--methods", default=None, help="default: every method, the default and NASH-DN first"
    )
    parser.add_argument("--bits", default="8,16,32,64,128")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the headline rows")
    parser.add_argument("--seed-datasets", default="reuters,20ng")
    parser.add_argument(
        "--first-methods",
        default="default,nash-dn,tfidf,lsh",
        help="run on every corpus (and supervised) before the other methods",
    )
    parser.add_argument("--headline-methods", default="nash-dn", help="plus the best at seed 0")
    parser.add_argument("--supervised-datasets", default="reuters")
    parser.add_argument("--supervised-methods", default="nash-dn")
    parser.add_argument("--supervised-seeds", default="0", help="seeds of the supervised rows")
    parser.add_argument(
        "--supervised-only", action="store_true", help="plan only the supervised rows"
    )
    parser.add_argument("--split", default="canonical", choices=["canonical", "random"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--plan", action="store_true", help="print the runs still to do and exit")
    parser.add_argument(
        "--readme", action="store_true", help="print the README's Results tables and exit"
    )
    parser.add_argument(
        "--report", action="store_true", help="rewrite eval_tables.md/.json from the log and exit"
    )
    parser.add_argument("--rerun", action="store_true", help="ignore recorded runs")
    parser.add_argument(
        "--carry-over",
        action="store_true",
        help="after an engine edit: re-run one recorded cell per method (and per supervision); "
        "where the figures are identical, that method's older runs count as current",
    )
    parser.add_argument(
        "--reference",
        metavar="REV",
        help="with --carry-over: where a figure differs from the record, re-run the cell here "
        "with the engine of git revision REV too, and compare the edited engine with that",
    )
    parser.add_argument("--run-cell", help=argparse.SUPPRESS)  # a --reference child's one cell
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 lets two copies share 2 cores)"
    )
    parser.add_argument("--stop-after", type=float, default=None, help="minutes; no new run after")
    args = parser.parse_args(argv)
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()]  # noqa: E731
    args.datasets = split(args.datasets)
    args.methods = evaluation.parse_methods(args.methods)
    from nashcli.methods import DEFAULT_METHOD

    args.first_methods = [
        DEFAULT_METHOD if m == "default" else m for m in split(args.first_methods)
    ]
    if args.methods == evaluation.parse_methods(None):  # default: the rows that matter first
        first = [m for m in args.first_methods if m in args.methods]
        args.methods = list(dict.fromkeys(first + args.methods))
    args.bits = evaluation.parse_bits(args.bits)
    args.seeds = [int(s) for s in split(args.seeds)]
    args.seed_datasets = split(args.seed_datasets)
    args.headline_methods = split(args.headline_methods)
    args.supervised_datasets = split(args.supervised_datasets)
    args.supervised_methods = split(args.supervised_methods)
    args.supervised_seeds = [int(s) for s in split(args.supervised_seeds)]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["NASH_TRAIN_THREADS"] = str(args.threads)  # training would pick idle cores
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "eval_runs.jsonl"
    prints = fingerprints(args.methods)
    recorded = read_log(args.out)
    current = (
        []
        if args.rerun
        else [
            r
            for r in recorded
            if r.get("engine") == prints.get(r["method"]) and searched_whole_training_split(r)
        ]
    )
    done_keys = {run_key(r) for r in current}
    meta = {"commit": git_commit(), "machine": machine(args.device), "updated": None}
    started = time.monotonic()
    problems: dict[tuple, tuple] = {}

    if args.readme:
        print(readme_snippet(newest_engine_runs(recorded)[0], args.bits))
        return 0
    if args.run_cell:
        print(json.dumps(execute(json.loads(args.run_cell), args, problems, prints, meta)))
        return 0
    if args.carry_over:
        return carry_over(args, prints, meta)
    if args.report:
        if recorded:
            meta["updated"] = max(r["date"] for r in recorded)
            write_reports(args.out, recorded, meta, args.bits)
        return 0
    claims = args.out / "eval_runs.claims"  # runs other live workers are doing (not committed)
    while True:
        if not args.rerun:  # workers started side by side share the log: pick up their runs
            for r in read_log(args.out):
                if (
                    r.get("engine") == prints.get(r["method"])
                    and searched_whole_training_split(r)
                    and run_key(r) not in done_keys
                ):
                    current.append(r)
                    done_keys.add(run_key(r))
        busy = claimed_by_others(claims)
        todo = [r for r in full_plan(args, current) if run_key(r) not in done_keys | busy]
        if args.plan:
            for run in todo:
                print(json.dumps(run))
            print(f"{len(todo)} runs to do; {len(current)} recorded for the engine now in the tree")
            return 0
        if not todo:
            break
        if args.stop_after is not None and time.monotonic() - started > args.stop_after * 60:
            print(f"stopping: --stop-after {args.stop_after} min reached; {len(todo)} runs left")
            break
        run = todo[0]
        claim(claims, run)
        print(
            f"[{len(done_keys) + 1}] {run['dataset']} {run['method']} {run['bits']} bits"
            f"{' supervised' if run['supervised'] else ''} seed {run['seed']} ...",
            flush=True,
        )
        record = execute(run, args, problems, prints, meta)
        append_run(log, record)
        current.append(record)
        done_keys.add(run_key(run))
        print(
            f"    p@100 tie-aware {record['precision_at_100_tie_aware']:.4f} "
            f"(positional {record['precision_at_100']:.4f}) in {record['train_seconds']:.1f} s",
            flush=True,
        )
        meta["updated"] = record["date"]
        write_reports(args.out, read_log(args.out), meta, args.bits)
    if current:
        meta["updated"] = max(r["date"] for r in current)
        write_reports(args.out, read_log(args.out), meta, args.bits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
