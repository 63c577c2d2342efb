"""The evaluation harness: argument parsing, scoring, the run plan, saved codes."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nashcli import evaluation
from nashcli.datasets import Dataset
from nashcli.errors import NashError

TOPICS = {
    "sport": "goal match team player score league coach season win stadium",
    "money": "bank rate dollar market stock interest bond inflation loan profit",
    "space": "orbit rocket launch planet moon star nasa satellite shuttle mission",
}
COMMON = "the report said today new year people time week"


def topic_corpus(n: int = 60, test_every: int = 4, seed: int = 0) -> Dataset:
    """Three topics with disjoint vocabularies, a few shared filler words."""
    rng = random.Random(seed)
    names = list(TOPICS)
    ids, texts, labels, split = [], [], [], []
    for i in range(n):
        topic = names[i % 3]
        words = [rng.choice(TOPICS[topic].split()) for _ in range(10)]
        words += rng.sample(COMMON.split(), 4)
        rng.shuffle(words)
        ids.append(f"d{i}")
        texts.append(" ".join(words))
        labels.append([topic])
        split.append("test" if i % test_every == 0 else "train")
    return Dataset("topics", ids, texts, labels, split)


def test_parse_bits() -> None:
    assert evaluation.parse_bits("8,16, 32,16") == [8, 16, 32]
    assert evaluation.parse_bits([256]) == [256]
    for bad, message in [
        ("12", "multiple of 8"),
        ("0", "multiple of 8"),
        ("264", "between 8 and 256"),
        ("8,x", "not a whole number"),
        ("\uff18", "not a whole number"),  # a full-width 8: int() reads it, no other option does
        ("1_6", "not a whole number"),  # int() reads it as 16
        ("16,+-8", "not a whole number"),
        (",", "at least one"),
    ]:
        with pytest.raises(NashError, match=message):
            evaluation.parse_bits(bad)


def test_parse_methods() -> None:
    everything = evaluation.parse_methods(None)
    assert everything[:6] == ["nash", "nash-n", "nash-dn", "lsh", "vdsh", "tfidf"]
    assert evaluation.parse_methods("all") == everything
    assert evaluation.parse_methods("LSH, tfidf,lsh") == ["lsh", "tfidf"]
    with pytest.raises(NashError, match="unknown method 'bert'"):
        evaluation.parse_methods("nash,bert")


@pytest.mark.parametrize("include_val", [False, True])
def test_exact_tfidf_matches_brute_force_cosine(include_val: bool) -> None:
    problem, splits = evaluation.prepare(topic_corpus(120, test_every=4))
    assert splits.val_from_train  # the canonical split carved validation from training
    k = 5
    positional, tie_aware = evaluation.score_exact(problem, k=k, include_val=include_val)
    x_db, y_db = problem.X_train, problem.Y_train
    if include_val:  # the database: the training part, then the validation part
        x_db, y_db = sp.vstack([x_db, problem.X_val]), np.vstack([y_db, problem.Y_val])
    sims = (problem.X_test @ x_db.T).toarray()
    hits = (problem.Y_test.astype(int) @ y_db.T.astype(int)) > 0
    expected = []
    for q in range(sims.shape[0]):
        order = np.lexsort((np.arange(sims.shape[1]), -sims[q]))[:k]  # ties by database position
        expected.append(hits[q, order].mean())
    assert positional == pytest.approx(float(np.mean(expected)))
    assert 0.9 < tie_aware <= 1.0  # disjoint topic vocabularies: nearly every neighbour is a hit


def install_fake_engine(monkeypatch, calls: list) -> None:
    """A stand-in engine whose codes are the label one-hot (perfect) padded with zeros."""

    def fit_model(method, bits, problem, *, supervised=False, seed=0, device="auto", on_epoch=None):
        calls.append((method, bits, supervised, seed, device))
        if on_epoch is not None:
            on_epoch(1, 2, {"val_precision": 0.5})
            on_epoch(2, 2, {})
        parts = ((problem.X_train, problem.Y_train), (problem.X_val, problem.Y_val))
        labels = {id(x): y for x, y in (*parts, (problem.X_test, problem.Y_test))}
        return (bits, labels), None

    def encode_rows(model, x):
        bits, labels = model
        y = labels[id(x)]
        out = np.zeros((y.shape[0], bits), dtype=bool)
        out[:, : y.shape[1]] = y
        return out

    monkeypatch.setattr("nashcli.methods.fit_model", fit_model)
    monkeypatch.setattr("nashcli.methods.encode_rows", encode_rows)


class Recorder(evaluation.Reporter):
    def __init__(self) -> None:
        self.events: list = []

    def start(self, method, bits, index, total):
        self.events.append(("start", method, bits, index, total))

    def epoch(self, epoch, max_epochs, info):
        self.events.append(("epoch", epoch))

    def done(self, result):
        self.events.append(("done", result.method, result.bits))


def test_evaluate_plans_runs_and_scores(monkeypatch) -> None:
    calls: list = []
    install_fake_engine(monkeypatch, calls)
    problem, _ = evaluation.prepare(topic_corpus(60))
    recorder = Recorder()
    results = evaluation.evaluate(
        problem,
        ["nash", "tfidf", "lsh"],
        [8, 16],
        supervised=True,
        seed=3,
        device="cpu",
        reporter=recorder,
    )
    assert [(r.method, r.bits) for r in results] == [
        ("nash", 8),
        ("nash", 16),
        ("tfidf", 0),
        ("lsh", 8),
        ("lsh", 16),
    ]
    # LSH and exact cosine never see labels, so they are not reported as supervised.
    assert [r.supervised for r in results] == [True, True, False, False, False]
    assert calls == [
        ("nash", 8, True, 3, "cpu"),
        ("nash", 16, True, 3, "cpu"),
        ("lsh", 8, False, 3, "cpu"),
        ("lsh", 16, False, 3, "cpu"),
    ]
    # Perfect codes: every query's ties hold only hits... and only 45 database docs,
    # 15 per topic, so precision@100 (k capped at 45) is 1/3 both ways.
    nash8 = results[0]
    assert nash8.precision_at_100 == pytest.approx(1 / 3)
    assert nash8.precision_at_100_tie_aware == pytest.approx(1 / 3)
    assert all(r.train_seconds >= 0 for r in results)
    assert recorder.events[:4] == [
        ("start", "nash", 8, 0, 5),
        ("epoch", 1),
        ("epoch", 2),
        ("done", "nash", 8),
    ]
    assert set(results[0].to_json()) == {
        "method",
        "bits",
        "supervised",
        "precision_at_100",
        "precision_at_100_tie_aware",
        "train_seconds",
    }


def test_codes_of_the_wrong_shape_are_caught(monkeypatch) -> None:
    monkeypatch.setattr("nashcli.methods.fit_model", lambda method, bits, problem, **kw: (0, None))
    monkeypatch.setattr("nashcli.methods.encode_rows", lambda model, x: np.zeros((3, 8), bool))
    problem, _ = evaluation.prepare(topic_corpus(30))
    with pytest.raises(RuntimeError, match="expected"):
        evaluation.run_method(problem, "nash", 8)


def test_validation_carved_from_training_is_searched_with_it(monkeypatch) -> None:
    """The database is the whole training split: a query whose only same-label documents sit
    in the validation part finds them there, with perfect codes, and only with ``include_val``."""
    install_fake_engine(monkeypatch, [])
    problem, _ = evaluation.prepare(topic_corpus(60))
    problem.Y_train[:] = False  # no training-part document shares a label with any query
    alone = evaluation.run_method(problem, "nash", 16, keep_codes=True)
    searched = evaluation.run_method(problem, "nash", 16, keep_codes=True, include_val=True)
    assert alone.precision_at_100_tie_aware == 0.0
    assert alone.train_codes.shape == (problem.X_train.shape[0], 16)
    n_val = problem.X_val.shape[0]
    assert searched.train_codes.shape == (problem.X_train.shape[0] + n_val, 16)
    # k = 100 is capped at the 45 training-split documents; only the validation part's are hits.
    per_topic = problem.Y_val.sum(axis=0)
    expected = np.mean([per_topic[y.argmax()] for y in problem.Y_test]) / 45
    assert problem.X_train.shape[0] + n_val == 45 and expected > 0
    assert searched.precision_at_100_tie_aware == pytest.approx(expected)


def test_save_codes_packs_bits_and_labels(monkeypatch, tmp_path: Path) -> None:
    install_fake_engine(monkeypatch, [])
    problem, _ = evaluation.prepare(topic_corpus(60))
    results = evaluation.evaluate(problem, ["nash", "tfidf"], [16], keep_codes=True)
    written = evaluation.save_codes(results, problem, tmp_path / "codes")
    assert [p.name for p in written] == ["nash-16.npz"]  # tfidf has no codes
    with np.load(written[0]) as saved:
        assert saved["train_codes"].dtype == np.uint8
        assert saved["train_codes"].shape == (problem.X_train.shape[0], 2)
        unpacked = np.unpackbits(saved["test_codes"], axis=1)[:, :16].astype(bool)
        assert np.array_equal(unpacked, results[0].test_codes)
        assert saved["train_labels"].dtype == bool
        assert np.array_equal(saved["test_labels"], problem.Y_test)


def test_save_codes_stopped_midway_leaves_no_partial_file(monkeypatch, tmp_path: Path) -> None:
    """A Ctrl-C after np.savez_compressed wrote its file left METHOD-BITS.partial.npz."""
    install_fake_engine(monkeypatch, [])
    problem, _ = evaluation.prepare(topic_corpus(60))
    results = evaluation.evaluate(problem, ["nash"], [16], keep_codes=True)
    save = np.savez_compressed

    def save_then_interrupt(path, **arrays):
        save(path, **arrays)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        evaluation.save_codes(results, problem, tmp_path / "codes")
    assert list((tmp_path / "codes").iterdir()) == []


def test_real_engine_beats_chance_on_separable_topics() -> None:
    """One real NASH run at 8 bits: codes of the right shape that retrieve same-topic documents."""
    dataset = topic_corpus(240, test_every=4)
    problem, _ = evaluation.prepare(dataset)
    result = evaluation.run_method(problem, "nash", 8, seed=0, device="cpu", k=10)
    assert result.bits == 8 and not result.supervised
    assert result.precision_at_100_tie_aware > 0.5  # chance is 1/3


def _load_bench(name: str = "eval_tables"):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_supervised_reference_retrieves_by_the_best_predicted_label() -> None:
    """benchmarks/supervised_reference.py: a document scores its labels' best query score, the
    documents of one label tie, and the ceiling counts the documents that share a label."""
    reference = _load_bench("supervised_reference")
    db = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=bool)  # d3: no label
    queries = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=bool)
    scores = np.array([[2.0, 1.0, -1.0], [3.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    # q0: d0 and d2 tie first, both hits; q1: d0 and d2 (score 3) are misses, d1 its only
    # hit comes third; q2: d0, d1, d2 tie for two places, two of them hits.
    assert reference.classify_then_retrieve(scores, db, queries, k=2) == pytest.approx(
        (1.0 + 0.0 + 2 / 3) / 3
    )
    assert reference.best_possible(db, queries, k=2) == pytest.approx((1.0 + 0.5 + 1.0) / 3)


def _bench_on_corpus(monkeypatch, tmp_path: Path, docs: int, calls: list | None = None):
    """benchmarks/eval_tables.py with a fake engine (recording its calls in ``calls``), a small
    Reuters-named corpus on disk and the arguments that point it there and at an output dir."""
    from nashcli.datasets import write_jsonl

    install_fake_engine(monkeypatch, [] if calls is None else calls)
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    write_jsonl(topic_corpus(docs), data / "reuters21578_modapte.jsonl.gz")
    return _load_bench(), out, ["--data-dir", str(data), "--out", str(out), "--datasets", "reuters"]


def _recorded_runs(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "eval_runs.jsonl").read_text().splitlines()]


def test_benchmark_tables_are_resumable(monkeypatch, tmp_path: Path) -> None:
    """benchmarks/eval_tables.py records each run at once and skips recorded runs on restart."""
    calls: list = []
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 60, calls)
    argv += ["--bits", "8,16", "--methods", "nash-dn,tfidf", "--seeds", "0,1"]
    assert bench.main(argv) == 0
    log = out / "eval_runs.jsonl"
    runs = _recorded_runs(out)
    # coverage (2 nash-dn + tfidf), supervised nash-dn (2), then seed 1 of the headline rows (2)
    assert [(r["method"], r["bits"], r["supervised"], r["seed"]) for r in runs] == [
        ("nash-dn", 8, False, 0),
        ("nash-dn", 16, False, 0),
        ("tfidf", 0, False, 0),
        ("nash-dn", 8, True, 0),
        ("nash-dn", 16, True, 0),
        ("nash-dn", 8, False, 1),
        ("nash-dn", 16, False, 1),
    ]
    assert all(r["commit"] and r["machine"]["cores"] and r["date"] for r in runs)
    table = (out / "eval_tables.md").read_text()
    assert re.search(r"\| nash-dn \| 0\.\d{4} \| 0\.\d{4} \|", table)
    assert "± 0.0000 (n=2)" in table and "NASH-DN (paper" in table
    assert json.loads((out / "eval_tables.json").read_text())["runs"][0]["method"] == "nash-dn"
    # Cut off mid-write, then restarted: nothing recorded is run again, the torn line is ignored.
    with open(log, "a") as handle:
        handle.write('{"dataset": "reuters", "spl')
    calls.clear()
    assert bench.main(argv) == 0
    assert calls == []


def test_benchmark_tables_crown_no_best_method_before_every_row_is_done() -> None:
    """Two workers side by side: LSH's row (seconds a run) was done before NASH-DN's, became
    "the best at seed 0", and got four more seeds planned."""
    bench = _load_bench()

    def row(method: str, precision: float, bits=(8, 16)) -> list[dict]:
        return [
            dict(
                dataset="20ng",
                split="canonical",
                method=method,
                bits=b,
                supervised=False,
                seed=0,
                precision_at_100_tie_aware=precision,
            )
            for b in bits
        ]

    done = row("lsh", 0.06) + row("tfidf", 0.4, bits=(0,)) + row("nash-dn", 0.45, bits=(8,))
    among = ["nash-dn", "tfidf", "lsh"]
    assert bench.best_method(done, "20ng", [8, 16], "canonical", among) is None
    done += row("nash-dn", 0.45, bits=(16,))
    assert bench.best_method(done, "20ng", [8, 16], "canonical", among) == "nash-dn"


def test_benchmark_tables_keep_a_random_split_apart(monkeypatch, tmp_path: Path, capsys) -> None:
    """A corpus's random-split runs get their own table instead of replacing canonical cells."""
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 90)
    argv += ["--bits", "8", "--methods", "nash-dn", "--seeds", "0", "--supervised-datasets", "none"]
    assert bench.main(argv) == 0
    assert bench.main([*argv, "--split", "random"]) == 0
    runs = _recorded_runs(out)
    assert [r["split"] for r in runs] == ["canonical", "random"]
    assert runs[0]["n_test"] != runs[1]["n_test"]  # the random split queries 20 % of all
    table = (out / "eval_tables.md").read_text()
    sections = [line for line in table.splitlines() if line.startswith("## ")]
    assert len(sections) == 2 and "random split" in sections[1]
    assert bench.main([*argv, "--readme"]) == 0
    snippet = capsys.readouterr().out
    canonical, random_split = snippet.split("random split")
    assert f"{runs[0]['n_test']:,} queries" in canonical
    assert f"{runs[1]['n_test']:,} queries" in random_split
    assert canonical.count("| nash-dn |") == random_split.count("| nash-dn |") == 1


