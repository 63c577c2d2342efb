"""The on-disk index: generations, appends, tombstones, snapshots, the writer lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nashcli import codes
from nashcli.errors import IndexBusyError, NashError
from nashcli.index import Collection, DocMeta, list_collections, name_for_folder


def _save_model(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"fake": True}))


def _rows(n: int, bits: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    b = rng.random((n, bits)) < 0.5
    tfidf = sp.random(n, 30, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    return b, codes.pack_codes(b), tfidf


def _metas(names, root="/r"):
    return [DocMeta(f"{root}/{n}", 10, 1, f"h{n}", f"title {n}") for n in names]


def test_generation_append_tombstone_roundtrip(tmp_path: Path) -> None:
    col = Collection.create("notes", tmp_path, 64)
    assert [c.name for c in list_collections()] == ["notes"]
    bits, words, tfidf = _rows(5)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcde"), method="m", trained_docs=5)
    with col.snapshot() as snap:
        assert snap.rows == 5 and snap.documents == 5
        np.testing.assert_array_equal(codes.unpack_codes(snap.codes_of(range(5)), 64), bits)
        np.testing.assert_allclose(snap.tfidf_of([3, 1]).toarray(), tfidf[[3, 1]].toarray())
        assert (snap.model_dir / "config.json").is_file()
    more_bits, more_words, more_tfidf = _rows(3, seed=1)
    with col.writer() as w:
        w.tombstone([1])
        w.append(more_words, more_tfidf, _metas("fgh"))
        w.commit()
    with col.snapshot() as snap:
        assert snap.rows == 8 and snap.documents == 7
        assert snap.dead_rows.tolist() == [1]
        assert snap.doc_by_path("/r/b") is None
        assert snap.doc_by_path("/r/g").row == 6
        np.testing.assert_array_equal(codes.unpack_codes(snap.codes_of([5, 6, 7]), 64), more_bits)
        np.testing.assert_allclose(snap.tfidf_of([6]).toarray(), more_tfidf[[1]].toarray())
    assert col.summary()["documents"] == 7


def test_uncommitted_rows_are_invisible_and_overwritten(tmp_path: Path) -> None:
    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(4)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcd"), method="m", trained_docs=4)
    _, junk, junk_tfidf = _rows(2, seed=5)
    with col.writer() as w:  # bytes written, transaction never committed (as after a kill)
        w.append(junk, junk_tfidf, _metas("xy"))
        w.rollback()
    with col.snapshot() as snap:
        assert snap.rows == 4 and snap.doc_by_path("/r/x") is None
    bits, good, good_tfidf = _rows(2, seed=6)
    with col.writer() as w:
        w.append(good, good_tfidf, _metas("pq"))
        w.commit()
    with col.snapshot() as snap:
        np.testing.assert_array_equal(codes.unpack_codes(snap.codes_of([4, 5]), 64), bits)
        np.testing.assert_allclose(snap.tfidf_of([4, 5]).toarray(), good_tfidf.toarray())


def test_old_snapshot_survives_a_new_generation(tmp_path: Path) -> None:
    col = Collection.create("c", tmp_path, 64)
    bits, words, tfidf = _rows(4)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcd"), method="m", trained_docs=4)
    reader = col.snapshot()
    _, words2, tfidf2 = _rows(6, seed=3)
    with col.writer() as w:
        w.new_generation(_save_model, words2, tfidf2, _metas("uvwxyz"), method="m", trained_docs=6)
    # The old generation's files are unlinked, but the reader's maps and rows stay valid.
    np.testing.assert_array_equal(codes.unpack_codes(reader.codes_of(range(4)), 64), bits)
    assert reader.doc_by_path("/r/a") is not None
    reader.close()
    with col.snapshot() as snap:
        assert snap.rows == 6 and snap.doc_by_path("/r/a") is None
    assert len(list(col.directory.glob("gen-*"))) == 1


def test_compaction_drops_tombstones_keeps_codes(tmp_path: Path) -> None:
    col = Collection.create("c", tmp_path, 128)
    bits, words, tfidf = _rows(6, bits=128)
    with col.writer() as w:
        # Fitted on the first 4 rows; e and f were encoded after it.
        w.new_generation(_save_model, words, tfidf, _metas("abcdef"), method="m", trained_docs=4)
        w.tombstone([0, 2, 3])
        w.commit()
        w.compact()
    with col.snapshot() as snap:
        assert snap.rows == 3 and len(snap.dead_rows) == 0
        # b is what is left of the training rows: rows − trained_docs still counts e and f as
        # encoded since the fit (the retrain policy reads it).
        assert snap.trained_docs == 1 and snap.rows - snap.trained_docs == 2
        assert [d.path for d in snap.live_docs()] == ["/r/b", "/r/e", "/r/f"]
        np.testing.assert_array_equal(
            codes.unpack_codes(snap.codes_of(range(3)), 128), bits[[1, 4, 5]]
        )
        np.testing.assert_allclose(snap.tfidf_of([1]).toarray(), tfidf[[4]].toarray())
        assert (snap.model_dir / "config.json").is_file()


def test_compaction_keeps_the_length_another_process_switched_to(tmp_path: Path) -> None:
    """A writer that opened the collection at 64 bits compacts after another process retrained
    it at 128 (while the first waited for the lock): the compacted generation is 128 bits, as
    its model is. It was recorded as 64, and every query then failed with a traceback."""
    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(6, bits=64)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcdef"), method="m", trained_docs=6)
    opened_before = Collection.open("c")
    bits128, words128, tfidf128 = _rows(6, bits=128, seed=2)
    with col.writer() as w:  # the other process: nash index --bits 128 --retrain
        w.new_generation(
            _save_model, words128, tfidf128, _metas("abcdef"), method="m", trained_docs=6, bits=128
        )
    with opened_before.writer() as w:
        w.tombstone([0, 1, 2, 3])
        w.commit()
        w.compact()
    assert Collection.open("c").bits == 128 and opened_before.bits == 128
    with col.snapshot() as snap:
        assert snap.bits == 128 and snap.rows == 2
        np.testing.assert_array_equal(
            codes.unpack_codes(snap.codes_of(range(2)), 128), bits128[[4, 5]]
        )


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names fds through /proc")
def test_a_new_generations_model_is_on_disk_before_it_becomes_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power lost after the switch must not leave the only generation with empty model files:
    every file of the new generation, and its folders, are fsynced before the rename and the
    commit (the model's were not)."""
    from nashcli import index

    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def rename(src, dst) -> None:
        events.append(f"rename {src}")
        real_rename(src, dst)

    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(3)
    monkeypatch.setattr(index.os, "fsync", fsync)
    monkeypatch.setattr(index.os, "rename", rename)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abc"), method="m", trained_docs=3)
    tmp = str(col.directory / "gen-000001.tmp")
    switched = events.index(f"rename {tmp}")
    synced = {e.removeprefix("fsync ") for e in events[:switched] if e.startswith("fsync ")}
    assert {f"{tmp}/model/config.json", f"{tmp}/model", tmp} <= synced


