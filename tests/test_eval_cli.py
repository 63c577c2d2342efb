"""``nash eval`` as a user runs it: tables, --json, --save-codes, and one-line errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nashcli.cli import app
from nashcli.datasets import write_jsonl
from tests.test_evaluation import install_fake_engine, topic_corpus

runner = CliRunner()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A few dozen labelled documents in the shared .jsonl.gz format."""
    path = tmp_path / "tiny.jsonl.gz"
    write_jsonl(topic_corpus(48), path)
    return path


@pytest.fixture
def fake_engine(monkeypatch) -> list:
    calls: list = []
    install_fake_engine(monkeypatch, calls)
    return calls


def _error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nash: error: ")
    return lines[0]


def test_json_output_is_one_document(corpus: Path, fake_engine: list) -> None:
    result = runner.invoke(
        app, ["eval", str(corpus), "--bits", "8,16", "--methods", "nash-dn,lsh,tfidf", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document["dataset"] == "tiny"
    # The database is the whole training split: the 4 documents carved from it for early
    # stopping are searched too.
    assert (document["n_train"], document["n_test"]) == (36, 12)
    rows = [(r["method"], r["bits"]) for r in document["results"]]
    assert rows == [("nash-dn", 8), ("nash-dn", 16), ("lsh", 8), ("lsh", 16), ("tfidf", 0)]
    for row in document["results"]:
        assert row["supervised"] is False
        assert 0.0 <= row["precision_at_100_tie_aware"] <= 1.0
        assert isinstance(row["precision_at_100"], float)
        assert isinstance(row["train_seconds"], float)


def test_table_lists_methods_and_bit_lengths(corpus: Path, fake_engine: list) -> None:
    result = runner.invoke(app, ["eval", str(corpus), "--bits", "8,16", "--methods", "nash,tfidf"])
    assert result.exit_code == 0, result.output
    assert "precision@100 on tiny" in result.stdout
    for text in ("nash", "tfidf", "8 bits", "16 bits", "no hashing", "0.3333"):
        assert text in result.stdout
    # Progress stays off when stderr is not a terminal; what is left is the note on this tiny
    # database (36 documents: "precision@100" is the precision of all of them).
    assert result.stderr.splitlines() == [
        "nash: note: the database holds 36 documents, fewer than 100: precision@100 is the "
        "precision of all 36, the same for every method"
    ]
    first = result.stdout.splitlines()[0]  # whole on the first line, for `| head -1`
    assert first == "precision@100 on tiny: 36 database documents, 12 queries"
    exact = runner.invoke(app, ["eval", str(corpus), "--bits", "8,16", "--methods", "tfidf"])
    assert exact.exit_code == 0 and "no hashing" in exact.stdout
    assert "8 bits" not in exact.stdout  # no empty columns for a method without codes


def test_supervised_seed_device_and_random_split(corpus: Path, fake_engine: list) -> None:
    result = runner.invoke(
        app,
        [
            "eval",
            str(corpus),
            "--bits",
            "8",
            "--methods",
            "nash-dn",
            "--supervised",
            "--seed",
            "5",
            "--device",
            "cpu",
            "--split",
            "random",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["n_train"] + document["n_test"]) == 48 - round(0.2 * 48)
    assert document["results"][0]["supervised"] is True
    assert fake_engine == [("nash-dn", 8, True, 5, "cpu")]


def test_save_codes_writes_packed_codes(corpus: Path, fake_engine: list, tmp_path: Path) -> None:
    out = tmp_path / "codes"
    result = runner.invoke(
        app,
        [
            "eval",
            str(corpus),
            "--bits",
            "8,16",
            "--methods",
            "lsh,tfidf",
            "--save-codes",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["lsh-16.npz", "lsh-8.npz"]
    with np.load(out / "lsh-16.npz") as saved:
        assert saved["train_codes"].shape == (36, 2) and saved["train_codes"].dtype == np.uint8
        assert saved["train_labels"].shape == (36, 3)  # the database's labels, row for row
        assert saved["test_labels"].shape == (12, 3) and saved["test_labels"].dtype == bool


def test_save_codes_with_tfidf_alone_says_there_is_nothing_to_write(
    corpus: Path, fake_engine: list, tmp_path: Path
) -> None:
    out = tmp_path / "codes"
    args = ["eval", str(corpus), "--methods", "tfidf", "--save-codes", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and json.loads(result.stdout)["results"][0]["method"] == "tfidf"
    assert "--save-codes: tfidf has no codes, so nothing is written" in result.stderr
    assert not out.exists()


def test_saved_codes_name_their_documents_and_labels(fake_engine: list, tmp_path: Path) -> None:
    """Each row of a saved file says which document it is, each label column which label:
    the validation part carved from the training split comes last in the database, not in the
    file's order, so rows cannot be matched by position."""
    dataset = topic_corpus(48)
    labels_of = {i: {*doc, f"only-{i}"} for i, doc in zip(dataset.ids, dataset.labels, strict=True)}
    dataset.labels[:] = [sorted(labels_of[i]) for i in dataset.ids]
    path = tmp_path / "unique.jsonl.gz"
    write_jsonl(dataset, path)
    out = tmp_path / "codes"
    args = ["eval", str(path), "--bits", "64", "--methods", "lsh", "--save-codes", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    with np.load(out / "lsh-64.npz") as saved:  # (no pickle needed)
        names = saved["label_names"]  # (of the training split: a query's own label is none)
        for part in ("train", "test"):
            rows = [set(names[row]) for row in saved[f"{part}_labels"]]
            assert rows == [labels_of[i] & set(names) for i in saved[f"{part}_ids"]]
        assert sorted([*saved["train_ids"], *saved["test_ids"]]) == sorted(dataset.ids)
        assert list(saved["train_ids"]) != [i for i in dataset.ids if i in saved["train_ids"]]


def test_codes_that_cannot_be_written_lose_neither_the_figures_nor_a_file(
    corpus: Path, fake_engine: list, tmp_path: Path, monkeypatch
) -> None:
    """A disk that fills up after the training: the figures are out first, the error is one
    line, and no half-written file is left."""
    out = tmp_path / "codes"

    def disk_full(file, **arrays):
        Path(file).write_bytes(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("numpy.savez_compressed", disk_full)
    args = ["eval", str(corpus), "--bits", "8", "--methods", "lsh", "--save-codes", str(out)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code != 0 and "Traceback" not in result.output + result.stderr
    line = result.stderr.strip().splitlines()[-1]  # (after a note on the tiny corpus)
    assert line.startswith("nash: error: --save-codes: cannot write") and "No space left" in line
    assert json.loads(result.stdout)["results"][0]["method"] == "lsh"  # the one JSON document
    assert list(out.iterdir()) == []
    table = runner.invoke(app, args)
    assert table.exit_code != 0 and "lsh" in table.stdout  # the table, then the error


def test_known_name_from_data_dir_and_nash_data(tmp_path: Path, fake_engine: list) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(topic_corpus(48), data / "20newsgroups_bydate.jsonl.gz")
    args = ["eval", "20ng", "--bits", "8", "--methods", "lsh", "--json"]
    result = runner.invoke(app, [*args, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"] == "20ng"
    result = runner.invoke(app, args, env={"NASH_DATA": str(data)})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("name", "file", "docs", "message"),
    [  # posts without a blank line lose all their text with their headers
        ("20ng-vdsh", "20newsgroups_bydate", 48, "no word but stop words is in at least 3"),
        ("reuters-vdsh", "reuters21578_modapte", 3, "too little text for the VDSH preparation"),
    ],
)
def test_a_corpus_too_small_for_the_vdsh_preparation_is_one_line(
    tmp_path: Path, fake_engine: list, name: str, file: str, docs: int, message: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(topic_corpus(docs), data / f"{file}.jsonl.gz")
    args = ["eval", name, "--bits", "8", "--methods", "lsh", "--data-dir", str(data)]
    assert message in _error_line(runner.invoke(app, args))


def test_real_engine_end_to_end(corpus: Path) -> None:
    result = runner.invoke(
        app,
        ["eval", str(corpus), "--bits", "8", "--methods", "nash-dn", "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["method"] == "nash-dn" and row["bits"] == 8
    assert row["train_seconds"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mnist"], "unknown dataset 'mnist'"),
        (["{missing}"], "not found"),
        (["{malformed}"], "line 2: not valid JSON"),
        (["reuters", "--data-dir", "{empty}"], "reuters21578_modapte.jsonl.gz"),
        (["{corpus}", "--bits", "12"], "multiple of 8"),
        (["{corpus}", "--bits", "512"], "between 8 and 256"),
        (["{corpus}", "--bits", "8,big"], "not a whole number"),
        (["{corpus}", "--methods", "nash,bert"], "unknown method 'bert'"),
        (["{corpus}", "--split", "kfold"], "--split"),
        (["{corpus}", "--device", "tpu"], "--device"),
        (["reuters", "--data-dir", "{empty}/nowhere"], "a folder that does not exist"),
        (["{corpus}", "--seed", str(2**32)], "--seed"),
        (["{corpus}", "--save-codes", "{corpus}"], "--save-codes: cannot create"),
        (["{corpus}", "--save-codes", "{corpus}/sub"], "--save-codes: cannot create"),
        # a link to an unmounted drive, and a folder where a codes file goes: found after
        # training, before
        (["{corpus}", "--save-codes", "{dangling}"], "is a link to /mnt/not-mounted/codes, which"),
        (["{corpus}", "--bits", "8", "--save-codes", "{empty}"], "lsh-8.npz: it is a folder"),
        (["{unlabelled_train}"], "no training document has a label"),
    ],
)
def test_bad_input_is_one_clear_line(
    args: list[str], message: str, corpus: Path, tmp_path: Path, fake_engine: list
) -> None:
    malformed = tmp_path / "malformed.jsonl"
    malformed.write_text('{"id": "1", "text": "x", "labels": ["a"], "split": "train"}\n{oops\n')
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "lsh-8.npz").mkdir()
    (tmp_path / "dangling").symlink_to("/mnt/not-mounted/codes")
    unlabelled_train = tmp_path / "unlabelled_train.jsonl"
    unlabelled_train.write_text(
        "".join(
            json.dumps({"id": str(i), "text": f"doc {i}", "labels": [], "split": "train"}) + "\n"
            for i in range(10)
        )
        + json.dumps({"id": "t", "text": "doc", "labels": ["a"], "split": "test"})
    )
    paths = {
        "unlabelled_train": unlabelled_train,
        "corpus": corpus,
        "missing": tmp_path / "absent.jsonl.gz",
        "malformed": malformed,
        "empty": tmp_path / "empty",
        "dangling": tmp_path / "dangling",
    }
    argv = ["eval", *[a.format(**paths) for a in args], "--json"]
    line = _error_line(runner.invoke(app, argv))
    assert message in line
    assert fake_engine == []  # nothing was trained (a bad --save-codes is found before training)


def test_queries_that_cannot_score_are_named(tmp_path: Path, fake_engine: list) -> None:
    """Queries without a label the database has count as precision 0: the user is told how
    many, rather than reading a low figure as the model's."""
    corpus = topic_corpus(48)
    orphan = [i for i, part in enumerate(corpus.split) if part == "test"][:3]
    for i in orphan[:2]:
        corpus.labels[i] = []
    corpus.labels[orphan[2]] = ["only-in-test"]
    path = tmp_path / "orphans.jsonl.gz"
    write_jsonl(corpus, path)
    result = runner.invoke(app, ["eval", str(path), "--bits", "8", "--methods", "lsh", "--json"])
    assert result.exit_code == 0, result.output
    assert "nash: note: 3 of 12 queries share no label with any training document" in (
        result.stderr
    )
    json.loads(result.stdout)  # still one JSON document on stdout


def test_download_fetches_a_missing_archive_once(tmp_path: Path, fake_engine: list, monkeypatch):
    """--download fetches reuters21578.tar.gz into --data-dir (the network is faked here)."""
    from tests.test_datasets import SGM_000, SGM_001, _tar_gz

    archive = _tar_gz(
        tmp_path / "served.tar.gz",
        {"reut2-000.sgm": SGM_000.encode("latin-1"), "reut2-001.sgm": SGM_001.encode("latin-1")},
    )
    fetched: list[str] = []

    def fake_urlopen(url, timeout=None):
        fetched.append(url)
        return io.BytesIO(archive.read_bytes())

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    data = tmp_path / "data"
    args = ["eval", "reuters", "--data-dir", str(data), "--download", "--methods", "lsh"]
    result = runner.invoke(app, [*args, "--bits", "8", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_test"] == 2
    # Two of the 22 files: the figures are not canonical Reuters', and the user is told so.
    assert (
        "nash: note: reuters: 3 train + 2 test documents, not the canonical 7,769 train + "
        "3,019 test (a partial archive or another release?)"
    ) in result.stderr
    assert (data / "reuters21578.tar.gz").is_file()
    assert fetched == ["https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz"]
    runner.invoke(app, [*args, "--bits", "8", "--json"])
    assert len(fetched) == 1  # present now: not fetched again


def test_a_download_cut_short_is_an_error_and_leaves_nothing(tmp_path: Path, monkeypatch):
    """A connection that ended early gave a truncated archive, kept as if whole (so never
    fetched again), or an http.client.IncompleteRead traceback; a Ctrl-C left the .part file."""
    import http.client

    from nashcli import datasets
    from tests.test_datasets import SGM_000, _tar_gz

    whole = _tar_gz(tmp_path / "served.tar.gz", {"reut2-000.sgm": SGM_000.encode("latin-1")})
    data = tmp_path / "data"

    class Cut(io.BytesIO):
        def read(self, size=-1):
            raise http.client.IncompleteRead(b"", 1000)

    class Interrupted(io.BytesIO):
        def read(self, size=-1):
            raise KeyboardInterrupt

    served = {"body": lambda: io.BytesIO(whole.read_bytes()[:-40])}
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: served["body"]())
    args = ["eval", "reuters", "--data-dir", str(data), "--download", "--methods", "lsh"]
    for body in (lambda: io.BytesIO(whole.read_bytes()[:-40]), lambda: Cut(b"x")):
        served["body"] = body
        line = _error_line(runner.invoke(app, args))
        assert "download of https://kdd.ics.uci.edu" in line, line
        # (the data folder it made for the archive goes too)
        assert not data.exists() and not datasets.is_available("reuters", data)
    served["body"] = lambda: Interrupted(b"x")
    with pytest.raises(KeyboardInterrupt):
        datasets.download("reuters", data)
    assert not data.exists()
    data.mkdir()  # a folder that was there stays
    (data / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt):
        datasets.download("reuters", data)
    assert [p.name for p in data.iterdir()] == ["notes.txt"]


def test_download_failure_and_unknown_archive(tmp_path: Path, monkeypatch) -> None:
    def offline(url, timeout=None):
        raise OSError("network is unreachable")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    line = _error_line(
        runner.invoke(app, ["eval", "20ng", "--data-dir", str(tmp_path), "--download"])
    )
    assert "download of http://qwone.com" in line and "unreachable" in line
    assert list(tmp_path.iterdir()) == []  # no partial file left behind
    # A VDSH-release variant downloads the archive of the corpus it is made from.
    line = _error_line(
        runner.invoke(app, ["eval", "20ng-vdsh", "--data-dir", str(tmp_path), "--download"])
    )
    assert "download of http://qwone.com" in line
    line = _error_line(
        runner.invoke(app, ["eval", "tmc", "--data-dir", str(tmp_path), "--download"])
    )
    assert "no public archive known for 'tmc'" in line
    (tmp_path / "afile").write_text("in the way")
    for data_dir in ("afile", "afile/sub"):  # the OS's bare "File exists" / "Not a directory"
        args = ["eval", "20ng", "--data-dir", str(tmp_path / data_dir), "--download"]
        line = _error_line(runner.invoke(app, args))
        assert (
            f"cannot make the data folder {tmp_path / data_dir}: {tmp_path}/afile is a file" in line
        )


def test_methods_list_describes_every_method(fake_engine: list) -> None:
    result = runner.invoke(app, ["eval", "reuters", "--methods", "list"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.strip().splitlines()]
    assert names[:6] == ["nash", "nash-n", "nash-dn", "lsh", "vdsh", "tfidf"]
    assert "exact TF-IDF cosine" in result.stdout
    starts = {line.index(line.split()[1]) for line in result.stdout.strip().splitlines()}
    assert len(starts) == 1  # the descriptions line up
    assert fake_engine == []
    listed = runner.invoke(app, ["eval", "--methods", "LIST"])  # no dataset needed to list
    assert listed.exit_code == 0 and listed.stdout == result.stdout
    as_json = json.loads(runner.invoke(app, ["eval", "--methods", "list", "--json"]).stdout)
    assert [m["method"] for m in as_json["methods"]] == names  # one JSON document, as --json says
    assert all(
        line.endswith(m["description"])
        for line, m in zip(result.stdout.strip().splitlines(), as_json["methods"], strict=True)
    )
    assert "give a DATASET" in _error_line(runner.invoke(app, ["eval"]))


def test_progress_draws_on_a_terminal_and_stays_silent_otherwise() -> None:
    from rich.console import Console

    from nashcli.evaluation import EvalResult
    from nashcli.render import EvalProgress

    def drive(console: Console) -> None:
        with EvalProgress(console) as progress:
            progress.status("loading")
            progress.start("nash-dn", 16, 0, 2)
            progress.epoch(3, 60, {"val_precision": 0.71})
            progress.done(EvalResult("nash-dn", 16, False, 0.7, 0.7, 1.0))
            progress.start("nash-refine", 16, 1, 2)
            progress.epoch(2, 100, {"val_precision": 0.52, "round": (2, 2)})

    terminal = io.StringIO()
    drive(Console(file=terminal, force_terminal=True, width=100))
    assert "nash-dn (16 bits)" in terminal.getvalue()
    assert "round 2/2 · val p@100 0.520" in terminal.getvalue()  # not "training started over"
    piped = io.StringIO()
    drive(Console(file=piped, force_terminal=False))
    assert piped.getvalue() == ""


def test_cuda_without_a_gpu_is_a_clear_error(corpus: Path, fake_engine: list) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = _error_line(runner.invoke(app, ["eval", str(corpus), "--device", "cuda"]))
    assert "CUDA" in line
    assert fake_engine == []


def test_save_codes_folder_is_made_only_when_there_are_codes(tmp_path: Path) -> None:
    out = tmp_path / "codes" / "run1"
    line = _error_line(runner.invoke(app, ["eval", "mnistt", "--save-codes", str(out)]))
    assert "unknown dataset" in line
    assert not (tmp_path / "codes").exists()  # checked, not created, before anything ran
    exact = runner.invoke(  # tfidf alone has no codes: no folder either
        app, ["eval", str(_tiny(tmp_path)), "--methods", "tfidf", "--save-codes", str(out)]
    )
    assert exact.exit_code == 0, exact.output
    assert not (tmp_path / "codes").exists()


def _tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl.gz"
    write_jsonl(topic_corpus(48), path)
    return path


def test_a_data_dir_beginning_with_a_tilde_here_is_that_folder(tmp_path: Path, monkeypatch):
    """`--data-dir ./~x` reached expand_user as Path("~x") (Typer's Path drops the "./"): the
    home folder of a user "x" was searched, or "cannot find the home folder"."""
    monkeypatch.chdir(tmp_path)
    line = _error_line(
        runner.invoke(app, ["eval", "reuters", "--data-dir", "./~nosuchuser9", "--bits", "8"])
    )
    assert f"in {tmp_path / '~nosuchuser9'}, a folder that does not exist" in line, line
