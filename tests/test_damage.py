"""A damaged or vanishing collection as a user meets it: one clear line, never a traceback, and
the tool itself repairs it (`nash index --retrain`) or removes it (`nash forget`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from test_collection_cli import (
    fast_training,  # noqa: F401 - autouse: few epochs
    one_error_line,
)
from test_collection_cli import run as run_command
from test_indexing import FAST, make_docs

from nashcli import indexing, watching
from nashcli.errors import IndexBusyError, NashError
from nashcli.index import (
    Collection,
    CollectionGoneError,
    DamagedCollectionError,
    collections_dir,
    forget_collection,
    list_collections,
)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check the recovery, not the model (fast_training: few epochs)."""
    monkeypatch.setenv("NASH_TRAIN_THREADS", "1")


def run(*args: str):
    result = run_command(*args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def notes(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=4)
    indexing.index_folder(folder, name="c", bits=8, hasher_options=FAST)
    return folder, paths


def home() -> Path:
    return collections_dir() / "c"


def status_entry() -> dict:
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["collections"]
    return entry


def assert_recovered(folder: Path, paths: list[Path]) -> None:
    """`similar` answers again (from the stored codes and with the model) and status is clean."""
    result = run("similar", str(paths[0]), "--json", "--top", "3")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 3
    result = run("similar", "--text", "rocket orbit", "--json")
    assert result.exit_code == 0, result.output
    entry = status_entry()
    assert "damaged" not in entry and entry["documents"] == len(paths)
    assert not [p for p in collections_dir().iterdir() if p.name.startswith(".")]


def damage(what: str) -> None:
    """Damage one file of collection 'c' the way the audit did."""
    gen = home() / "gen-000001"
    model = gen / "model"
    if what == "gen-dir":
        import shutil

        shutil.rmtree(gen)
    elif what in ("plane-0.u64", "tfidf.data", "tfidf.indices", "tfidf.indptr"):
        (gen / what).write_bytes(b"")
    elif what == "tfidf.data=nan":  # right size, weights that are no numbers
        with open(gen / "tfidf.data", "r+b") as f:
            f.write(b"\x00\x00\xc0\x7f" * 8)
    elif what == "tfidf.data=huge":  # right size, finite weights no L2-normalised row holds
        with open(gen / "tfidf.data", "r+b") as f:
            f.write(np.full(8, 1e38, dtype=np.float32).tobytes())
    elif what == "tfidf.indices=garbled":  # right size, a term id far past the vocabulary
        with open(gen / "tfidf.indices", "r+b") as f:
            f.write(b"\xff\xff\xff\x7f")
    elif what == "model.json=[]":
        (model / "model.json").write_text("[]")
    elif what == "features.json=null":
        (model / "features.json").write_text("null")
    elif what == "features.json=short":  # valid JSON, but 10 words for the idf's thousands
        features = json.loads((model / "features.json").read_text())
        features["vocabulary"] = features["vocabulary"][:10]
        (model / "features.json").write_text(json.dumps(features))
    elif what.endswith("=truncated"):
        path = model / what.split("=")[0]
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif what.endswith("=empty"):
        (model / what.split("=")[0]).write_bytes(b"")
    elif what.endswith("=random"):
        (model / what.split("=")[0]).write_bytes(os.urandom(2000))
    else:
        raise AssertionError(what)


GENERATION_DAMAGE = [
    "plane-0.u64",
    "tfidf.data",
    "tfidf.indices",
    "tfidf.indices=garbled",  # was a segmentation fault in nash similar
    "tfidf.data=nan",  # was "nan" scores and invalid --json
    "tfidf.data=huge",  # was scores of 1e75 and an overflow warning
    "tfidf.indptr",
    "gen-dir",
]
MODEL_DAMAGE = [
    "model.json=[]",
    "features.json=null",
    "features.json=short",
    "model.npz=truncated",
    "model.npz=empty",
    "features.npz=empty",
    "model.npz=random",
    "features.npz=random",
]


@pytest.mark.parametrize("what", GENERATION_DAMAGE)
def test_damaged_generation_file(notes, what: str) -> None:
    folder, paths = notes
    damage(what)
    shown = "gen-000001/" if what == "gen-dir" else f"gen-000001/{what.split('=')[0]}"
    for args in (("similar", str(paths[0])), ("similar", "--text", "rocket")):
        line = one_error_line(run(*args))
        assert f"collection 'c' is damaged ({shown}" in line
        assert f"nash index {folder} --name c --retrain" in line and "nash forget c" in line
    assert shown in status_entry()["damaged"]
    assert "DAMAGED" in run("status").stdout
    # A plain `nash index` rebuilds it too (it is what a user runs), not only --retrain.
    args = ("index", str(folder), "--name", "c")
    result = run(*(args + ("--retrain",) if what == "gen-dir" else args))
    assert result.exit_code == 0, result.output
    assert "rebuilt from the folder" in result.stdout
    assert_recovered(folder, paths)


@pytest.mark.parametrize("what", MODEL_DAMAGE)
def test_damaged_model_file(notes, what: str) -> None:
    folder, paths = notes
    damage(what)
    name = what.split("=")[0]
    line = one_error_line(run("similar", "--text", "rocket"))
    assert f"collection 'c' is damaged (gen-000001/model/{name}: " in line
    assert "--retrain" in line and "allow_pickle" not in line
    assert f"gen-000001/model/{name}" in status_entry()["damaged"]
    # The loader a watcher's update goes through says the same, rather than a numpy error.
    bump = paths[0].stat().st_mtime_ns + 2_000_000_000
    paths[0].write_text(paths[0].read_text() + " shuttle")
    os.utime(paths[0], ns=(bump, bump))
    with pytest.raises(DamagedCollectionError, match=name):
        indexing.apply_changes("c", upserts=[paths[0]], device="cpu")
    result = run("index", str(folder), "--name", "c", "--retrain")
    assert result.exit_code == 0, result.output
    assert_recovered(folder, paths)


@pytest.mark.parametrize("how", ["empty", "random", "truncated"])
def test_damaged_metadata(notes, how: str) -> None:
    folder, paths = notes
    meta = home() / "meta.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(meta) + suffix).unlink(missing_ok=True)
    data = {"empty": b"", "random": os.urandom(5000), "truncated": meta.read_bytes()[:4096]}
    meta.write_bytes(data[how])
    entry = status_entry()
    assert entry["name"] == "c" and "meta.sqlite" in entry["damaged"]
    assert entry["state"] == "damaged" and entry["documents"] is None and entry["complete"] is None
    assert "nash forget c" in run("status").stdout
    line = one_error_line(run("similar", "--text", "rocket", "--collection", "c"))
    assert "collection 'c' is damaged (meta.sqlite: " in line and "--retrain" in line
    line = one_error_line(run("similar", str(paths[0])))  # the only collection, found unasked
    assert "collection 'c' is damaged (meta.sqlite: " in line
    result = run("index", str(folder), "--name", "c", "--retrain", "--bits", "8")
    assert result.exit_code == 0, result.output
    assert_recovered(folder, paths)


def test_a_failed_rebuild_leaves_the_damage_as_it_was(notes, monkeypatch) -> None:
    folder, _paths = notes
    meta = home() / "meta.sqlite"
    meta.write_bytes(b"not a database" * 100)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C (or a kill) in the middle of training

    monkeypatch.setattr(indexing, "_retrain", crash)
    with pytest.raises(KeyboardInterrupt):
        indexing.index_folder(folder, name="c", retrain=True)
    assert meta.read_bytes() == b"not a database" * 100
    assert [p.name for p in collections_dir().iterdir()] == ["c"]  # no half-built leftovers
    assert "meta.sqlite" in status_entry()["damaged"]


@pytest.mark.parametrize("what", ["meta", "gen-dir"])
def test_forget_a_damaged_collection(notes, what: str) -> None:
    folder, paths = notes
    if what == "meta":
        (home() / "meta.sqlite").write_bytes(os.urandom(3000))
    else:
        damage("gen-dir")
    result = run("forget", "c")
    assert result.exit_code == 0, result.output
    assert "forgot c" in result.stdout
    assert not home().exists() and all(p.exists() for p in paths)
    assert json.loads(run("status", "--json").stdout) == {"collections": []}


@pytest.mark.parametrize("left", [[], ["writer.lock"]])
def test_forget_a_collection_folder_with_no_index_in_it(left: list[str]) -> None:
    """What status lists as damaged ("meta.sqlite: missing") forget removes, and says so."""
    bare = collections_dir() / "bare"
    bare.mkdir(parents=True)
    for name in left:
        (bare / name).touch()
    assert "meta.sqlite" in run("status").stdout
    result = run("forget", "bare")
    assert result.exit_code == 0, result.output
    assert "forgot bare" in result.stdout and not bare.exists()


def _rmtree_as_a_user(monkeypatch, always: bool = False) -> None:
    """shutil.rmtree in nash's index module refusing what a user other than root may not
    remove: the entries of a folder without write permission (or everything, ``always``)."""
    import stat

    from nashcli import index

    real = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        for folder, subfolders, files in os.walk(path):
            if always or (not os.stat(folder).st_mode & stat.S_IWUSR and (subfolders or files)):
                raise PermissionError(13, "Permission denied", folder)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(index.shutil, "rmtree", rmtree)


def test_forget_removes_an_index_made_read_only(notes, monkeypatch) -> None:
    _rmtree_as_a_user(monkeypatch)
    for folder in [home(), *home().glob("gen-*")]:
        folder.chmod(0o555)
    result = run("forget", "c")
    assert result.exit_code == 0, result.output
    assert list(collections_dir().iterdir()) == []  # no .forgotten-c-PID left behind


def test_forget_a_collection_whose_folder_is_a_link_removes_the_link(notes, tmp_path) -> None:
    elsewhere = tmp_path / "index-on-another-drive"
    home().rename(elsewhere)
    home().symlink_to(elsewhere, target_is_directory=True)
    modes = {p: p.stat().st_mode for p in [elsewhere, *elsewhere.rglob("*")]}
    result = run("forget", "c")
    assert result.exit_code == 0, result.output
    assert list(collections_dir().iterdir()) == []
    assert {p: p.stat().st_mode for p in [elsewhere, *elsewhere.rglob("*")]} == modes
    assert f"the index of 'c' was a link to {elsewhere}: the link is removed" in result.stderr


def test_forget_says_when_it_cannot_remove_the_index_files(notes, monkeypatch) -> None:
    remove = shutil.rmtree
    _rmtree_as_a_user(monkeypatch, always=True)
    line = one_error_line(run("forget", "c"))
    assert line.startswith("nash: error: forgot c, but could not remove its index files in ")
    assert line.endswith("(permission denied); remove that folder by hand")
    assert json.loads(run("status", "--json").stdout) == {"collections": []}
    for debris in collections_dir().iterdir():  # (the test's own clean-up)
        remove(debris)


HOLD = """
import sys, time
from nashcli.index import Collection
with Collection.open("c").writer():
    print("held", flush=True)
    time.sleep(60)
"""


def test_forget_refuses_while_a_writer_holds_the_lock(notes) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_error_line(run("forget", "c"))
        assert f"collection 'c' is being updated by another nash process (pid {holder.pid}" in line
        assert "nash forget c" in line
        assert (home() / "meta.sqlite").is_file()
    finally:
        holder.kill()
        holder.wait()
    assert run("forget", "c").exit_code == 0
    assert not home().exists()


def test_forget_refuses_while_watched(notes) -> None:
    folder, _paths = notes
    with watching.Registration("c", folder):
        line = one_error_line(run("forget", "c"))
    assert "collection 'c' is being watched" in line
    assert f"nash watch --stop {folder}" in line
    assert home().is_dir()
    assert run("forget", "c").exit_code == 0


def test_a_writer_stops_when_its_collection_is_forgotten(notes) -> None:
    collection = Collection.open("c")
    forget_collection("c")
    with pytest.raises(CollectionGoneError), collection.writer():
        pass
    assert not home().exists()  # the lock did not re-create the folder


def test_index_stops_when_forgotten_during_training(notes, monkeypatch) -> None:
    folder, _paths = notes
    real = indexing._retrain

    def forget_meanwhile(*args, **kwargs):
        found = real(*args, **kwargs)
        forget_collection("c")  # `nash forget c` while `nash index --retrain` trains unlocked
        return found

    monkeypatch.setattr(indexing, "_retrain", forget_meanwhile)
    line = one_error_line(run("index", str(folder), "--name", "c", "--retrain"))
    assert "collection 'c' was removed (nash forget)" in line
    assert not home().exists()
    assert json.loads(run("status", "--json").stdout) == {"collections": []}


def test_a_rebuild_does_not_bring_back_a_collection_forgotten_meanwhile(notes, monkeypatch):
    folder, _paths = notes
    for suffix in ("", "-wal", "-shm"):  # lost: the next index rebuilds it beside
        Path(str(home() / "meta.sqlite") + suffix).unlink(missing_ok=True)
    real = indexing._retrain

    def forget_meanwhile(*args, **kwargs):
        found = real(*args, **kwargs)
        forget_collection("c")
        return found

    monkeypatch.setattr(indexing, "_retrain", forget_meanwhile)
    line = one_error_line(run("index", str(folder), "--name", "c"))
    assert "collection 'c' was removed (nash forget)" in line
    assert not home().exists()
    assert not list(home().parent.glob(".new-c-*"))  # nor leaves the rebuild behind


def test_a_busy_message_names_the_holder(notes) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusyError, match=f"busy: another nash process \\(pid {holder.pid}"):
            indexing.apply_changes("c", lock_timeout=0.1)
    finally:
        holder.kill()
        holder.wait()