def test_a_full_disk_during_a_compaction_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from nashcli import index

    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(4)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcd"), method="m", trained_docs=4)

    def full(src, dst, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(index.shutil, "copyfile", full)
    with col.writer() as w:
        w.tombstone([0, 1, 2])
        w.commit()
        with pytest.raises(OSError) as caught:
            w.compact()
    assert type(caught.value) is OSError and "No space left" in str(caught.value)
    with col.snapshot() as snap:
        assert snap.generation == 1 and snap.documents == 1
    assert sorted(p.name for p in col.directory.glob("gen-*")) == ["gen-000001"]


def test_sqlite_finding_the_disk_full_is_a_write_that_may_pass(tmp_path: Path) -> None:
    """SQLite's own "database or disk is full" (here: its page limit, as a full disk gives it)
    left the writer as a bare error that named no collection, and a watcher took it for one to
    stop on; it is an IndexWriteError, which a watcher waits out, and what was committed is kept."""
    from nashcli.errors import IndexWriteError

    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(4)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcd"), method="m", trained_docs=4)
    _, more_words, more_tfidf = _rows(3000)
    with pytest.raises(IndexWriteError) as caught, col.writer() as w:
        pages = w._con.execute("PRAGMA page_count").fetchone()[0]
        w._con.execute(f"PRAGMA max_page_count={pages}")
        w.append(more_words, more_tfidf, _metas([f"n{i}" for i in range(3000)]))
        w.commit()
    message = str(caught.value)
    assert message.startswith("cannot change collection 'c': meta.sqlite: database or disk is full")
    assert message.endswith("; free some space (what was committed is kept)")
    with col.snapshot() as snap:
        assert snap.documents == 4


def test_sqlite_failing_to_open_on_a_full_disk_is_a_write_that_may_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a full disk SQLite cannot make its -shm file and says "disk I/O error": a watcher
    stopped for good on it; it waits it out as any full disk (IndexWriteError)."""
    import sqlite3

    from nashcli import index
    from nashcli.errors import IndexWriteError

    col = Collection.create("c", tmp_path, 64)

    def full(path, *, create=False):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(index, "_connect", full)
    opened = r"cannot change collection 'c': meta.sqlite: disk I/O error \("
    with pytest.raises(IndexWriteError, match=opened), col.writer():
        pass
    with pytest.raises(IndexWriteError, match="cannot create collection 'd': meta.sqlite: disk"):
        Collection.create("d", tmp_path, 64)
    assert sorted(p.name for p in index.collections_dir().iterdir()) == ["c"]  # no .new-d-PID


def test_a_full_disk_when_taking_the_writer_lock_is_a_write_that_may_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file cannot be made on a full disk: a watcher waits that out too."""
    import errno

    import filelock

    from nashcli.errors import IndexWriteError

    col = Collection.create("c", tmp_path, 64)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(filelock.FileLock, "acquire", full)
    said = "No space left on device .*; free some space"
    with pytest.raises(IndexWriteError, match=said), col.writer():
        pass


def test_a_training_pid_file_left_by_a_killed_run_names_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its pid may run again as another program: with the training lock free, nobody trains."""
    from nashcli import index

    lock_file, holder_file = index._training_files("c")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.touch()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder_file.write_text(json.dumps({"pid": sleeper.pid, "command": "nash index x"}))
        assert index.training_holder("c") is None
        with index.training_turn("c", on_wait=print):
            holder_file.write_text(json.dumps({"pid": sleeper.pid, "command": "nash index x"}))
            assert index.training_holder("c") == (
                f"another nash process (pid {sleeper.pid}: nash index x)"
            )
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_holder_file_that_cannot_be_written_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nashcli import index

    def full(src, dst) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index.os, "replace", full)
    index._write_holder(tmp_path / "writer.pid")
    assert list(tmp_path.iterdir()) == []


def test_debris_of_killed_runs_is_swept_whatever_collection_it_was(tmp_path: Path) -> None:
    """A killed `nash forget` or rebuild leaves a whole copy of an index (`.forgotten-NAME-PID`,
    `.new-NAME-PID`); the next creation of any collection removes those of dead processes."""
    from nashcli.index import collections_dir

    Collection.create("notes", tmp_path, 64)
    base = collections_dir()
    dead = [base / ".forgotten-old-notes-999999999", base / ".new-my-docs-999999998"]
    alive = base / f".new-busy-{os.getppid()}"  # its process still runs: being built
    for d in [*dead, alive]:
        (d / "gen-000001").mkdir(parents=True)
    Collection.create("other", tmp_path / "other", 64)
    assert not any(d.exists() for d in dead) and alive.exists()
    assert [c.name for c in list_collections()] == ["notes", "other"]


def test_second_writer_gets_index_busy(tmp_path: Path) -> None:
    col = Collection.create("c", tmp_path, 64)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; "
            "l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(30)",
            str(col.directory / "writer.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(IndexBusyError, match="busy"), col.writer(timeout=0.2):
            pass
        with col.snapshot() as snap:  # readers never wait
            assert snap.rows == 0
    finally:
        holder.kill()
        holder.wait()
    with col.writer(timeout=5):
        pass


def test_open_unknown_and_bad_names(tmp_path: Path) -> None:
    Collection.create("alpha", tmp_path, 64)
    with pytest.raises(NashError, match="no collection named 'beta'.*alpha"):
        Collection.open("beta")
    with pytest.raises(NashError, match="invalid collection name"):
        Collection.create("../evil", tmp_path, 64)
    with pytest.raises(NashError, match="already exists"):
        Collection.create("alpha", tmp_path, 64)
    assert name_for_folder(Path("/x/My Notes!")) == "My-Notes"


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("/x/My Notes!", "My-Notes"),
        ("/x/_posts", "posts"),  # Jekyll's folder: a name may not start with "_"
        ("/x/Ünïcödé Notes", "Unicode-Notes"),
        ("/x/résumé.", "resume"),
        ("/x/Straße Øvelser Łódź", "Strasse-Ovelser-Lodz"),
        ("/", "root"),
    ],
)
def test_a_folders_name_becomes_a_valid_collection_name(folder: str, name: str) -> None:
    assert name_for_folder(Path(folder)) == name
    Collection.create(name, Path(folder), 64)  # valid


def test_folders_named_without_latin_letters_get_names_of_their_own() -> None:
    first, second = name_for_folder(Path("/x/文件")), name_for_folder(Path("/y/文件"))
    assert first.startswith("folder-") and second.startswith("folder-") and first != second
    assert first == name_for_folder(Path("/x/文件"))  # the same folder, the same name


def test_remove_deletes_the_index_only(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    col = Collection.create("c", tmp_path, 64)
    col.remove()
    assert list_collections() == []
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert not any(p.name.startswith(".forgotten") for p in col.directory.parent.iterdir())


def test_crash_leftovers_are_collected(tmp_path: Path) -> None:
    col = Collection.create("c", tmp_path, 64)
    _, words, tfidf = _rows(2)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("ab"), method="m", trained_docs=2)
    stray = col.directory / "gen-000009.tmp"
    stray.mkdir()
    (stray / "plane-0.u64").write_bytes(os.urandom(64))
    with col.writer():
        pass
    assert not stray.exists()
    with col.snapshot() as snap:
        assert snap.rows == 2


def test_tombstones_are_read_through_an_index_which_older_collections_get(tmp_path: Path) -> None:
    """Every snapshot reads the generation's tombstoned rows as it opens; without an index that
    read visits every row (13 ms at 100,000 documents). A collection made before the index
    existed gets it from its next writer, and still reads the same dead rows."""
    import sqlite3

    col = Collection.create("notes", tmp_path, 64)
    _, words, tfidf = _rows(5)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcde"), method="m", trained_docs=5)
        w.tombstone([1, 3])
        w.commit()
    meta = col.directory / "meta.sqlite"

    def plan() -> str:
        with sqlite3.connect(meta) as con:
            found = con.execute(
                "EXPLAIN QUERY PLAN SELECT row FROM docs WHERE gen=1 AND live=0"
            ).fetchall()
        return " ".join(str(step[-1]) for step in found)

    assert "docs_dead" in plan()
    with sqlite3.connect(meta) as con:  # as a collection made before the index
        con.execute("DROP INDEX docs_dead")
    assert "docs_dead" not in plan()
    with Collection.open("notes").snapshot() as snap:  # a reader does without it
        assert snap.dead_rows.tolist() == [1, 3]
    with Collection.open("notes").writer():
        pass
    assert "docs_dead" in plan()
    with Collection.open("notes").snapshot() as snap:
        assert snap.dead_rows.tolist() == [1, 3] and snap.documents == 3


def test_codes_pack_refuses_other_values_and_unpacks_nothing():
    with pytest.raises(ValueError, match="0/1"):
        codes.pack_codes(np.array([[1, -1, 1, -1]]))
    assert codes.pack_codes(np.array([[1, 0, 1]], dtype=np.int8)).shape == (1, 1)
    assert codes.unpack_codes(codes.pack_codes(np.zeros((0, 20), bool)), 20).shape == (0, 20)
    with pytest.raises(ValueError, match="do not fit"):
        codes.unpack_codes(codes.pack_codes(np.zeros((2, 8), bool)), 100)


def test_a_snapshot_reads_stored_vectors_as_scattered_and_checks_them_in_order(
    tmp_path: Path, monkeypatch
) -> None:
    """A query reads its pool's rows here and there: with the kernel's read-ahead around
    each, a cold query of a million documents read both tf-idf files whole (2 × 156 MB for
    5 MB of rows; benchmarks/cold_query.py). The full check reads them in order."""
    from nashcli import index

    advised: list[tuple[str, str]] = []
    real = index._advise
    monkeypatch.setattr(
        index,
        "_advise",
        lambda m, a: advised.append((os.path.basename(m.filename), a)) or real(m, a),
    )
    col = Collection.create("notes", tmp_path, 64)
    _, words, tfidf = _rows(5)
    with col.writer() as w:
        w.new_generation(_save_model, words, tfidf, _metas("abcde"), method="m", trained_docs=5)
    with col.snapshot() as snap:
        assert sorted(advised) == [("tfidf.data", "MADV_RANDOM"), ("tfidf.indices", "MADV_RANDOM")]
        np.testing.assert_allclose(snap.tfidf_of([3]).toarray(), tfidf[[3]].toarray())
        snap.check_values()
        assert {a for _, a in advised[2:]} == {"MADV_SEQUENTIAL"}


def test_a_collection_forgotten_under_a_reader_says_it_was_reading(tmp_path: Path) -> None:
    """A `nash similar` or `nash status` whose collection `nash forget` renamed away said
    "... while this command was using it; nothing more was written", as if it wrote."""
    from nashcli.index import CollectionGoneError

    col = Collection.create("c", tmp_path, 64)
    away = col.directory.with_name(".forgotten-c-1")
    col.directory.rename(away)
    with pytest.raises(CollectionGoneError) as caught:
        col.summary()
    assert str(caught.value).endswith("while this command was reading it")


def test_a_forget_killed_midway_is_swept_up_when_asked_again(tmp_path: Path) -> None:
    """`kill -9` of `nash forget r1` after its first step left `.forgotten-r1-PID`, a whole copy
    of the index, which `nash forget r1` again ("no collection named 'r1'") left too."""
    from nashcli.index import forget_collection
    from nashcli.paths import collections_dir

    col = Collection.create("r1", tmp_path, 64)
    dead = 2**22 + 12345  # (no such process)
    col.directory.rename(collections_dir() / f".forgotten-r1-{dead}")
    with pytest.raises(NashError, match="no collection named 'r1'"):
        forget_collection("r1")
    assert [p.name for p in collections_dir().iterdir() if p.name.startswith(".")] == []