def test_benchmark_tables_run_seeds_of_the_supervised_rows(monkeypatch, tmp_path: Path) -> None:
    """--supervised-seeds plans a supervised row's seeds, and the tables average them."""
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 60)
    argv += ["--bits", "8", "--methods", "nash-dn"]
    argv += ["--supervised-only", "--supervised-seeds", "0,1"]
    assert bench.main(argv) == 0
    runs = _recorded_runs(out)
    assert [(r["method"], r["supervised"], r["seed"]) for r in runs] == [
        ("nash-dn", True, 0),
        ("nash-dn", True, 1),
    ]
    table = (out / "eval_tables.md").read_text()
    assert re.search(r"\| nash-dn supervised \| 0\.\d{4} ± 0\.\d{4} \(n=2\) \|", table)


def test_benchmark_tables_carry_runs_over_an_edit_that_changes_nothing(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    """After an engine edit, --carry-over re-runs one recorded cell per method and supervision:
    identical figures make the older runs current; changed figures leave them to be re-run."""
    calls: list = []
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 600, calls)  # > 100 per topic
    argv += ["--bits", "8,16", "--methods", "nash-dn,nash", "--seeds", "0"]
    assert bench.main(argv) == 0
    measured = _recorded_runs(out)
    assert len(measured) == 6  # nash-dn and nash at 8 and 16 bits, supervised nash-dn at both
    fingerprint = bench.engine_fingerprint
    monkeypatch.setattr(bench, "engine_fingerprint", lambda m: "edited-" + fingerprint(m))
    assert "6 runs to do" in _plan(bench, argv, capsys)

    calls.clear()
    assert bench.main([*argv, "--carry-over"]) == 0
    # one unsupervised cell of each method and one supervised cell of nash-dn, nothing more
    assert sorted((c[0], c[2]) for c in calls) == [
        ("nash", False),
        ("nash-dn", False),
        ("nash-dn", True),
    ]
    equivalences = [json.loads(line) for line in (out / "engine_equivalences.jsonl").open()]
    assert {e["method"] for e in equivalences} == {"nash", "nash-dn"}
    assert all(e["to"] == "edited-" + e["from"] for e in equivalences)
    assert "0 runs to do" in _plan(bench, argv, capsys)
    assert "count as the current one's" in (out / "eval_tables.md").read_text()
    calls.clear()  # again: the older engine is already replaced, nothing to compare
    assert bench.main([*argv, "--carry-over"]) == 0 and calls == []

    # An edit that changes a method's codes: its runs stay stale, the command says so.
    monkeypatch.setattr(bench, "engine_fingerprint", lambda m: "again-" + fingerprint(m))
    import nashcli.methods as engine

    fit, encode = engine.fit_model, engine.encode_rows  # the fake engine's

    def worse_fit(method, bits, problem, **kw):
        model, result = fit(method, bits, problem, **kw)
        return (model, method == "nash", problem.X_test), result

    def worse_encode(model, x):
        inner, is_nash, x_test = model
        codes = encode(inner, x)
        return np.roll(codes, 1, axis=1) if is_nash and x is x_test else codes  # wrong topics

    monkeypatch.setattr("nashcli.methods.fit_model", worse_fit)
    monkeypatch.setattr("nashcli.methods.encode_rows", worse_encode)
    capsys.readouterr()
    assert bench.main([*argv, "--carry-over"]) == 1
    said = capsys.readouterr().out
    assert "not carried over (figures changed, re-run their tables): nash" in said
    plan = [json.loads(line) for line in _plan(bench, argv, capsys).splitlines()[:-1]]
    assert {r["method"] for r in plan} == {"nash"}
    # Once its tables are re-run, the engine it replaced is nothing to compare with: a later
    # --carry-over leaves nash alone (it compared with the superseded runs and said "changed").
    assert bench.main(argv) == 0
    capsys.readouterr()
    assert bench.main([*argv, "--carry-over"]) == 0
    assert "re-running" not in capsys.readouterr().out