def test_a_watcher_stops_cleanly_when_its_collection_is_forgotten(notes) -> None:
    folder, paths = notes
    messages: list[str] = []
    watcher = watching.make_watcher(
        folder, "c", device="cpu", on_message=messages.append, quiet=0.05, max_delay=0.2
    )
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            watcher.run()
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not watcher.ready.is_set() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.ready.is_set(), outcome
    forget_collection("c")
    paths[0].write_text(paths[0].read_text() + " orbit")
    thread.join(60)
    if thread.is_alive():
        watcher.stop()
        thread.join(10)
        pytest.fail("the watcher kept running after its collection was forgotten")
    assert outcome == [None]
    assert any("was removed (nash forget)" in m and "stopping" in m for m in messages), messages
    assert not home().exists()


def test_a_rebuild_killed_before_its_switch_leaves_it_damaged_then_recovers(
    notes, monkeypatch
) -> None:
    folder, paths = notes
    meta = home() / "meta.sqlite"
    meta.write_bytes(b"")
    real_replace = os.replace

    def crash_at_switch(src, dst, *args, **kwargs):
        if str(dst).endswith("meta.sqlite"):
            raise OSError("simulated crash before the new meta.sqlite is moved in")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", crash_at_switch)
    with pytest.raises(OSError, match="simulated"):
        indexing.index_folder(folder, name="c", bits=8)
    monkeypatch.setattr(os, "replace", real_replace)
    assert "meta.sqlite" in status_entry()["damaged"]  # as damaged as before, no worse
    result = run("index", str(folder), "--name", "c", "--bits", "8")
    assert result.exit_code == 0, result.output
    assert_recovered(folder, paths)
    assert len(list(home().glob("gen-*"))) == 1  # the stray generation of the first try is gone


