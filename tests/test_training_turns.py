"""Two processes that would fit one collection's model take turns: the second waits for the
first's fit, says so, and then decides again with the first's model in place.

Deterministic, not timing-based: the test holds the collection's training lock itself, starts a
real `nash index` in a subprocess, and reads the one line it prints when it starts to wait.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_crash import NASH
from test_indexing import FAST, make_docs

from nashcli import indexing, watching
from nashcli.index import Collection, training_turn
from nashcli.indexing import index_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    make_docs(root, per_topic=10)
    return root.resolve()


@contextlib.contextmanager
def waiting_index(folder: Path):
    """Hold the training lock of a new collection of ``folder`` (as a first `nash index` that is
    training would), start a second `nash index` of it, and yield it once it waits."""
    Collection.create("notes", folder, 64)  # what the first process made before training
    with training_turn("notes", lambda message: None):
        second = subprocess.Popen(
            [sys.executable, "-c", NASH, "index", str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = second.stderr.readline()  # the note is its first line (no bars: not a tty)
            assert "is training a model for collection 'notes'; waiting for it" in line, line
            assert "Traceback" not in line
            yield second
        except BaseException:
            second.kill()
            second.wait()
            raise


def finish(second: subprocess.Popen) -> str:
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err
    assert "Traceback" not in err
    return out


def generation() -> int:
    with Collection.open("notes").snapshot() as snap:
        return snap.generation


def test_a_second_first_index_waits_and_then_has_nothing_to_train(folder, monkeypatch) -> None:
    with waiting_index(folder) as second:
        # The first process trains (its turn is the lock this test holds) and switches.
        monkeypatch.setattr(
            indexing, "training_turn", lambda name, on_wait: contextlib.nullcontext()
        )
        first = index_folder(folder, hasher_options=FAST)
        assert first.retrained and first.added == 30
    out = finish(second)
    assert "30 unchanged" in out and "model trained" not in out
    assert generation() == 1  # one model, not two


def test_a_second_first_index_trains_if_the_first_was_killed_before_its_model(folder) -> None:
    with waiting_index(folder) as second:
        pass  # the lock goes with the first process (kill -9): no model was written
    out = finish(second)
    assert "30 added" in out and "model trained (first index)" in out
    assert generation() == 1


def test_a_second_first_index_indexes_if_the_first_stopped_and_removed_it(folder) -> None:
    with waiting_index(folder) as second:
        Collection.open("notes").remove()  # a first index stopped by Ctrl-C leaves nothing
    out = finish(second)
    assert "30 added" in out and "model trained (first index)" in out
    assert generation() == 1


def test_a_watchers_refit_trains_no_second_model_after_another_retrain(folder) -> None:
    index_folder(folder, hasher_options=FAST)
    index_folder(folder, hasher_options=FAST, retrain=True)  # as a `nash index --retrain` would
    assert watching.refit_in_subprocess(folder, "notes").retrained is False  # no longer due
    assert generation() == 2


def test_a_watchers_refit_says_what_its_own_pass_found(folder) -> None:
    """Changes the watcher had not applied yet when its refit read the folder are taken up by
    the refit: its outcome counts them, for the log (the next pass finds nothing changed, and
    the count in the log jumped unexplained)."""
    index_folder(folder, hasher_options=FAST)
    for n in range(10):
        (folder / f"late-{n}.txt").write_text(f"rocket launch orbit booster {n} " * 4)
    outcome = watching.refit_in_subprocess(folder, "notes", hasher_options=FAST)
    assert (outcome.retrained, outcome.added, outcome.deleted, outcome.documents) == (
        True, 10, 0, 40
    )  # fmt: skip
    assert outcome.summary() == "40 documents; its pass found 10 added"


def test_a_refits_answer_is_its_only_output_on_the_pipe(folder) -> None:
    """Whatever the fit writes to file descriptor 1 (a native library's message) goes to
    stderr: the watcher reads the outcome from the child's stdout, and such a line made a
    refit that had succeeded say `the refit process ended with exit code 0`."""
    index_folder(folder, hasher_options=FAST)
    request = {"root": str(folder), "name": "notes", "device": "cpu", "parent": os.getpid()}
    request["hasher_options"] = FAST
    code = (
        "import os\n"
        "from nashcli import indexing\n"
        "fit = indexing.index_folder\n"
        "def noisy(*args, **kwargs):\n"
        "    os.write(1, b'OMP: Info #276: omp_set_nested routine deprecated\\n')\n"
        "    return fit(*args, **kwargs)\n"
        "indexing.index_folder = noisy\n"
        "from nashcli.watching import _refit_main\n"
        "_refit_main()\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout)["documents"] == 30  # (one line: the outcome)
    assert "OMP: Info" in child.stderr


def test_a_query_during_a_first_index_names_the_process_building_it(folder) -> None:
    from typer.testing import CliRunner

    from nashcli.cli import app

    Collection.create("notes", folder, 64)
    holder = subprocess.Popen(  # a first `nash index` that is training
        [
            sys.executable,
            "-c",
            "import time; from nashcli.index import training_turn\n"
            "with training_turn('notes', print):\n"
            "    print('training', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "training\n"
        query = next(folder.rglob("*.txt"))
        result = CliRunner().invoke(app, ["similar", str(query)])
        assert result.exit_code != 0
        assert f"has no index yet: another nash process (pid {holder.pid}" in result.output
        assert "is building it; ask again when it is done" in result.output
    finally:
        holder.kill()
        holder.wait()
    result = CliRunner().invoke(app, ["similar", str(query)])  # killed: nothing to wait for
    assert f"has no index yet: run nash index {folder}" in result.output


def test_status_says_a_collection_without_a_model_has_no_index_yet(folder) -> None:
    from typer.testing import CliRunner

    from nashcli.cli import app

    Collection.create("notes", folder, 64)  # a first index killed before its model
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0
    assert f"collection 'notes' has no index yet: run nash index {folder}" in result.output
    (entry,) = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["collections"]
    assert entry["note"] == f"collection 'notes' has no index yet: run nash index {folder}"
    assert entry["complete"] is False
    index_folder(folder, hasher_options=FAST)
    assert "no index yet" not in CliRunner().invoke(app, ["status"]).output
    (entry,) = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["collections"]
    assert entry["note"] is None and entry["folder_found"] is True and entry["complete"] is True