def _plan(bench, argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert bench.main([*argv, "--plan"]) == 0
    return capsys.readouterr().out


def test_benchmark_tables_rerun_runs_that_left_validation_out_of_the_database(
    monkeypatch, tmp_path: Path, capsys
) -> None:
    """A canonical run recorded before the database became the whole training split (no
    ``val_searched``, a carved tenth left out) is planned again; the new run records the
    database it searched."""
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 60)
    argv += ["--bits", "8", "--methods", "nash-dn", "--seeds", "0", "--supervised-datasets", "none"]
    assert bench.main(argv) == 0
    (new,) = _recorded_runs(out)
    assert new["val_searched"] is True and (new["n_train"], new["n_val"]) == (45, 4)
    assert "0 runs to do" in _plan(bench, argv, capsys)
    old = {k: v for k, v in new.items() if k != "val_searched"} | {"n_train": 41}
    (out / "eval_runs.jsonl").write_text(json.dumps(old) + "\n")
    plan = _plan(bench, argv, capsys)
    assert "1 runs to do" in plan and '"method": "nash-dn"' in plan
    assert bench.main([*argv, "--report"]) == 0
    assert "without the fixed 10% of it held out" in (out / "eval_tables.md").read_text()


def test_carry_over_compares_only_runs_of_the_whole_training_split(
    monkeypatch, tmp_path: Path
) -> None:
    """A cell that searched the training part alone would differ for that reason alone, so
    --carry-over re-runs a cell of the current database instead, however cheap the other."""
    calls: list = []
    bench, out, argv = _bench_on_corpus(monkeypatch, tmp_path, 60, calls)
    argv += ["--bits", "8", "--methods", "nash-dn", "--seeds", "0", "--supervised-datasets", "none"]
    assert bench.main(argv) == 0
    (new,) = _recorded_runs(out)
    older = {k: v for k, v in new.items() if k != "val_searched"}
    older |= {"seed": 7, "n_train": 41, "train_seconds": 0.0}  # the cheapest cell on record
    new["train_seconds"] = 1.0
    (out / "eval_runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (older, new)))
    fingerprint = bench.engine_fingerprint
    monkeypatch.setattr(bench, "engine_fingerprint", lambda m: "edited-" + fingerprint(m))
    calls.clear()
    assert bench.main([*argv, "--carry-over"]) == 0
    assert [c[3] for c in calls] == [0]  # seed 0's cell, not the older database's seed 7
