"""`nash watch` against the real index: foreground, background, SIGKILL and restart, faults.

Tiny synthetic corpora and two training epochs keep each model fit to a few seconds; every wait
polls the index (or the watcher's output) with a timeout.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nashcli import watching
from nashcli.cli import app
from nashcli.index import Collection

TIMEOUT = 120.0  # a first model fit on a loaded 2-core machine
NASH = [sys.executable, "-c", "from nashcli.cli import main; main()"]
TOPICS = {
    "space": "orbit rocket launch nasa satellite moon shuttle planet telescope astronaut",
    "hockey": "goal puck season playoff team coach ice score player league",
    "crypto": "key encryption clipper chip privacy algorithm secure government escrow cipher",
}

runner = CliRunner()


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def text_about(topic: str, seed: int) -> str:
    rng = random.Random(seed)
    words = TOPICS[topic].split()
    return f"{topic} note {seed}\n" + " ".join(rng.choice(words) for _ in range(60)) + "\n"


def make_folder(base: Path, per_topic: int = 8) -> Path:
    root = base / "notes"
    root.mkdir()
    for t, topic in enumerate(TOPICS):
        for i in range(per_topic):
            (root / f"{topic}-{i:02}.txt").write_text(text_about(topic, 100 * t + i))
    return root


def live_paths(name: str = "notes") -> list[str]:
    with Collection.open(name).snapshot() as snap:
        return [doc.path for doc in snap.live_docs()]


def indexed(path: Path, name: str = "notes") -> bool:
    if not Collection.exists(name):
        return False
    with Collection.open(name).snapshot() as snap:
        return snap.generation > 0 and snap.doc_by_path(str(path)) is not None


class Watch:
    """`nash watch` in a child process; its output goes to a file the test can poll."""

    def __init__(
        self, root: Path, tmp: Path, *args: str, epochs: int = 2, terminal: bool = False
    ) -> None:
        """``terminal``: in a process group of its own, as a shell's foreground job, so that
        :meth:`ctrl_c` can signal the whole group as a terminal's Ctrl-C does."""
        self.out = tmp / f"watch-{time.monotonic_ns()}.log"
        self.handle = open(self.out, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*NASH, "watch", str(root), "--max-epochs", str(epochs), *args],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=terminal,  # (its own process group)
        )

    def output(self) -> str:
        return self.out.read_text()

    def wait_for(self, text: str) -> None:
        wait_until(lambda: text in self.output() or self.proc.poll() is not None, what=repr(text))
        assert text in self.output(), self.output()

    def ctrl_c(self) -> int:
        """SIGINT to the watcher's process group (it must have been started with ``terminal``)."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.stop(sig=None)

    def stop(self, sig: int | None = signal.SIGTERM) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            self.handle.close()


pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals")


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


def test_watch_keeps_the_collection_current_and_stops_cleanly(notes, tmp_path):
    watch = Watch(notes, tmp_path)
    try:
        watch.wait_for("up to date: 24 documents")
        status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
        assert [c["watching"] for c in status["collections"]] == [True]

        new = notes / "space-new.txt"
        new.write_text(text_about("space", 999))
        wait_until(lambda: indexed(new), what="the new file in the index")
        from nashcli.similar import find_similar

        hits = find_similar(new.read_text(), "notes", top=3)
        assert Path(hits[0].path) == new
        watch.wait_for("  + space-new.txt")  # the log tells new files from edited ones

        edited = notes / "space-01.txt"
        edited.write_text(text_about("crypto", 4242))
        watch.wait_for("  ~ space-01.txt")
        assert "  + space-01.txt" not in watch.output()

        old_row = next(
            d.row
            for d in Collection.open("notes").snapshot().live_docs()
            if d.path == str(notes / "hockey-00.txt")
        )
        renamed = notes / "hockey-renamed.txt"
        os.replace(notes / "hockey-00.txt", renamed)
        (notes / "crypto-00.txt").unlink()
        wait_until(lambda: indexed(renamed), what="the renamed file")
        wait_until(lambda: not indexed(notes / "crypto-00.txt"), what="the deletion")
        watch.wait_for("  → hockey-00.txt → hockey-renamed.txt")
        watch.wait_for("  - crypto-00.txt")
        with Collection.open("notes").snapshot() as snap:
            assert snap.doc_by_path(str(renamed)).row == old_row  # moved, not re-encoded
            assert snap.doc_by_path(str(notes / "hockey-00.txt")) is None

        # nash index on the watched collection waits for the watcher's batch, then runs
        result = runner.invoke(app, ["index", str(notes)])
        assert result.exit_code == 0, result.output
    finally:
        code = watch.stop(signal.SIGTERM)
    assert code == 0, watch.output()
    assert "stopped watching 'notes'" in watch.output()
    assert "Traceback" not in watch.output()
    assert not watching.is_watching("notes")
    assert sorted(live_paths()) == sorted(str(p) for p in notes.iterdir())


def test_the_model_is_refit_in_the_background_once_the_collection_grew(notes, tmp_path):
    watch = Watch(notes, tmp_path)
    try:
        watch.wait_for("up to date: 24 documents")
        grown = [notes / f"grown-{i}.txt" for i in range(8)]  # past a quarter of 24
        for i, path in enumerate(grown):
            path.write_text(text_about(list(TOPICS)[i % 3], 3000 + i))
        watch.wait_for("retrained: ")
        with Collection.open("notes").snapshot() as snap:
            assert snap.generation == 2 and snap.trained_docs == 32
            assert all(snap.doc_by_path(str(p)) is not None for p in grown)
    finally:
        assert watch.stop() == 0, watch.output()


def _refit_children() -> list[int]:
    """Pids of refit processes of this test's NASH_HOME still running."""
    home = f"NASH_HOME={os.environ['NASH_HOME']}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            mine = b"_refit_main" in (proc / "cmdline").read_bytes()
            if mine and home in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_ctrl_c_during_a_background_retrain_stops_the_watcher_and_ends_the_refit(notes, tmp_path):
    """The terminal signals its whole foreground group. The refit child used to be in it and,
    signalled while it started, printed a KeyboardInterrupt traceback."""
    watch = Watch(notes, tmp_path, epochs=2000, terminal=True)  # a refit that outlasts Ctrl-C
    try:
        watch.wait_for("up to date: 24 documents")
        for i in range(8):  # past a quarter of 24: a retrain is due
            (notes / f"grown-{i}.txt").write_text(text_about(list(TOPICS)[i % 3], 3000 + i))
        watch.wait_for("retraining the model in the background")
    finally:
        code = watch.ctrl_c()
    out = watch.output()
    assert code == 0 and "stopped watching 'notes'" in out, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "stopping during a background retrain: the current model stays" in out
    wait_until(lambda: not _refit_children(), timeout=10, what="the refit child to end")
    with Collection.open("notes").snapshot() as snap:
        assert snap.generation == 1  # the current model stayed