def test_a_damaged_model_outside_a_collection(notes, tmp_path: Path) -> None:
    import shutil

    from nashcli.pipeline import SemanticHasher

    copy = tmp_path / "model"
    shutil.copytree(home() / "gen-000001" / "model", copy)
    assert SemanticHasher.load(copy, device="cpu").n_bits == 8
    (copy / "model.npz").write_bytes(b"")
    with pytest.raises(NashError, match=r"cannot read .*model\.npz: empty$"):
        SemanticHasher.load(copy, device="cpu")


def test_a_model_whose_weights_do_not_fit_its_settings_says_which(notes, tmp_path: Path) -> None:
    import shutil

    import numpy as np

    from nashcli.pipeline import SemanticHasher

    copy = tmp_path / "model"
    shutil.copytree(home() / "gen-000001" / "model", copy)
    with np.load(copy / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    (name,) = [k for k in arrays if k.startswith("decoder") and k.endswith("weight")]
    arrays[name] = arrays[name][:, :-1]  # one bit short
    np.savez(copy / "model.npz", **arrays)
    with pytest.raises(NashError) as caught:
        SemanticHasher.load(copy, device="cpu")
    message = str(caught.value)
    assert "model.npz: does not match model.json (size mismatch for " + name in message
    assert "\n" not in message


def test_a_lost_meta_sqlite_is_listed_rebuilt_and_forgettable(notes, tmp_path: Path) -> None:
    folder, paths = notes
    meta = home() / "meta.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(meta) + suffix).unlink(missing_ok=True)
    assert status_entry()["name"] == "c" and "meta.sqlite: missing" in status_entry()["damaged"]
    # The folder it indexed was recorded there: another folder named "c" must not take it over.
    stranger = tmp_path / "elsewhere" / "c"
    make_docs(stranger, per_topic=2)
    line = one_error_line(run("index", str(stranger)))
    assert "collection 'c' is damaged (meta.sqlite: missing)" in line and "--name c" in line
    # (not "rebuild it with: nash index STRANGER --name c": that would take it over)
    assert "nash index FOLDER --name c --retrain" in line
    assert f"if it is this one, FOLDER is {stranger}" in line
    for asked in (["--text", "rocket", "-c", "c"], [str(paths[0])], ["--text", "rocket"]):
        line = one_error_line(run("similar", *asked))  # not "no collection named 'c'"
        assert "collection 'c' is damaged (meta.sqlite: missing)" in line, asked
    result = run("index", str(folder), "--name", "c", "--bits", "8")
    assert result.exit_code == 0, result.output
    assert_recovered(folder, paths)
    for suffix in ("", "-wal", "-shm"):
        Path(str(meta) + suffix).unlink(missing_ok=True)
    forgot = run("forget", "c")
    assert forgot.exit_code == 0, forgot.output
    assert not home().exists()


HOLD_THEN_FORGET = """
import time
from nashcli.index import _locked, collections_dir
home = collections_dir() / "c"
with _locked(home, "c", 5):  # what nash forget does: rename the folder away under the lock
    print("held", flush=True)
    time.sleep(1.0)
    home.rename(home.parent / ".forgotten-c-1")
"""


def test_an_update_waiting_for_a_collection_being_forgotten(notes) -> None:
    folder, paths = notes
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THEN_FORGET], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(NashError, match="collection 'c' was removed"):
            indexing.apply_changes("c", upserts=[paths[0]], device="cpu", lock_timeout=20)
    finally:
        holder.wait(timeout=30)
    assert not home().exists()  # not brought back by the waiting writer


def test_a_full_disk_during_a_retrain_is_one_line_and_keeps_the_index(notes, monkeypatch):
    """ENOSPC while the new generation is written: one line naming the file, status 2, no
    half-written generation left behind, and the last good index still answers."""
    import errno

    from nashcli.pipeline import SemanticHasher

    folder, paths = notes
    before = run("similar", str(paths[0]), "--json")
    assert before.exit_code == 0, before.output

    def disk_full(self, directory):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / "model.npz"))

    save = SemanticHasher.save
    monkeypatch.setattr(SemanticHasher, "save", disk_full)
    result = run("index", str(folder), "--retrain")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "No space left on device" in line and "model.npz" in line
    assert sorted(p.name for p in home().iterdir() if p.name.startswith("gen-")) == ["gen-000001"]
    monkeypatch.setattr(SemanticHasher, "save", save)
    after = run("similar", str(paths[0]), "--json")
    assert after.exit_code == 0 and json.loads(after.stdout) == json.loads(before.stdout)


def test_a_full_disk_during_a_compaction_names_the_collection(notes, monkeypatch):
    """A compaction that ran out of room copying the model said only
    ".../gen-000001/model/model.npz: No space left on device", which reads as that file damaged;
    the deletions before it were committed, and the line says so."""
    import errno

    folder, paths = notes
    for path in paths[3:]:
        path.unlink()
    real_copy = shutil.copyfile

    def disk_full(source, target, *args, **kwargs):
        if Path(source).name == "model.npz":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        return real_copy(source, target, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", disk_full)
    line = one_error_line(run("index", str(folder)))
    assert line.startswith("nash: error: cannot change collection 'c': No space left on device")
    assert "free some space (what was committed is kept)" in line
    monkeypatch.setattr(shutil, "copyfile", real_copy)
    assert status_entry()["documents"] == 3  # the deletions stand
    assert run("index", str(folder)).exit_code == 0


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_rebuild_command_of_a_damaged_collection_pastes_back(tmp_path: Path) -> None:
    """Its folder named with a backslash and a newline: the command nash status gives, as text
    and in --json, is that folder when a shell reads it."""
    folder = tmp_path / "a\\n'b\nc"
    make_docs(folder, per_topic=4)
    indexing.index_folder(folder, name="c", bits=8, hasher_options=FAST)
    damage("gen-dir")
    text = run("status").stdout
    for shown in (status_entry()["damaged"], text):
        command = shown.split("nash index ", 1)[1].split(" --name c", 1)[0]
        read = subprocess.run(["bash", "-c", f"printf %s {command}"], capture_output=True)
        assert read.stdout.decode() == str(folder), shown


def test_a_write_error_that_names_no_file_names_the_collection(notes, monkeypatch):
    """`ulimit -f` or a full disk while codes are written: os.write's error has no file name,
    and "nash: error: File too large" alone did not say what could not be written."""
    import errno

    from nashcli import index

    folder, paths = notes

    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    with monkeypatch.context() as patched:  # (undo() would also undo the test's NASH_HOME)
        patched.setattr(index.Writer, "new_generation", too_large)
        line = one_error_line(run("index", str(folder), "--retrain"))
    assert line.startswith("nash: error: cannot change collection 'c': File too large (")
    assert run("similar", str(paths[0]), "--json").exit_code == 0  # the last good index


def test_an_unreadable_disk_is_not_called_damage(notes, monkeypatch) -> None:
    import sqlite3

    from nashcli import index

    def io_error(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(index, "_connect", io_error)
    result = run("status")
    assert result.exit_code == 0
    assert "c: UNREADABLE: cannot read collection 'c' (meta.sqlite: disk I/O error)" in (
        result.stdout
    )
    assert "disk full, read-only or gone" in result.stdout and "DAMAGED" not in result.stdout
    entry = status_entry()
    assert entry["state"] == "unreadable" and "disk I/O error" in entry["damaged"]


def test_a_file_this_user_may_not_read_is_not_called_damage(notes, monkeypatch) -> None:
    """A generation file or model file whose permissions shut this user out (chmod, another
    user's index) is intact: the line says permission denied, not damaged (as root, which
    reads every file, opening them is made to fail as it does for others)."""
    import errno

    import numpy as np

    folder, paths = notes
    refused = {"plane-0.u64", "model.npz"}
    real_memmap, real_open = np.memmap, open

    def denied(path) -> None:
        if Path(path).name in refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def memmap(path, *args, **kwargs):
        denied(path)
        return real_memmap(path, *args, **kwargs)

    def opener(path, *args, **kwargs):
        denied(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(np, "memmap", memmap)
    monkeypatch.setattr("builtins.open", opener)
    line = one_error_line(run("similar", str(paths[0])))
    assert line.startswith("nash: error: cannot read collection 'c': permission denied on ")
    assert "gen-000001/plane-0.u64" in line and "damaged" not in line
    assert f"nash index {folder} --name c --retrain" in line
    entry = status_entry()
    assert entry["state"] == "unreadable" and "permission denied" in entry["damaged"]
    refused.discard("plane-0.u64")  # the codes readable, the model not
    result = run("similar", "--text", "rocket")
    assert "permission denied on gen-000001/model/model.npz" in one_error_line(result)


def test_an_index_of_another_nash_version_is_incompatible(notes) -> None:
    import sqlite3

    con = sqlite3.connect(home() / "meta.sqlite")
    with con:
        con.execute("UPDATE info SET value='999' WHERE key='schema'")
    con.close()
    line = one_error_line(run("similar", "--text", "rocket"))
    assert "written by an incompatible nash version" in line and "nash forget c" in line
    entry = status_entry()
    assert entry["state"] == "incompatible" and "schema 999" in entry["damaged"]
    assert "c: INCOMPATIBLE: " in run("status").stdout


def test_a_collection_forgotten_while_read_is_gone_not_damaged(notes) -> None:
    """nash forget renames the collection's folder first: a reader then found its model files
    missing and said "damaged ... rebuild it with: nash index ... --retrain"."""
    with Collection.open("c").snapshot() as snap:
        os.rename(home(), home().with_name(".forgotten-c-test"))
        with pytest.raises(
            CollectionGoneError, match="removed \\(nash forget\\) while this command was reading"
        ):
            snap.check_model()


def test_a_writer_of_a_collection_forgotten_and_indexed_again_says_so(notes) -> None:
    """A retrain whose collection was forgotten (and indexed again) meanwhile said it "was
    replaced by another nash process meanwhile; try again"."""
    folder, _ = notes
    opened = Collection.open("c")
    forget_collection("c")
    indexing.index_folder(folder, name="c", bits=8, hasher_options=FAST)
    expected = "was forgotten or rebuilt by another nash process"
    with pytest.raises(IndexBusyError, match=expected), opened.writer():
        pass


def test_a_rebuild_killed_between_its_two_renames_is_finished_not_lost(notes) -> None:
    """Rebuilding a collection that lost its meta.sqlite renames the damaged folder away, then
    the rebuild into place: a kill between the two left no collection ("no collections yet"),
    and the next create deleted the finished rebuild with the rest."""
    folder, paths = notes
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = child.pid  # (a process that ran the rebuild and is gone)
    base = collections_dir()
    shutil.copytree(home(), base / f".new-c-{dead}")  # the finished rebuild
    os.rename(home(), base / f".forgotten-c-{dead}")  # the first rename, then the kill
    assert Collection.open("c").summary()["documents"] == len(paths)  # (opened by name first)
    assert [c.name for c in list_collections()] == ["c"]
    assert Collection.open("c").summary()["documents"] == len(paths)
    assert not list(base.glob(f".new-c-{dead}"))