def test_detach_status_and_stop(notes):
    result = runner.invoke(app, ["watch", str(notes), "--detach", "--max-epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "in the background" in result.output
    try:
        assert watching.is_watching("notes")
        info = watching.read_pid_file("notes")
        assert info["log"] == str(watching.log_file("notes"))
        late = notes / "crypto-late.txt"
        late.write_text(text_about("crypto", 777))
        wait_until(lambda: indexed(late), what="a change picked up in the background")
        assert watching.read_pid_file("notes")["ready"] is True  # caught up
        status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
        assert status["collections"][0]["watching"] is True
        for argv in (["watch", str(notes)], ["watch", str(notes), "--detach"]):
            again = runner.invoke(app, argv)  # both say how to stop the running one
            assert again.exit_code != 0 and "already being watched" in again.output
            # (the name: the folder was given unquoted, a path with a space broke it)
            assert again.output.rstrip().endswith("stop it with: nash watch --stop notes")
            assert f"--stop {notes}" not in again.output
    finally:
        stopped = runner.invoke(app, ["watch", "--stop", str(notes)])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped watching 'notes'" in stopped.output
    assert not watching.is_watching("notes")
    assert not watching.pid_file("notes").exists()
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["collections"][0]["watching"] is False
    log = watching.log_file("notes").read_text()
    assert "stopped watching 'notes'" in log and "Traceback" not in log


def test_sigkill_mid_update_then_restart_loses_and_duplicates_nothing(notes, tmp_path):
    watch = Watch(notes, tmp_path, "--batch-size", "8")
    watch.wait_for("up to date: 24 documents")
    burst = [notes / f"burst-{i:03}.txt" for i in range(200)]
    for i, path in enumerate(burst):
        path.write_text(text_about(list(TOPICS)[i % 3], 5000 + i))
    # Kill it once some, not all, of the burst is in: it is between or inside its batches.
    wait_until(lambda: len(live_paths()) > 24, timeout=60, what="the first batches")
    assert watch.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(live_paths()) < 224, "the watcher finished before it could be killed"
    # Meanwhile, with nobody watching: deletions, edits, renames.
    for path in burst[:5]:
        path.unlink()
    for i, path in enumerate(burst[5:10]):
        path.write_text(text_about("hockey", 9000 + i))
    for path in burst[10:15]:
        os.replace(path, path.with_name("renamed-" + path.name))

    again = Watch(notes, tmp_path, "--batch-size", "8")
    try:
        again.wait_for("up to date")
        on_disk = sorted(str(p) for p in notes.iterdir())
        wait_until(lambda: sorted(live_paths()) == on_disk, timeout=60, what="all files")
        paths = live_paths()
        assert len(paths) == len(set(paths)) == 24 + 200 - 5
        from nashcli import documents

        with Collection.open("notes").snapshot() as snap:  # the edits are in, not the old text
            for path in burst[5:10]:
                assert snap.doc_by_path(str(path)).hash == documents.content_hash(path)
    finally:
        assert again.stop() == 0, again.output()


def test_a_signal_during_the_first_index_stops_at_once(notes, tmp_path):
    watch = Watch(notes, tmp_path, epochs=2000)  # a fit that outlasts the signal
    watch.wait_for("); indexing it first")  # (not "catching up": nothing to catch up with)
    code = watch.stop(signal.SIGTERM)
    out = watch.output()
    assert code == 0, out
    assert "stopped watching 'notes' before its first index finished: nothing was indexed (" in (
        out
    )
    assert "Traceback" not in out
    assert "up to date" not in out  # it did not wait for the model fit to finish
    assert not Collection.exists("notes")
    assert not watching.is_watching("notes")


def test_a_signal_during_a_catch_up_says_the_collection_is_not_up_to_date(notes, tmp_path):
    """The log says the catch-up was cut short (here in the rebuild of a damaged model, a fit
    the catch-up makes itself); the collection keeps what it had."""
    from nashcli.paths import collections_dir

    assert runner.invoke(app, ["index", str(notes)]).exit_code == 0
    (collections_dir() / "notes" / "gen-000001" / "model" / "model.npz").write_bytes(b"")
    watch = Watch(notes, tmp_path, epochs=2000)
    watch.wait_for("catching up")
    time.sleep(1.0)  # (into the fit)
    code = watch.stop(signal.SIGTERM)
    out = watch.output()
    assert code == 0, out
    assert "stopped watching 'notes' before it was up to date (nash watch " in out, out
    assert len(live_paths()) == 24


def test_a_signal_during_the_refit_a_catch_up_made_due_keeps_its_update(notes, tmp_path):
    """The update the catch-up committed with the model there stays; the refit it made due,
    in a child process, ends with the watcher."""
    assert runner.invoke(app, ["index", str(notes)]).exit_code == 0
    for i in range(30):  # enough to refit a small collection
        (notes / f"more-{i:02}.txt").write_text(text_about("space", 900 + i))
    watch = Watch(notes, tmp_path, epochs=2000)
    watch.wait_for("retraining the model in the background")
    code = watch.stop(signal.SIGTERM)
    out = watch.output()
    assert code == 0, out
    assert "stopping during a background retrain: the current model stays" in out, out
    assert len(live_paths()) == 24 + 30


def test_a_catch_up_that_makes_a_refit_due_lists_its_changes_and_refits_aside(notes, tmp_path):
    """The catch-up commits its update with the model there and lists its files; the refit it
    makes due runs in a child process, as the watcher's own refits do (it ran inside the
    watcher, whose events waited for the fit and whose memory kept what it had used)."""
    assert runner.invoke(app, ["index", str(notes)]).exit_code == 0
    for i in range(7):  # 7 + 1 of 24: a small collection refits at a quarter more
        (notes / f"more-{i}.txt").write_text(text_about("space", 900 + i))
    (notes / "space-00.txt").write_text(text_about("space", 999))
    watch = Watch(notes, tmp_path)
    try:  # ("updated", as `nash index` says it: the catch-up said "changed")
        watch.wait_for("up to date: 31 documents (7 added, 1 updated;")
        watch.wait_for("retraining the model in the background")
        watch.wait_for("retrained: new documents are encoded with the new model (31 documents)")
    finally:
        watch.stop()
    out = watch.output()
    assert [line for line in out.splitlines() if line.startswith("  ")] == [
        *(f"  + more-{i}.txt" for i in range(7)),
        "  ~ space-00.txt",
    ], out


def test_a_deleted_folder_ends_the_watch_with_one_clear_line(notes, tmp_path):
    watch = Watch(notes, tmp_path)
    watch.wait_for("up to date: 24 documents")
    shutil.rmtree(notes)
    try:
        code = watch.proc.wait(30)
    finally:
        watch.stop()
    out = watch.output()
    assert code == 2, out
    assert f"nash: error: the watched folder {notes} no longer exists" in out
    assert "Traceback" not in out
    assert not watching.is_watching("notes")
    assert len(live_paths()) == 24  # the last good index stays


@pytest.mark.parametrize("away", ["moved", "deleted"])
def test_a_folder_replaced_under_the_watcher_is_followed(notes, tmp_path, away):
    watch = Watch(notes, tmp_path)
    try:
        watch.wait_for("up to date: 24 documents")
        old = notes.with_name("notes.old")
        if away == "moved":
            notes.rename(old)
        else:  # the new folder may well get the old one's inode number back
            shutil.copytree(notes, old)
            shutil.rmtree(notes)
        notes.mkdir()  # a restore from backup: half the notes, and one new
        for path in sorted(old.iterdir())[::2]:
            shutil.copy2(path, notes / path.name)
        (notes / "space-restored.txt").write_text(text_about("space", 777))
        want = sorted(str(p) for p in notes.iterdir())
        wait_until(lambda: sorted(live_paths()) == want, what="the index of the new folder")
        (notes / "space-later.txt").write_text(text_about("space", 779))
        wait_until(lambda: indexed(notes / "space-later.txt"), what="a change in the new folder")
        assert watch.proc.poll() is None
    finally:
        code = watch.stop(signal.SIGTERM)
    assert code == 0, watch.output()
    assert f"{notes} was replaced by another folder; watching the new one" in watch.output()
    assert "Traceback" not in watch.output()


def test_watch_needs_an_existing_folder(tmp_path):
    result = runner.invoke(app, ["watch", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "no such folder" in result.output
    result = runner.invoke(app, ["watch"])
    assert result.exit_code == 2 and "which folder?" in result.output


def test_a_name_taken_by_another_folder_is_refused_before_anything_starts(notes, tmp_path):
    other = tmp_path / "other" / "notes"
    other.mkdir(parents=True)
    (other / "a.txt").write_text(text_about("space", 1))
    Collection.create("notes", other, 64)
    result = runner.invoke(app, ["watch", str(notes), "--detach"])
    assert result.exit_code == 2
    assert f"collection 'notes' already indexes {other}" in result.output
    assert not watching.is_watching("notes")


def test_a_collection_name_that_is_also_a_folder_here_says_which_is_which(
    notes, tmp_path, monkeypatch
):
    """`nash watch other` in a folder holding a folder `other`, while collection 'other' indexes
    another folder: "collection 'other' already indexes ...; choose another name" read as if the
    collection itself could not be watched."""
    other = tmp_path / "elsewhere" / "notes"
    other.mkdir(parents=True)
    (other / "a.txt").write_text(text_about("space", 1))
    Collection.create("other", other, 64)
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path)
    for given in ("other", "./other", "other/"):
        result = runner.invoke(app, ["watch", given, "--detach"])
        assert result.exit_code == 2
        assert (
            f"{given!r} is a folder here that no collection indexes, and collection 'other' "
            f"indexes {other}: to watch that, run: nash watch {other}"
            in " ".join(result.stderr.split())
        )
    assert not watching.is_watching("other")


def test_a_second_name_for_a_watched_folder_is_refused_before_anything_starts(notes):
    Collection.create("notes", notes, 64)
    for detach in ([], ["--detach"]):
        result = runner.invoke(app, ["watch", str(notes), "--name", "other", *detach])
        assert result.exit_code == 2
        assert f"{notes} is already indexed as collection 'notes'" in result.stderr
        assert "watching" not in result.stdout
    assert not watching.is_watching("other") and not Collection.exists("other")


def test_another_code_length_is_refused_before_anything_starts(notes):
    Collection.create("notes", notes, 64)
    result = runner.invoke(app, ["watch", str(notes), "--bits", "16", "--detach"])
    assert result.exit_code == 2
    assert f"first run: nash index {notes} --bits 16 --retrain" in result.stderr
    assert not watching.is_watching("notes")


def test_cuda_without_a_gpu_is_refused_before_anything_starts(notes, monkeypatch):
    """Indexed already, a watcher needs the device only at the first change: too late."""
    import torch

    from nashcli.indexing import index_folder

    index_folder(notes, device="cpu", hasher_options={"max_epochs": 2})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["watch", str(notes), "--device", "cuda", "--detach"])
    assert result.exit_code == 2
    assert "no GPU is available" in result.stderr
    assert not watching.is_watching("notes")


def test_stop_without_a_watcher_says_so(notes):
    result = runner.invoke(app, ["watch", "--stop"])
    assert result.exit_code == 0 and "no watcher is running" in result.output
    result = runner.invoke(app, ["watch", "--stop", str(notes)])  # a folder, no collection yet
    assert result.exit_code == 0 and f"no watcher is running for {notes}\n" == result.output
    Collection.create("notes", notes, 64)
    result = runner.invoke(app, ["watch", "--stop", str(notes)])
    assert result.exit_code == 0 and "no watcher is running for 'notes'" in result.output


def test_stop_of_a_folder_never_stops_the_watcher_of_another_folder_of_its_name(
    notes, tmp_path, monkeypatch
):
    other = tmp_path / "elsewhere" / "notes"
    other.mkdir(parents=True)
    Collection.create("notes", other, 64)  # `notes` is the name notes/ would get
    stopped = []
    monkeypatch.setattr(watching, "stop_watching", lambda name, **kw: stopped.append(name))
    result = runner.invoke(app, ["watch", "--stop", str(notes)])
    assert result.exit_code == 0 and result.output == f"no watcher is running for {notes}\n"
    assert stopped == []


def test_a_watcher_loads_the_model_once_not_per_update(notes, monkeypatch):
    """Each update used to reload the model (most of its cost); now once per generation."""
    import threading

    from nashcli import indexing

    loads: list[Path] = []
    real = indexing._load_hasher

    def counting_load(directory, device):
        loads.append(Path(directory))
        return real(directory, device)

    monkeypatch.setattr(indexing, "_load_hasher", counting_load)
    watcher = watching.make_watcher(
        notes, "notes", hasher_options={"max_epochs": 2}, quiet=0.05, max_delay=0.5
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_until(watcher.ready.is_set, what="the catch-up pass")
        for i in range(3):  # three updates, one after the other (3 < a quarter of 24: no refit)
            new = notes / f"later-{i}.txt"
            new.write_text(text_about(list(TOPICS)[i], 5000 + i))
            wait_until(lambda new=new: indexed(new), what=f"later-{i}.txt in the index")
    finally:
        watcher.stop()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert len(loads) == 1, loads  # the warm-up's load served every update


def test_an_interrupt_python_could_not_raise_is_delivered_again(capsys):
    # A signal during the first index can land in a weakref callback or a __del__, where Python
    # only prints the KeyboardInterrupt as a traceback and goes on: it must stop the watch anyway.
    import threading

    from nashcli.cli.watch_cmd import _stop_on_signals

    class Watcher:
        def __init__(self) -> None:
            self.ready = threading.Event()  # still catching up
            self.stops = 0

        def stop(self) -> None:
            self.stops += 1

    class InterruptedOnDelete:
        def __del__(self) -> None:
            raise KeyboardInterrupt

    watcher = Watcher()
    with pytest.raises(KeyboardInterrupt), _stop_on_signals(watcher):
        InterruptedOnDelete()  # dropped at once: its __del__ raises where nothing can catch it
        for _ in range(200):
            time.sleep(0.005)  # the interrupt is delivered again here
    assert watcher.stops == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_batch_of_many_skipped_files_is_summed_up_by_reason(capsys, tmp_path):
    """A folder renamed to a name that is not valid UTF-8 skips each of its files: 250 lines,
    where `nash index` and a catch-up give one a reason."""
    from nashcli.cli.watch_cmd import _BatchLog

    log = _BatchLog(tmp_path)
    skipped = [(tmp_path / f"more/m{i}.txt", "folder name is not valid UTF-8") for i in range(250)]
    log(watching.BatchResult(watching.Batch(), 0.0, None, skipped))
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith(
        "skipped 250: folder name is not valid UTF-8 "
        "(more/m0.txt, more/m1.txt, more/m2.txt, … (+247))"
    )
    log(watching.BatchResult(watching.Batch(), 0.0, None, skipped[:2]))  # a few: each named
    assert capsys.readouterr().out.count("skipped m") == 2


def test_a_catch_up_sums_up_its_skipped_files_by_reason(capsys, tmp_path):
    """Every watcher start is a catch-up pass: a folder of 40 oversize files must not print 40
    lines each time (as `nash index` sums them up too)."""
    from nashcli.cli.watch_cmd import _BatchLog
    from nashcli.indexing import IndexReport

    log = _BatchLog(tmp_path)
    report = IndexReport(collection="notes", root=tmp_path, documents=5)
    report.skipped = [(f"big-{i}.txt", "larger than 2 KB (--max-size)") for i in range(40)]
    report.skipped.append(("blob.bin", "binary file"))
    log(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # "up to date", one line for each reason
    assert (
        "skipped 40: larger than 2 KB (--max-size) (big-0.txt, big-1.txt, big-2.txt, … (+37))"
        in (lines[1])
    )
    assert lines[2].endswith("skipped 1: binary file (blob.bin)")
    # A later pass (a folder deleted, a .gitignore edited) names what it changed, and only
    # the skips that are news; every skip was printed again each time.
    report = IndexReport(collection="notes", root=tmp_path, documents=3)
    report.skipped = [(f"big-{i}.txt", "larger than 2 KB (--max-size)") for i in range(40)]
    report.skipped.append(("new.bin", "binary file"))
    report.note("-", tmp_path / "sub" / "a.txt")
    report.note("-", tmp_path / "sub" / "b.txt")
    log(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("up to date: 3 documents (2 removed; 0.5 s)")
    assert lines[1:] == ["  - sub/a.txt", "  - sub/b.txt", lines[3]]
    assert lines[3].endswith("skipped new.bin: binary file")
    # new.bin fixed, then broken again: news again
    for skipped in ([], [("new.bin", "binary file")]):
        report = IndexReport(collection="notes", root=tmp_path, documents=3, skipped=skipped)
        log(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
    assert capsys.readouterr().out.splitlines()[-1].endswith("skipped new.bin: binary file")


def test_the_watch_log_shows_control_characters_in_names_as_escapes(capsys, tmp_path):
    """Its list of changed files too: an ESC in a name must not reach the terminal, a newline
    must not split the line (and the name read back from the log is the name)."""
    from nashcli.cli.watch_cmd import _BatchLog
    from nashcli.indexing import IndexReport
    from nashcli.names import from_visible

    report = IndexReport(collection="notes", root=tmp_path, documents=2)
    report.note("+", tmp_path / "evil\x1b[2Jname.txt")
    report.note("+", tmp_path / "new\nline\\n.txt")
    report.added = 2
    _BatchLog(tmp_path)(watching.BatchResult(watching.Batch(), 0.1, report))
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["  + evil\\x1b[2Jname.txt", "  + new\\nline\\\\n.txt"]
    assert from_visible(lines[2]) == "  + new\nline\\n.txt"


def test_the_watch_log_says_which_removed_files_the_ignore_rules_left_out(capsys, tmp_path):
    """An edited .nashignore makes a pass that removes the files it now leaves out; "100
    removed" alone read as if they had been deleted."""
    from nashcli.cli.watch_cmd import _BatchLog
    from nashcli.indexing import IndexReport

    for deleted, ignored, said in (
        (100, 100, "the 100 removed files are still there"),
        (11, 10, "10 of the 11 removed files are still there"),
        (1, 1, "the removed file is still there"),
    ):
        report = IndexReport("notes", tmp_path, deleted=deleted, ignored=ignored, documents=5)
        _BatchLog(tmp_path)(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].endswith(f" {said}: left out by .gitignore/.nashignore rules"), lines
    report = IndexReport("notes", tmp_path, deleted=3, documents=5)
    _BatchLog(tmp_path)(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
    assert "still there" not in capsys.readouterr().out


def test_the_watch_log_drops_its_lines_while_its_disk_is_full(monkeypatch, tmp_path):
    """A background watcher whose log filled up died without a word (the write's error ended
    it); lines are dropped while the disk is full. A reader gone away still ends it."""
    import errno

    import typer as typer_module

    from nashcli.cli import watch_cmd

    failure = [errno.ENOSPC]

    def echo(*args, **kwargs):
        raise OSError(failure[0], os.strerror(failure[0]))

    monkeypatch.setattr(typer_module, "echo", echo)
    watch_cmd._say("indexed 1 (0.01 s; 5 documents)")  # dropped
    failure[0] = errno.EPIPE
    with pytest.raises(OSError):
        watch_cmd._say("indexed 1 (0.01 s; 5 documents)")


def test_a_log_that_cannot_be_written_is_named_in_one_line(monkeypatch, tmp_path):
    """`nash watch --detach` on a full disk said only "No space left on device"."""
    if not os.path.exists("/dev/full"):  # (writes to it fail as on a full disk)
        pytest.skip("no /dev/full")

    def to_dev_full(path, mode):
        return open("/dev/full", mode)  # noqa: SIM115 - the code under test closes it

    monkeypatch.setattr(watching, "open", to_dev_full, raising=False)
    log = tmp_path / "watch-notes.log"
    with pytest.raises(watching.NashError) as caught, watching._opened_log(log, ["watch", "x"]):
        pass
    assert str(caught.value) == f"cannot write the watcher's log {log}: No space left on device"


def test_a_catch_up_that_rebuilt_a_damaged_index_says_why(capsys, tmp_path):
    """As `nash index` does: a rebuild is news, a routine retrain is not."""
    from nashcli.cli.watch_cmd import _BatchLog
    from nashcli.indexing import IndexReport

    for reason, shown in (
        ("rebuilt from the folder: gen-000001/model/model.npz was damaged, empty", True),
        ("the collection changed by 30 documents since the model was trained", False),
    ):
        report = IndexReport(collection="notes", root=tmp_path, documents=5, retrained=True)
        report.retrain_reason = reason
        _BatchLog(tmp_path)(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
        (line,) = capsys.readouterr().out.splitlines()
        assert "model retrained" in line and (reason in line) == shown
    report.retrain_reason = "first index"  # a watcher started on a new folder: nothing re-done
    _BatchLog(tmp_path)(watching.BatchResult(watching.Batch(rescan=True), 0.5, report))
    assert "model trained (first index)" in capsys.readouterr().out


def test_watching_a_collection_whose_folder_is_gone_says_how_to_move_it(
    tmp_path: Path, monkeypatch
) -> None:
    """By name or by its old path, as `nash similar` says it (was "w2: no such folder", and
    "no such folder or collection" for the collection's own folder)."""
    from nashcli.indexing import index_folder

    notes = make_folder(tmp_path)
    index_folder(notes, device="cpu", hasher_options={"max_epochs": 2})
    shutil.rmtree(notes)
    monkeypatch.chdir(tmp_path)
    for target in ("notes", str(notes)):
        result = runner.invoke(app, ["watch", target])
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [
            f"nash: error: the folder of collection 'notes', {notes}, is gone; if it moved, "
            "run: nash index NEW-PLACE --name notes"
        ]


@pytest.mark.skipif(not Path("/proc/self/mountinfo").exists(), reason="needs Linux's /proc")
def test_watching_a_system_folder_is_refused_before_it_starts(tmp_path: Path) -> None:
    """As `nash index /proc` is: it printed "watching /proc ... catching up" first."""
    result = runner.invoke(app, ["watch", "/proc"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "nash: error: /proc is in a system folder (proc filesystem), which holds no documents"
    ]
