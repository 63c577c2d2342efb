"""`index_folder` / `apply_changes`: incremental updates, skips with reasons, never a lost file."""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nashcli import corpus, documents, index, indexing
from nashcli.errors import IndexBusyError, NashError
from nashcli.index import Collection, list_collections
from nashcli.indexing import apply_changes, due_for_retrain, index_folder, retrain_due

FAST = {"max_epochs": 3}

TOPICS = {
    "space": "rocket orbit launch nasa shuttle moon satellite astronaut payload mission",
    "cooking": "recipe flour butter oven bake sugar dough garlic onion simmer",
    "cars": "engine brake tire gearbox clutch fuel mileage dealer sedan wheel",
}


def make_docs(folder: Path, per_topic: int = 8, seed: int = 0) -> list[Path]:
    """Short documents on three topics, one file each, in topic sub-folders."""
    rng = random.Random(seed)
    paths = []
    for topic, words in TOPICS.items():
        vocab = words.split()
        (folder / topic).mkdir(parents=True, exist_ok=True)
        for i in range(per_topic):
            path = folder / topic / f"{topic}-{i}.txt"
            path.write_text(f"{topic} note {i}\n" + " ".join(rng.choice(vocab) for _ in range(40)))
            paths.append(path)
    return paths


def live_paths(name: str) -> set[str]:
    with Collection.open(name).snapshot() as snap:
        return {d.path for d in snap.live_docs()}


def bump(path: Path) -> None:
    """Give ``path`` a new mtime (file systems with coarse timestamps need the nudge)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def run_fresh(code: str, watched: set[str]) -> tuple[str, list[str]]:
    """Run ``code`` in a new interpreter: (what it printed, which of the ``watched`` top-level
    packages it imported), for tests of what a command costs to start."""
    probe = (
        f"{code}\nimport sys; print(sorted({{m.split('.')[0] for m in sys.modules}} & {watched!r}))"
    )
    lines = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return "\n".join(lines[:-1]).strip(), ast.literal_eval(lines[-1])


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "notes"
    paths = make_docs(folder)
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and report.added == len(paths) and report.documents == len(paths)
    return folder, paths


def test_first_index_stores_every_document(indexed) -> None:
    folder, paths = indexed
    assert live_paths("notes") == {str(p) for p in paths}
    summary = Collection.open("notes").summary()
    assert summary["bits"] == 64 and summary["root"] == str(folder)
    assert summary["model"]


def test_unchanged_files_are_neither_read_nor_encoded(indexed, monkeypatch) -> None:
    folder, paths = indexed

    def no_reading(path, *args, **kwargs):
        raise AssertionError(f"read {path}")

    def no_document_opened(path, *args, **kwargs):
        if path == corpus._MOUNTINFO:  # which devices are /proc and /sys: no document
            return open(path, *args, **kwargs)
        raise AssertionError(f"opened {path}")

    monkeypatch.setattr(corpus, "open", no_document_opened, raising=False)  # not even sniffed
    monkeypatch.setattr(documents, "open", no_document_opened, raising=False)
    monkeypatch.setattr(documents, "read_document", no_reading)
    monkeypatch.setattr(documents, "content_hash", no_reading)
    monkeypatch.setattr(indexing, "_load_hasher", no_reading)
    report = index_folder(folder)
    assert (report.unchanged, report.added, report.updated, report.deleted) == (len(paths), 0, 0, 0)
    assert not report.retrained


@pytest.mark.parametrize("touch_all", [False, True])
def test_changes_are_applied_incrementally(indexed, monkeypatch, touch_all: bool) -> None:
    """... whether the plan reads the rows of the few files that changed or went, or (most of
    them did, ``touch_all``) every row at once."""
    folder, paths = indexed
    changed, touched, deleted, moved = paths[0], paths[1], paths[2], paths[3]
    changed.write_text("rocket rocket engine brake completely different text now")
    bump(changed)
    for path in paths[4:] if touch_all else []:
        bump(path)
    if touch_all:
        monkeypatch.setattr(index.Writer, "live_docs_at", lambda *a: pytest.fail("row by row"))
    bump(touched)  # new mtime, same bytes: no re-encoding
    deleted.unlink()
    new = folder / "space" / "new.txt"
    new.write_text("moon orbit launch rocket new note")
    target = folder / "cars" / "moved-here.txt"
    moved.rename(target)
    reads = []
    real = documents.read_document
    monkeypatch.setattr(documents, "read_document", lambda p: reads.append(Path(p)) or real(p))
    report = index_folder(folder)
    assert not report.retrained
    assert (report.added, report.updated, report.moved, report.deleted) == (1, 1, 1, 1)
    assert sorted(reads) == sorted([changed, new])  # the touched and moved files: hash only
    expected = {str(p) for p in paths} - {str(deleted), str(moved)} | {str(new), str(target)}
    assert live_paths("notes") == expected


def test_retrain_policy() -> None:
    assert due_for_retrain(0, 1)
    assert not due_for_retrain(100, 24) and due_for_retrain(100, 25)
    big = indexing.SMALL_COLLECTION
    assert not due_for_retrain(big, int(big * indexing.RETRAIN_GROWTH) - 1)
    assert due_for_retrain(big, int(big * indexing.RETRAIN_GROWTH))


def test_growth_triggers_a_retrain(indexed) -> None:
    folder, paths = indexed
    assert not retrain_due(Collection.open("notes"))
    more = make_docs(folder / "more", per_topic=3, seed=1)  # 9 new on 24: over a quarter
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and "changed by 9" in report.retrain_reason
    assert report.added == len(more) and report.unchanged == len(paths)
    assert live_paths("notes") == {str(p) for p in paths + more}
    assert not retrain_due(Collection.open("notes"))


def test_a_retrain_stopped_midway_keeps_the_update_it_made_due(indexed, monkeypatch) -> None:
    """New files that make a retrain due are committed with the model there first: a retrain
    killed midway (a cron job's timeout) kept none of them, and so on every run."""
    folder, paths = indexed
    more = make_docs(folder / "more", per_topic=3, seed=1)  # 9 new on 24: a retrain is due

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(indexing, "_retrain", stopped)
        index_folder(folder, hasher_options=FAST)
    assert live_paths("notes") == {str(p) for p in paths + more}
    assert retrain_due(Collection.open("notes"))  # (the next run retrains)
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and "changed by 9" in report.retrain_reason
    assert (report.added, report.unchanged) == (0, len(paths + more))


def test_touched_or_moved_files_do_not_count_towards_a_retrain(indexed) -> None:
    """A touch of every file (git checkout, cp without -p) or a reshuffle of folders changes
    no document: no retrain, no re-encoding, only a growth that is real counts."""
    folder, paths = indexed
    for path in paths:
        bump(path)
    report = index_folder(folder, hasher_options=FAST)
    assert not report.retrained and report.unchanged == len(paths) and report.updated == 0
    (folder / "moved").mkdir()
    for path in paths[:12]:  # half of them to another folder, with new mtimes too
        path.rename(folder / "moved" / path.name)
        bump(folder / "moved" / path.name)
    paths[12].write_text("a rewritten note about rockets and orbits")
    report = index_folder(folder, hasher_options=FAST)
    assert not report.retrained, report.retrain_reason
    assert report.moved == 12 and report.updated == 1
    for n in range(6):  # 7 documents encoded since the model was fitted on 24: over a quarter
        (folder / f"new-{n}.txt").write_text(f"new note {n} about engines, brakes and tires")
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and "changed by 7 documents" in report.retrain_reason


def test_files_skipped_when_read_do_not_retrain_on_every_run(indexed) -> None:
    folder, paths = indexed
    for n in range(7):  # 7 on 24 would be over a quarter, but they hold no text to index
        (folder / f"script-{n}.html").write_text(f"<html><script>var n = {n};</script></html>")
    for _ in range(2):
        report = index_folder(folder, hasher_options=FAST)
        assert not report.retrained, report.retrain_reason
        assert report.unchanged == len(paths) and len(report.skipped) == 7


def test_growth_after_deletions_and_a_compaction_still_retrains(indexed) -> None:
    folder, paths = indexed
    for path in paths[:16]:
        path.unlink()
    report = index_folder(folder, hasher_options=FAST)
    assert report.compacted and not report.retrained and report.documents == 8
    more = make_docs(folder / "more", per_topic=1, seed=3)  # 3 on the model's 8 left
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and report.retrain_reason == (  # (not "trained with 8 in it")
        "the collection changed by 3 documents since the model was trained "
        "(8 of the documents it was trained on are still in it)"
    )
    assert report.documents == 8 + len(more)


def test_a_folder_indexed_already_is_not_indexed_again_under_another_name(indexed) -> None:
    folder, _ = indexed
    with pytest.raises(NashError, match="already indexed as collection 'notes'.*nash forget"):
        index_folder(folder, name="other", hasher_options=FAST)
    assert [c.name for c in list_collections()] == ["notes"]


def test_two_first_indexes_of_one_folder_under_two_names_make_one_collection(
    tmp_path: Path, monkeypatch
) -> None:
    """The second run looked before the first had created its collection (both crawl and
    train before they write): it must not make a second collection of the folder."""
    from nashcli import corpus
    from nashcli.index import Collection

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=2)
    real_crawl = corpus.crawl

    def crawl_while_another_run_creates(*args, **kwargs):
        if not Collection.exists("other"):
            Collection.create("other", folder, 64)  # the other `nash index --name other`
        return real_crawl(*args, **kwargs)

    monkeypatch.setattr(corpus, "crawl", crawl_while_another_run_creates)
    with pytest.raises(NashError, match="just indexed as collection 'other'"):
        index_folder(folder, hasher_options=FAST)
    assert [c.name for c in list_collections()] == ["other"]


def test_a_file_emptied_or_made_binary_leaves_the_index(indexed) -> None:
    """Its old entry would keep answering queries with text the file no longer holds (files
    that cannot be read now, by contrast, keep theirs)."""
    folder, paths = indexed
    paths[0].write_text("")
    paths[1].write_bytes(b"abc\x00def binary now")
    paths[2].write_text("\n")  # "emptied" by an editor that keeps a final newline
    paths[3].write_bytes(b"\xef\xbb\xbf")  # ... or a byte-order mark
    report = index_folder(folder, hasher_options=FAST)
    assert report.deleted == 4
    assert not {str(p) for p in paths[:4]} & live_paths("notes")
    assert dict(report.skipped)[str(paths[0].relative_to(folder))] == "empty file"


def replace_with_no_documents(paths: list[Path]) -> list[Path]:
    """Replace four indexed files by a symlink to another one, a dangling symlink, a pipe and a
    folder; return the four paths."""
    replaced = paths[:4]
    for path in replaced:
        path.unlink()
    replaced[0].symlink_to(paths[5])
    replaced[1].symlink_to(paths[0].parent / "nowhere.txt")
    os.mkfifo(replaced[2])
    replaced[3].mkdir()
    return replaced


def test_a_file_replaced_by_a_symlink_a_pipe_or_a_folder_leaves_the_index(indexed) -> None:
    """Nothing at those paths is a document now; an index that kept them would answer with
    text no file there holds (and a symlink is never followed, so never indexed)."""
    folder, paths = indexed
    replaced = replace_with_no_documents(paths)
    report = index_folder(folder, hasher_options=FAST)
    assert report.deleted == 4 and report.documents == len(paths) - 4
    assert not {str(p) for p in replaced} & live_paths("notes")
    reasons = dict(report.skipped)
    assert reasons[str(replaced[0].relative_to(folder))] == "symlink to a file, not followed"
    assert reasons[str(replaced[1].relative_to(folder))] == "dangling symlink"
    assert reasons[str(replaced[2].relative_to(folder))] == "not a regular file"


def test_apply_changes_drops_a_file_replaced_by_a_symlink_a_pipe_or_a_folder(indexed) -> None:
    folder, paths = indexed
    replaced = replace_with_no_documents(paths)
    moved_onto_link = folder / "moved.txt"
    moved_onto_link.symlink_to(paths[6])
    report = apply_changes("notes", upserts=replaced, moves=[(paths[7], moved_onto_link)])
    assert report.deleted == 5 and report.added == 0
    gone = {str(p) for p in [*replaced, paths[7], moved_onto_link]}
    assert live_paths("notes") == {str(p) for p in paths} - gone


def test_a_lower_max_size_drops_the_files_now_over_it(indexed) -> None:
    folder, paths = indexed
    big = folder / "space" / "long.txt"
    big.write_text("rocket orbit launch nasa shuttle moon " * 100)  # 3.8 KB
    report = index_folder(folder, max_bytes=10_000, hasher_options=FAST)
    assert report.added == 1 and str(big) in live_paths("notes")
    report = index_folder(folder, max_bytes=2_000, hasher_options=FAST)
    assert report.deleted == 1 and str(big) not in live_paths("notes")
    assert any("--max-size" in reason for _, reason in report.skipped)
    assert report.unchanged == len(paths)


def test_a_remembered_max_size_does_not_make_an_idle_run_an_update(indexed) -> None:
    """`nash status` shows when a collection last changed: a run that changes nothing must not
    move it (recording the same limit again is no change)."""
    from nashcli.index import Collection

    folder, _ = indexed
    index_folder(folder, max_bytes=50_000, hasher_options=FAST)
    before = Collection.open("notes").summary()["updated_at"]
    time.sleep(0.05)
    index_folder(folder, hasher_options=FAST)
    index_folder(folder, max_bytes=50_000, hasher_options=FAST)
    assert Collection.open("notes").summary()["updated_at"] == before


def test_the_max_size_given_once_holds_for_later_runs_and_the_watcher(indexed) -> None:
    """`nash index F --max-size 2KB` then a plain `nash index F` (or `nash watch F`) must not
    bring back, or with a larger limit drop, the files the user chose to leave out."""
    from nashcli import watching
    from nashcli.index import Collection

    folder, paths = indexed
    big = folder / "space" / "long.txt"
    big.write_text("rocket orbit launch nasa shuttle moon " * 100)  # 3.8 KB
    index_folder(folder, max_bytes=2_000, hasher_options=FAST)
    report = index_folder(folder, hasher_options=FAST)  # no --max-size: the last one holds
    assert report.added == 0 and str(big) not in live_paths("notes")
    assert any("--max-size" in reason for _, reason in report.skipped)
    assert Collection.open("notes").max_bytes == 2_000
    watcher = watching.make_watcher(folder, "notes", device="cpu")
    refusal = watcher._admit(big)
    assert "--max-size" in refusal.reason and refusal.excluded
    report = index_folder(folder, max_bytes=10_000, hasher_options=FAST)
    assert report.added == 1 and str(big) in live_paths("notes")
    time.sleep(1.1)  # the watcher reads the limit again at most once a second
    assert watcher._admit(big) is None


def test_retrain_flag_and_bits(indexed) -> None:
    folder, paths = indexed
    with pytest.raises(NashError, match="uses 64-bit codes.*--retrain"):
        index_folder(folder, bits=32)
    report = index_folder(folder, bits=32, retrain=True, hasher_options=FAST)
    assert report.retrained and report.retrain_reason == "--retrain"
    assert Collection.open("notes").bits == 32
    assert live_paths("notes") == {str(p) for p in paths}


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    paths = make_docs(folder, per_topic=4)
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02 binary \x00" * 100)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("   \n\n")
    (folder / "undecodable.txt").write_bytes(bytes(range(128, 256)) * 40)
    (folder / "dangling.txt").symlink_to(folder / "nowhere.txt")
    (folder / "loop").symlink_to(folder / "loop")
    big = folder / "big.txt"
    with open(big, "w") as f:
        line = "a big text file line with words in it\n"
        f.write(line * (50_000_000 // len(line) + 1))
    report = index_folder(folder, hasher_options=FAST)
    reasons = dict(report.skipped)
    for name in ("binary.txt", "empty.txt", "blank.txt", "dangling.txt", "loop", "big.txt"):
        assert name in reasons, (name, report.skipped)
    assert "larger" in reasons["big.txt"] or "MB" in reasons["big.txt"]
    indexed_paths = live_paths("mixed")
    assert {str(p) for p in paths} <= indexed_paths  # nothing readable lost
    assert str(big) not in indexed_paths and str(folder / "binary.txt") not in indexed_paths
    # The undecodable file is either read by charset detection or skipped, never an error.
    assert str(folder / "undecodable.txt") in indexed_paths or "undecodable.txt" in reasons


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    paths = make_docs(folder, per_topic=3)
    secret = folder / "secret.txt"
    secret.write_text("top secret words")
    secret.chmod(0)
    report = index_folder(folder, hasher_options=FAST)
    assert "secret.txt" in dict(report.skipped)
    assert live_paths("locked") == {str(p) for p in paths}


def test_read_errors_and_vanishing_files_lose_nothing(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "flaky"
    paths = make_docs(folder, per_topic=4)
    denied, vanishing = paths[0], paths[1]
    real_crawl, real_read = corpus.crawl, documents.read_document

    def crawl_then_vanish(root, **kw):
        for item in real_crawl(root, **kw):
            yield item
            if item.path == vanishing:
                vanishing.unlink()  # gone between the crawl and the read

    def read(path):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(corpus, "crawl", crawl_then_vanish)
    monkeypatch.setattr(documents, "read_document", read)
    report = index_folder(folder, hasher_options=FAST)
    reasons = dict(report.skipped)
    assert reasons[str(denied.relative_to(folder))] == "permission denied"
    assert (
        "vanished" in reasons[str(vanishing.relative_to(folder))]
        or "no such" in reasons[str(vanishing.relative_to(folder))]
    )
    assert live_paths("flaky") == {str(p) for p in paths[2:]}
    # A later failure to read an indexed, changed file keeps its last good entry.
    monkeypatch.setattr(corpus, "crawl", real_crawl)
    paths[2].write_text("changed but unreadable now")
    bump(paths[2])
    denied = paths[2]
    report = index_folder(folder)
    assert str(paths[2]) in live_paths("flaky")
    assert dict(report.skipped)[str(paths[2].relative_to(folder))] == "permission denied"
    # ... but not through a retrain (its code is the old model's, its text cannot be read):
    # it leaves, and the summary counts it as left out unread (the file is there), rather
    # than dropping it silently or calling it removed.
    before = len(live_paths("flaky"))
    report = index_folder(folder, retrain=True, hasher_options=FAST)
    assert str(paths[2]) not in live_paths("flaky")
    assert (report.deleted, report.dropped_unread) == (0, 1)
    assert report.documents == before - 1
    assert dict(report.skipped)[str(paths[2].relative_to(folder))] == "permission denied"


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(NashError, match="no such folder"):
        index_folder(tmp_path / "missing")
    for bits in (0, -5, 2048):  # 0 is no "default" (the CLI's --bits refuses it too)
        with pytest.raises(NashError, match=f"between 1 and 1024, not {bits}"):
            index_folder(tmp_path, bits=bits)
    (tmp_path / "file.txt").write_text("words")
    with pytest.raises(NashError, match="not a folder"):
        index_folder(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NashError, match="nothing to index"):
        index_folder(tmp_path / "empty")
    assert not Collection.exists("empty")
    for n in range(3):  # what was skipped, and why, in the one line
        (tmp_path / "empty" / f"blank-{n}.txt").write_text("")
    (tmp_path / "empty" / "blob.txt").write_bytes(b"\x00\x01" * 100)
    with pytest.raises(NashError, match=r"\(4 skipped: 3 empty file, 1 "):
        index_folder(tmp_path / "empty")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "only.txt").write_text("a single note")
    with pytest.raises(
        NashError, match="one: only 1 text document; nash learns its codes from at least 2"
    ):
        index_folder(tmp_path / "one", hasher_options=FAST)
    assert not Collection.exists("one")  # a failed first index leaves no collection behind


def test_name_taken_by_another_folder(indexed, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "notes"
    make_docs(other, per_topic=2)
    with pytest.raises(NashError, match="already indexes.*--name"):
        index_folder(other)
    report = index_folder(other, name="notes2", hasher_options=FAST)
    assert report.documents == 6


def test_above_the_training_cap_documents_are_encoded_a_batch_at_a_time(
    tmp_path: Path, monkeypatch
) -> None:
    """A folder larger than the cap is fitted on its sample and encoded while it is read
    (a million texts must not sit in memory): the codes are those of a hasher fitted with the
    same cap in memory, and a file that cannot be read is reported once."""
    from nashcli import codes
    from nashcli.pipeline import SemanticHasher

    folder = tmp_path / "big"
    make_docs(folder, per_topic=8)
    monkeypatch.setattr(indexing, "BATCH", 5)
    reads: list[Path] = []
    real_read = indexing._read

    def counting_read(path: Path):
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(indexing, "_read", counting_read)
    options = {"max_documents": 8, "max_epochs": 3}
    report = index_folder(folder, hasher_options=options)
    assert report.added == report.documents == 24
    assert len(reads) == 24 + 8  # the sample twice: to fit, then to encode with the rest
    with Collection.open("big").snapshot() as snap:
        docs = snap.live_docs()
        stored = snap.codes_of([d.row for d in docs])
    texts = [documents.read_text(d.path) for d in docs]
    hasher = SemanticHasher(n_bits=64, seed=0, **options).fit(texts)
    assert hasher.train_info_["documents"] == 8
    assert np.array_equal(stored, codes.pack_codes(hasher.encode(texts)))

    denied = Path(docs[3].path)

    def denying_read(path: Path):
        if path == denied:
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(indexing, "_read", denying_read)
    report = index_folder(folder, retrain=True, hasher_options=options)
    assert report.skipped == [(str(denied.relative_to(folder)), "permission denied")]
    assert (report.deleted, report.dropped_unread) == (0, 1) and report.documents == 23


def stop_while_encoding(folder: Path, options: dict, monkeypatch, *, kill: bool = False) -> None:
    """A first index of ``folder`` (above ``options``' cap of 8 documents) stopped by Ctrl-C in
    the third batch of its encoding; ``kill``: one whose process removes nothing, as kill -9."""
    real_read, reads = indexing._read, []

    def stopping_read(path: Path):
        reads.append(path)
        if len(reads) == 8 + 12:  # the sample, then into the third batch of the encoding
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(indexing, "_read", stopping_read)
    if kill:  # (a killed process cleans nothing up)
        monkeypatch.setattr(Collection, "remove", lambda *a, **k: pytest.fail("removed"))
    with pytest.raises(KeyboardInterrupt):
        index_folder(folder, hasher_options=options)
    monkeypatch.setattr(indexing, "_read", real_read)


@pytest.mark.parametrize("stop", ["ctrl-c", "kill"])
def test_a_large_first_index_stopped_while_encoding_keeps_its_model(
    tmp_path: Path, monkeypatch, stop: str
) -> None:
    """Above the cap a first index commits its model, then encodes every file a batch at a
    time (for a million files, minutes after the fit): a stop there (Ctrl-C, or a kill, whose
    process removes nothing) kept nothing, and the next run fitted again. It keeps the model
    and the batches committed; the next run encodes the rest with that model, as part of the
    fit (no retrain made due), and says so. The codes are those of one run."""
    import shutil

    from typer.testing import CliRunner

    from nashcli import pipeline
    from nashcli.cli import app

    make_docs(tmp_path / "whole", per_topic=8)  # 24 files
    folder = tmp_path / "big"
    shutil.copytree(tmp_path / "whole", folder)
    monkeypatch.setattr(indexing, "BATCH", 5)
    options = {"max_documents": 8, "max_epochs": 3}
    index_folder(tmp_path / "whole", hasher_options=options)  # one run, not stopped

    def codes_by_name(name: str) -> dict[str, list[int]]:
        with Collection.open(name).snapshot() as snap:
            return {
                str(Path(d.path).relative_to(tmp_path / name)): snap.codes_of([d.row])[0].tolist()
                for d in snap.live_docs()
            }

    stop_while_encoding(folder, options, monkeypatch, kill=stop == "kill")
    assert Collection.open("big").summary()["documents"] == 10  # two batches committed
    status = " ".join(CliRunner().invoke(app, ["status"]).output.split())
    assert "holds 10 documents so far: its first index stopped before it was done;" in status
    big, whole = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["collections"]
    assert (big["documents"], big["complete"], whole["complete"]) == (10, False, True)
    answer = CliRunner().invoke(app, ["similar", str(folder / "space" / "space-0.txt")])
    assert answer.exit_code == 0  # from what is there, saying that it is not everything
    assert "holds 10 documents so far" in " ".join(answer.stderr.split())

    fits: list[int] = []
    real_fit = pipeline.SemanticHasher.fit

    def counted_fit(self, *args, **kwargs):
        fits.append(1)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(pipeline.SemanticHasher, "fit", counted_fit)
    notes: list[str] = []

    class Notes:
        def progress(self, *args) -> None:
            pass

        def note(self, message: str) -> None:
            notes.append(message)

    turns: list[str] = []  # the resume holds the training turn: one process at a time
    real_turn = indexing.training_turn
    monkeypatch.setattr(
        indexing, "training_turn", lambda name, note: turns.append(name) or real_turn(name, note)
    )
    report = index_folder(folder, hasher_options=options, reporter=Notes())
    assert turns == ["big"]
    assert fits == [] and not report.retrained and not report.retrain_due
    assert (report.added, report.unchanged, report.documents) == (14, 10, 24)
    assert notes == [
        "going on with the first index, stopped before it was done (its model is kept)"
    ]
    with Collection.open("big").snapshot() as snap:
        assert snap.encoded_since == 0 and snap.trained_docs == 24
    assert codes_by_name("big") == codes_by_name("whole")  # one run's codes
    assert "so far" not in CliRunner().invoke(app, ["status"]).output
    status = json.loads(CliRunner().invoke(app, ["status", "--json"]).stdout)["collections"]
    assert [entry["complete"] for entry in status] == [True, True]
    again = index_folder(folder, hasher_options=options, reporter=Notes())
    assert again.unchanged == 24 and len(notes) == 1  # done: no "going on" any more


def test_files_new_since_a_stopped_first_index_are_changes_not_the_fit(
    tmp_path: Path, monkeypatch
) -> None:
    """A first index stopped while encoding goes on later: the files it found are the fit's,
    but what was added or changed after it looked (a copy keeping its old mtime included) is
    change since the fit, as any update's, and counts towards the next retrain."""
    import shutil

    folder = tmp_path / "big"
    make_docs(folder, per_topic=8)  # 24 files
    monkeypatch.setattr(indexing, "BATCH", 5)
    options = {"max_documents": 8, "max_epochs": 3}
    stop_while_encoding(folder, options, monkeypatch)
    with Collection.open("big").snapshot() as snap:
        encoded = {Path(d.path) for d in snap.live_docs()}
    assert len(encoded) == 10
    (folder / "late.txt").write_text("rocket launch orbit booster countdown " * 5)
    kept_mtime = folder / "copied.txt"  # `cp -p` of an old file: old mtime, new ctime
    shutil.copy2(sorted(encoded)[0], kept_mtime)
    edited = sorted(encoded)[1]  # encoded before the stop, edited after it
    edited.write_text(edited.read_text() + " amended")
    report = index_folder(folder, hasher_options=options)
    assert (report.added, report.updated, report.documents) == (16, 1, 26)
    with Collection.open("big").snapshot() as snap:
        # 24 found by the first run, less the edited one: 23 the fit's; 3 encoded since
        assert (snap.trained_docs - snap.dead_rows.size, snap.encoded_since) == (23, 3)
    assert not Collection.open("big").summary()["filling"]


def test_a_large_first_index_with_too_few_readable_files_keeps_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    """Its model is committed before the other files are read: where they cannot be, the
    collection is removed, as one whose sample could not be read is (no model over nothing)."""
    folder = tmp_path / "big"
    make_docs(folder, per_topic=8)
    real_read, reads = indexing._read, []

    def denying_read(path: Path):
        reads.append(path)
        if len(reads) > 8:  # the sample only
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(indexing, "_read", denying_read)
    with pytest.raises(NashError, match="nothing to index, no readable text documents"):
        index_folder(folder, hasher_options={"max_documents": 8, "max_epochs": 3})
    assert not Collection.exists("big")


def test_tiny_collection(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.txt").write_text("rocket orbit launch")
    (folder / "b.txt").write_text("flour butter oven")
    assert index_folder(folder, hasher_options=FAST).documents == 2


def test_a_folder_moved_to_another_drive_and_linked_back_is_the_same_collection(
    indexed, tmp_path: Path
) -> None:
    """`mv ~/notes /mnt/big/notes && ln -s /mnt/big/notes ~/notes`: the link leads to the folder
    the collection recorded, so it is still that collection, at the path it was indexed at (it
    was refused as "collection 'notes' already indexes ~/notes" under every command, --name
    included). That path stays its folder: a second move and link, and a watcher that reports
    the folder's real paths, all keep meaning the same documents."""
    from nashcli.index import collection_of

    folder, paths = indexed
    for move in ("big-drive", "bigger-drive"):
        moved = tmp_path / move / "notes"
        moved.parent.mkdir()
        folder.resolve().rename(moved)
        folder.unlink(missing_ok=True)
        folder.symlink_to(moved)
        assert collection_of(moved) == "notes"
        for given in (folder, moved):  # the link, or the folder's new place
            report = index_folder(given, hasher_options=FAST)
            assert (report.collection, report.unchanged, report.added, report.retrained) == (
                "notes",
                len(paths),
                0,
                False,
            )
        assert index_folder(moved, name="notes", hasher_options=FAST).unchanged == len(paths)
        assert Collection.open("notes").root == folder
        assert live_paths("notes") == {str(p) for p in paths}
    # A watcher reports the real paths (FSEvents does): stored under the recorded folder, once.
    real = moved / paths[0].relative_to(folder)
    real.write_text("rocket orbit moon, edited through the folder's real path")
    new = moved / "space" / "new.txt"
    new.write_text("rocket launch")
    report = apply_changes("notes", upserts=[real, new], deletions=[moved / "elsewhere.txt"])
    assert (report.updated, report.added) == (1, 1)
    assert live_paths("notes") == {str(p) for p in paths} | {str(folder / "space" / "new.txt")}
    outside = tmp_path / "outside.txt"
    outside.write_text("not in the folder")
    assert apply_changes("notes", upserts=[outside]).added == 0


class Notes:
    """A reporter that keeps the notes an indexing run gives."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def progress(self, phase: str, completed: int, total: int | None) -> None:
        pass

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_a_moved_folder_indexed_without_its_name_is_pointed_out(indexed, tmp_path: Path) -> None:
    """Before its first index trains: this run makes a second collection, and --name would have
    re-pointed the first one without training (a user was not told)."""
    folder, paths = indexed
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    reporter = Notes()
    index_folder(moved, reporter=reporter, hasher_options=FAST)
    assert reporter.notes == [
        f"{len(paths)} of the {len(paths)} documents of collection 'notes' are here at their "
        f"paths, and its folder {folder} is gone; if this is it moved, stop (Ctrl-C) and run: "
        f"nash index {moved} --name notes, which keeps its model and codes"
    ]
    other = tmp_path / "other"
    make_docs(other, per_topic=2, seed=5)
    (other / "space" / "space-0.txt").write_text("one shared name is no move")
    reporter = Notes()
    index_folder(other, reporter=reporter, hasher_options=FAST)
    assert reporter.notes == []


def test_a_moved_folder_left_with_one_document_is_pointed_out_too(tmp_path: Path) -> None:
    """Too few documents for a new model: the note on the move comes before that error, since
    `nash index NEW --name NAME` (no training) does take the one document."""
    folder = tmp_path / "pair"
    paths = make_docs(folder, per_topic=1)[:2]
    for extra in set(folder.rglob("*.txt")) - set(paths):
        extra.unlink()
    index_folder(folder, hasher_options=FAST)
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    (moved / paths[1].relative_to(folder)).unlink()
    reporter = Notes()
    with pytest.raises(NashError, match="elsewhere: only 1 text document; nash learns"):
        index_folder(moved, reporter=reporter, hasher_options=FAST)
    assert reporter.notes and "--name pair" in reporter.notes[0]


def test_busy_writer(indexed) -> None:
    folder, _ = indexed
    with (
        Collection.open("notes").writer(),
        pytest.raises(IndexBusyError, match="busy"),
    ):
        index_folder(folder, lock_timeout=0.1)


def a_watcher_writes_during_training(monkeypatch, new: Path) -> None:
    """From here on, a retrain of collection "notes" meets a watcher's batch that adds ``new``
    once the model is trained, before the switch."""
    real_retrain = indexing._retrain

    def retrain_while_a_watcher_writes(*args, **kwargs):
        result = real_retrain(*args, **kwargs)
        new.write_text("engine brake tire gearbox clutch")
        indexing.apply_changes("notes", upserts=[new])  # the watcher's batch during training
        return result

    monkeypatch.setattr(indexing, "_retrain", retrain_while_a_watcher_writes)


def test_a_retrain_keeps_out_what_it_left_out_when_a_watcher_wrote_meanwhile(
    indexed, monkeypatch
) -> None:
    """The catch-up after the switch redoes only what other writers changed, not the files the
    retrain left out on purpose (now over --max-size)."""
    folder, _ = indexed
    big = folder / "space" / "long.txt"
    big.write_text("rocket orbit launch nasa shuttle moon " * 100)  # 3.8 KB
    index_folder(folder, hasher_options=FAST)
    new = folder / "cars" / "new.txt"
    a_watcher_writes_during_training(monkeypatch, new)
    index_folder(folder, max_bytes=2_000, retrain=True, hasher_options=FAST)
    assert str(big) not in live_paths("notes") and str(new) in live_paths("notes")


def test_a_retrain_stopped_after_its_switch_keeps_what_a_watcher_wrote_meanwhile(
    indexed, monkeypatch
) -> None:
    """The switch and the catch-up of a watcher's batch are one commit: stopped in between
    (Ctrl-C, a kill, a full disk), the collection keeps its old generation with the watcher's
    file in it. Before, the switch was committed first, and the file was lost until a later
    full crawl (the watcher does not send it again)."""
    folder, paths = indexed
    with Collection.open("notes").snapshot() as snap:
        generation = snap.generation
    real_catch_up = indexing._catch_up
    new = folder / "cars" / "new.txt"
    a_watcher_writes_during_training(monkeypatch, new)

    def catch_up_then_stop(*args, **kwargs):
        real_catch_up(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(indexing, "_catch_up", catch_up_then_stop)
    with pytest.raises(KeyboardInterrupt):
        index_folder(folder, retrain=True, hasher_options=FAST)
    with Collection.open("notes").snapshot() as snap:
        assert snap.generation == generation
    assert live_paths("notes") == {str(p) for p in [*paths, new]}
    assert sorted(p.name for p in Collection.open("notes").directory.glob("gen-*")) == [
        f"gen-{generation:06d}"
    ]


def test_a_retrain_waits_for_another_writers_batch_to_switch(indexed, monkeypatch) -> None:
    """Its training is not thrown away because a watcher's batch held the lock past the
    ordinary lock timeout."""
    import threading

    folder, _ = indexed
    real_retrain = indexing._retrain
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with Collection.open("notes").writer():
            held.set()
            release.wait(10)

    def retrain_then_meet_a_writer(*args, **kwargs):
        result = real_retrain(*args, **kwargs)
        threading.Thread(target=hold_lock, daemon=True).start()
        held.wait(10)
        threading.Timer(0.5, release.set).start()  # the batch ends after the lock timeout
        return result

    monkeypatch.setattr(indexing, "_retrain", retrain_then_meet_a_writer)
    report = index_folder(folder, retrain=True, lock_timeout=0.1, hasher_options=FAST)
    assert report.retrained and release.is_set()


def test_compaction_after_many_deletions(indexed) -> None:
    folder, paths = indexed
    for p in paths[:12]:
        p.unlink()
    report = index_folder(folder)
    assert report.deleted == 12 and report.compacted
    with Collection.open("notes").snapshot() as snap:
        assert snap.rows == 12 and len(snap.dead_rows) == 0
    assert live_paths("notes") == {str(p) for p in paths[12:]}


def test_apply_changes_refuses_one_path_given_for_a_list(indexed) -> None:
    """A str is iterable: its characters were taken for paths, and nothing changed."""
    folder, paths = indexed
    for one in (str(paths[0]), paths[0]):
        with pytest.raises(NashError, match="upserts must be a list of paths, not one path"):
            apply_changes("notes", upserts=one)


def test_a_name_too_long_is_refused_as_a_name_not_by_the_os(tmp_path: Path) -> None:
    make_docs(tmp_path / "docs", per_topic=2)
    with pytest.raises(NashError, match="invalid collection name"):
        index_folder(tmp_path / "docs", name="x" * 300)


def test_apply_changes(indexed) -> None:
    folder, paths = indexed
    new = folder / "cooking" / "fresh.txt"
    new.write_text("butter sugar flour bake")
    target = folder / "renamed.txt"
    paths[5].rename(target)
    paths[6].unlink()
    time.sleep(0.01)
    report = apply_changes(
        "notes", upserts=[new, paths[7]], deletions=[paths[6]], moves=[(paths[5], target)]
    )
    assert (report.added, report.moved, report.deleted, report.unchanged) == (1, 1, 1, 1)
    expected = {str(p) for p in paths} - {str(paths[5]), str(paths[6])} | {str(new), str(target)}
    assert live_paths("notes") == expected
    with pytest.raises(NashError, match="no collection named"):
        apply_changes("nope", upserts=[new])


def test_a_deletion_and_a_new_file_of_the_same_bytes_are_a_move(indexed, model_loads) -> None:
    """A rename a watcher saw as a deletion and a new file (a burst that split it, an editor's
    save through a temporary name) keeps its code: re-pathed, not encoded again as new."""
    folder, paths = indexed
    target = folder / "renamed.txt"
    with Collection.open("notes").snapshot() as snap:
        (before,) = [d for d in snap.live_docs() if d.path == str(paths[3])]
        code = snap.codes_of([before.row])[0].tolist()
    paths[3].rename(target)
    report = apply_changes("notes", upserts=[target], deletions=[paths[3]])
    assert (report.moved, report.added, report.deleted) == (1, 0, 0)
    assert model_loads == []  # nothing encoded
    with Collection.open("notes").snapshot() as snap:
        (after,) = [d for d in snap.live_docs() if d.path == str(target)]
        assert after.row == before.row and snap.codes_of([after.row])[0].tolist() == code
    assert live_paths("notes") == {str(p) for p in paths if p != paths[3]} | {str(target)}


def test_a_watchers_rotation_of_indexed_files_encodes_nothing(indexed, model_loads) -> None:
    """`mv b c; mv a b` seen by the watcher: both documents re-pathed with their codes, none
    encoded again (c's bytes were read and encoded as a new file)."""
    from nashcli.watching import Coalescer

    folder, paths = indexed
    a, b, c = paths[3], paths[4], folder / "c.txt"
    with Collection.open("notes").snapshot() as snap:
        before = {d.path: d.row for d in snap.live_docs()}
    events = Coalescer()
    b.rename(c)
    events.moved(b, c)
    a.rename(b)
    events.moved(a, b)
    batch = events.take()
    report = apply_changes(
        "notes", upserts=batch.upserts, deletions=batch.deletions, moves=batch.moves
    )
    assert (report.moved, report.added, report.updated, report.deleted) == (2, 0, 0, 0)
    assert model_loads == []  # nothing encoded
    with Collection.open("notes").snapshot() as snap:
        after = {d.path: d.row for d in snap.live_docs()}
    assert after[str(c)] == before[str(b)] and after[str(b)] == before[str(a)]
    assert set(after) == {str(p) for p in paths if p != a} | {str(c)}


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_moves_are_applied_as_renames_made_at_once_in_any_order(indexed, model_loads, order):
    """`apply_changes(moves=...)` of a swap, or a chain listed onto a name before out of it:
    the move onto b took b's document for the one replaced (tombstoned it), then moved a's on
    (helper review: a document lost). Each document ends at its new path, none encoded."""
    folder, paths = indexed
    a, b, c, e = paths[3], paths[4], paths[5], folder / "e.txt"
    with Collection.open("notes").snapshot() as snap:
        before = {d.path: d.row for d in snap.live_docs()}
    swap = folder / "swap.tmp"
    a.rename(swap)
    b.rename(a)
    swap.rename(b)
    c.rename(e)  # then a chain: paths[6] -> c -> e
    paths[6].rename(c)
    moves = [(b, a), (a, b), (paths[6], c), (c, e)]
    report = apply_changes("notes", moves=moves if order == "as listed" else moves[::-1])
    assert model_loads == []
    with Collection.open("notes").snapshot() as snap:
        after = {d.path: d.row for d in snap.live_docs()}
    assert after[str(a)] == before[str(b)] and after[str(b)] == before[str(a)]
    assert after[str(e)] == before[str(c)] and after[str(c)] == before[str(paths[6])]
    assert set(after) == {str(p) for p in paths if p != paths[6]} | {str(e)}
    assert (report.added, report.updated, report.deleted) == (0, 0, 0)


@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_a_swap_whose_file_was_also_written_is_read_again(indexed, order) -> None:
    """Fuzz-found: the written one of a swapped pair was appended a second time at its path
    (sqlite3.IntegrityError, a traceback), its old code kept."""
    folder, paths = indexed
    a, b, t = paths[1], paths[2], folder / "t.tmp"
    os.replace(a, t)
    os.replace(b, a)
    os.replace(t, b)
    with open(b, "a") as f:
        f.write(" an edit after the swap")
    moves = [(a, b), (b, a)]
    report = apply_changes("notes", moves=moves if order == "as listed" else moves[::-1])
    assert report.updated == 1
    with Collection.open("notes").snapshot() as snap:
        stored = {d.path: d.hash for d in snap.live_docs()}
    assert set(stored) == {str(p) for p in paths}
    assert all(stored[str(p)] == documents.content_hash(p) for p in paths)


def test_a_swap_cut_short_by_a_failed_encoding_leaves_no_hidden_entry(indexed, monkeypatch):
    """Fuzz-found: a swapped document whose new file went was dropped only at the end, after
    the moves were committed: an encoding that failed meanwhile left it live at the hidden
    name it was put aside at."""
    folder, paths = indexed
    c, d, t = paths[3], paths[4], folder / "t.tmp"
    os.replace(c, t)
    os.replace(d, c)
    os.replace(t, d)
    d.unlink()
    paths[5].write_text("an edit that needs the model")

    def no_model(directory, device):
        raise NashError("the model could not be loaded")

    monkeypatch.setattr(indexing, "_load_hasher", no_model)
    with pytest.raises(NashError, match="could not be loaded"):
        apply_changes("notes", upserts=[paths[5]], moves=[(c, d), (d, c)])
    assert not [p for p in live_paths("notes") if ".nash-moving" in p]
    assert str(d) not in live_paths("notes")


def test_an_upsert_of_a_name_that_is_not_utf8_is_skipped_not_a_traceback(indexed) -> None:
    folder, paths = indexed
    bad = folder / os.fsdecode(b"caf\xe9.txt")
    bad.write_text("rocket launch orbit")
    report = apply_changes("notes", upserts=[bad], deletions=[bad], moves=[(bad, paths[0])])
    (skip,) = report.skipped
    assert skip[1].startswith("file name is not valid UTF-8")
    assert live_paths("notes") == {str(p) for p in paths}


def test_deleting_what_was_never_indexed_writes_nothing(indexed) -> None:
    """A watcher's burst of a temporary file made and deleted (`4913`, vim's probe) is a
    deletion of a name that held nothing: no commit, so `nash status` keeps the last real
    update's time."""
    folder, paths = indexed
    before = Collection.open("notes").summary()["updated_at"]
    time.sleep(0.01)
    report = apply_changes("notes", deletions=[folder / "4913"])
    assert report.deleted == 0
    assert Collection.open("notes").summary()["updated_at"] == before


def test_a_document_a_move_replaced_is_no_move_for_a_new_file(indexed) -> None:
    """`mv a e; mv c a`: a's document, deleted and replaced by c's move, was also taken for the
    source of e's bytes, so e was re-pathed onto a dead row and never indexed."""
    folder, paths = indexed
    a, c, e = paths[3], paths[4], folder / "e.txt"
    a.rename(e)
    c.rename(a)
    report = apply_changes("notes", upserts=[e], deletions=[a], moves=[(c, a)])
    assert live_paths("notes") == {str(p) for p in paths if p != c} | {str(e)}
    assert (report.moved, report.added, report.deleted) == (1, 1, 1)


def test_apply_changes_reads_only_the_rows_of_its_paths(indexed, monkeypatch) -> None:
    """A watcher's update of a few files looks up their rows; reading every stored row took
    0.48 s of each update at 100,000 documents. Moves onto an indexed file, edits and deletions
    still find what they replace."""
    from nashcli.index import Writer

    def no_full_read(self):
        raise AssertionError("apply_changes read every stored row")

    monkeypatch.setattr(Writer, "live_docs", no_full_read)
    folder, paths = indexed
    paths[1].write_text("an edited text about butter and flour")
    paths[2].unlink()
    paths[3].rename(paths[4])  # over an indexed file: its row goes
    time.sleep(0.01)
    report = apply_changes(
        "notes", upserts=[paths[1], paths[0]], deletions=[paths[2]], moves=[(paths[3], paths[4])]
    )
    # deleted: paths[2], and the paths[4] the move replaced
    assert (report.updated, report.unchanged, report.deleted, report.moved) == (1, 1, 2, 1)
    assert live_paths("notes") == {str(p) for p in paths} - {str(paths[2]), str(paths[3])}


def test_retrain_does_not_block_or_lose_a_watchers_updates(indexed, monkeypatch) -> None:
    folder, paths = indexed
    written = folder / "cars" / "written-while-training.txt"
    removed = paths[4]
    real = indexing._new_hasher

    def hasher_that_lets_a_watcher_in(bits, device, seed, options):
        hasher = real(bits, device, seed, FAST)
        fit = hasher.fit

        def fit_while_a_watcher_writes(texts, on_epoch=None, **kw):
            written.write_text("engine clutch gearbox tire")
            removed.unlink()
            report = apply_changes(
                "notes", upserts=[written], deletions=[removed], lock_timeout=0.1
            )  # the retrain holds no lock while it trains: this does not wait
            assert (report.added, report.deleted) == (1, 1)
            return fit(texts, on_epoch=on_epoch, **kw)

        hasher.fit = fit_while_a_watcher_writes
        return hasher

    monkeypatch.setattr(indexing, "_new_hasher", hasher_that_lets_a_watcher_in)
    report = index_folder(folder, retrain=True)
    assert report.retrained
    expected = {str(p) for p in paths} - {str(removed)} | {str(written)}
    assert live_paths("notes") == expected
    with Collection.open("notes").snapshot() as snap:
        assert snap.documents == len(expected)
        # The only extra row is the removed file's, read by the retrain before the watcher
        # dropped it (now a tombstone); the written one was encoded once, with the new model.
        assert snap.rows == len(expected) + 1


@pytest.mark.parametrize("watcher", [False, True])
def test_a_new_file_deleted_while_a_retrain_fits_is_not_in_its_index(indexed, monkeypatch, watcher):
    """The retrain read it as new; it went during the fit, seen by a watcher (indexed, then
    removed) or by nobody: the new generation kept it until the next full pass."""
    folder, paths = indexed
    brief = folder / "cars" / "brief.txt"
    brief.write_text("engine clutch gearbox tire brake")
    real = indexing._new_hasher

    def hasher_that_deletes_it(bits, device, seed, options):
        hasher = real(bits, device, seed, FAST)
        fit = hasher.fit

        def fit_while_it_goes(texts, on_epoch=None, **kw):
            if watcher:
                apply_changes("notes", upserts=[brief], lock_timeout=0.1)
            brief.unlink()
            if watcher:
                apply_changes("notes", deletions=[brief], lock_timeout=0.1)
            return fit(texts, on_epoch=on_epoch, **kw)

        hasher.fit = fit_while_it_goes
        return hasher

    monkeypatch.setattr(indexing, "_new_hasher", hasher_that_deletes_it)
    assert index_folder(folder, retrain=True).retrained
    assert live_paths("notes") == {str(p) for p in paths}


@pytest.fixture
def model_loads(monkeypatch) -> list[Path]:
    """Every model an update loads from here on, by model directory."""
    loads: list[Path] = []
    real = indexing._load_hasher

    def counting_load(directory, device):
        loads.append(Path(directory))
        return real(directory, device)

    monkeypatch.setattr(indexing, "_load_hasher", counting_load)
    return loads


def test_apply_changes_loads_the_model_once_per_generation(indexed, model_loads) -> None:
    from nashcli import codes
    from nashcli.pipeline import SemanticHasher

    folder, paths = indexed
    hashers = indexing.HasherCache()
    for i in range(3):
        new = folder / "space" / f"new-{i}.txt"
        new.write_text(f"rocket orbit launch {i} nasa moon")
        report = apply_changes("notes", upserts=[new], hashers=hashers)
        assert report.added == 1
    edited = paths[0]
    edited.write_text("orbit orbit satellite payload")
    bump(edited)
    assert apply_changes("notes", upserts=[edited], hashers=hashers).updated == 1
    assert len(model_loads) == 1

    assert index_folder(folder, retrain=True, hasher_options=FAST).retrained
    late = folder / "cars" / "late.txt"
    late.write_text("engine brake clutch sedan")
    assert apply_changes("notes", upserts=[late], hashers=hashers).added == 1
    assert len(model_loads) == 2 and model_loads[1] != model_loads[0]
    # ... and the new document was encoded by the new generation's model, not the cached old one.
    with Collection.open("notes").snapshot() as snap:
        row = snap.doc_by_path(str(late)).row
        stored = snap.codes_of([row])[0]
        fresh = SemanticHasher.load(snap.model_dir).encode(["engine brake clutch sedan"])
    assert np.array_equal(stored, codes.pack_codes(fresh)[0])


def test_an_update_imports_neither_torch_nor_scikit_learn(indexed) -> None:
    """The saved linear model encodes a few new and edited files (2.6 s of a re-index went to
    importing torch and scikit-learn), into the rows and codes the full hasher makes."""
    from nashcli import codes
    from nashcli.pipeline import SemanticHasher

    folder, paths = indexed
    edited, new = paths[0], folder / "space" / "new.txt"
    edited.write_text("orbit orbit satellite payload, the launch")
    bump(edited)
    new.write_text("rocket orbit launch nasa moon")
    code = (
        "from nashcli.indexing import index_folder; "
        f"r = index_folder({str(folder)!r}); print(r.added, r.updated, r.retrained)"
    )
    assert run_fresh(code, {"torch", "sklearn"}) == ("1 1 False", [])
    with Collection.open("notes").snapshot() as snap:
        rows = [snap.doc_by_path(str(p)).row for p in (edited, new)]
        hasher = SemanticHasher.load(snap.model_dir, device="cpu")
        texts = [edited.read_text(), new.read_text()]
        x = hasher.vectorize(texts)
        assert np.array_equal(snap.codes_of(rows), codes.pack_codes(hasher.encode_vectors(x)))
        stored = snap.tfidf_of(rows)
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(stored, part), getattr(x, part))


def test_a_write_that_keeps_size_and_mtime_is_still_applied(indexed) -> None:
    """`cp -p`, `rsync -t`, `touch -r`: the watcher saw the write, so the stat alone does not
    decide (the index kept the old text until a retrain)."""
    folder, paths = indexed
    path = paths[0]
    before = path.stat()
    old_text = path.read_text()
    new_text = ("quasar zebrafish nebula " * 100)[: len(old_text.encode())]
    path.write_text(new_text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    report = apply_changes("notes", upserts=[path])
    assert (report.updated, report.unchanged) == (1, 0)
    assert "quasar" in stored_doc("notes", path)[0].title
    # The same bytes written again: hashed, kept as they are.
    path.write_text(new_text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = apply_changes("notes", upserts=[path])
    assert (report.updated, report.unchanged) == (0, 1)


def test_a_move_onto_an_indexed_file_reports_the_file_it_replaced(indexed) -> None:
    folder, paths = indexed
    source, target = paths[0], paths[1]
    source.rename(target)
    report = apply_changes("notes", moves=[(source, target)])
    assert (report.moved, report.deleted) == (1, 1)
    assert report.changes == [("-", (str(target),)), ("→", (str(source), str(target)))]
    assert live_paths("notes") == {str(p) for p in paths[1:]}


def test_a_file_moved_over_an_indexed_one_keeps_its_code(indexed, model_loads) -> None:
    """`mv a b` over an indexed b, then `nash index` (or a watcher that saw it through a hidden
    name): a's bytes at b were read and encoded again as b's new content."""
    folder, paths = indexed
    source, target = paths[0], paths[1]
    with Collection.open("notes").snapshot() as snap:
        (before,) = [d for d in snap.live_docs() if d.path == str(source)]
    source.rename(target)
    report = index_folder(folder)
    assert (report.moved, report.deleted, report.updated, report.added) == (1, 1, 0, 0)
    assert model_loads == []  # nothing encoded
    assert report.changes == [("-", (str(target),)), ("→", (str(source), str(target)))]
    after, _ = stored_doc("notes", target)
    assert after.row == before.row and after.hash == before.hash
    assert live_paths("notes") == {str(p) for p in paths[1:]}


def test_a_moves_origin_there_again_keeps_its_document(indexed) -> None:
    """`mv a.txt a.html; cp a.html a.txt` in one watcher batch: the move (read anew as HTML) let
    go of a.txt's document, and the same bytes back at a.txt kept it "unchanged", then the
    batch's end dropped it: a.txt was on disk but not in the index."""
    folder, paths = indexed
    txt = paths[0]
    html = txt.with_suffix(".html")
    txt.rename(html)
    shutil.copy2(html, txt)
    apply_changes("notes", moves=[(txt, html)], upserts=[txt, html])
    assert live_paths("notes") == {str(p) for p in paths} | {str(html)}
    # The same through the API as a deletion and an upsert of one path (rm, then restored).
    data = paths[1].read_bytes()
    paths[1].unlink()
    paths[1].write_bytes(data)
    bump(paths[1])
    report = apply_changes("notes", deletions=[paths[1]], upserts=[paths[1]])
    assert report.deleted == 0 and str(paths[1]) in live_paths("notes")


def test_a_file_over_the_size_limit_stays_out_when_moved_or_grown(tmp_path: Path) -> None:
    """A file the watcher skipped for its size, then renamed, came in as the move's new file
    (`apply_changes` knew no size limit); an indexed file moved and grown past it in one batch
    kept its entry. Both leave, as `nash index --max-size` would leave them out."""
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=4)
    index_folder(folder, max_bytes=1500, hasher_options=FAST)
    big = folder / "big.txt"
    big.write_text("rocket moon orbit " * 120)  # 2,160 bytes
    renamed = folder / "renamed.txt"
    big.rename(renamed)
    report = apply_changes("notes", moves=[(big, renamed)])
    assert dict(report.skipped) == {"renamed.txt": "larger than 1.5 KB (--max-size)"}
    grown = paths[0].with_name("grown.txt")
    paths[0].rename(grown)
    grown.write_text(grown.read_text() + " orbit" * 400)
    report = apply_changes("notes", moves=[(paths[0], grown)])
    assert report.deleted == 1 and "space/grown.txt" in dict(report.skipped)
    assert live_paths("notes") == {str(p) for p in paths[1:]}
    assert index_folder(folder).deleted == 0  # (nothing left for the crawl to remove)


def test_a_retrain_waited_for_keeps_the_code_length_it_set(indexed, monkeypatch) -> None:
    """`nash index --bits 32 --retrain` fitting while `nash index --bits 64` (the length then)
    made a retrain due and waited for its turn: the second retrained at 64 bits after the
    first, undoing the --bits 32 the user asked for, with exit 0 for both."""
    import contextlib

    folder, paths = indexed
    for i in range(len(paths)):  # enough new files to make a retrain due
        (folder / f"new-{i}.txt").write_text(paths[i].read_text() + f" extra {i}")
    real_turn = indexing.training_turn
    other_ran = []

    @contextlib.contextmanager
    def turn_after_another_fit(name, on_wait):
        if not other_ran:  # the other process's fit, which this one waited for
            other_ran.append(True)
            monkeypatch.setattr(indexing, "training_turn", real_turn)
            index_folder(folder, bits=32, retrain=True)
            with real_turn(name, on_wait):
                yield True
            return
        with real_turn(name, on_wait) as waited:
            yield waited

    monkeypatch.setattr(indexing, "training_turn", turn_after_another_fit)
    with pytest.raises(NashError, match="uses 32-bit codes; add --retrain"):
        index_folder(folder, bits=64)
    assert other_ran and Collection.open("notes").bits == 32


def test_a_rename_to_another_reader_is_read_again_not_moved(indexed) -> None:
    """The same bytes under a name another reader takes are another document: a page saved as
    .txt and renamed .html kept its markup as text and its first line as title ("moved")."""
    folder, paths = indexed
    page = folder / "space" / "page.txt"
    page.write_text(
        "<html><head><title>Mirror Page</title><script>var x = 1;</script></head><body><p>"
        + "Telescope mirrors are ground from glass blanks. " * 5
        + "</p></body></html>"
    )
    index_folder(folder)
    assert stored_doc("notes", page)[0].title.startswith("<html>")
    html = page.rename(page.with_suffix(".html"))
    report = index_folder(folder)  # (a crawl)
    assert (report.added, report.deleted, report.moved) == (1, 1, 0)
    assert stored_doc("notes", html)[0].title == "Mirror Page"
    back = html.rename(page)
    report = apply_changes("notes", moves=[(html, back)])  # (a watcher)
    assert (report.added, report.deleted, report.moved) == (1, 1, 0)
    assert stored_doc("notes", back)[0].title.startswith("<html>")
    moved = back.rename(folder / "space" / "renamed.txt")  # the same reader: still a move
    assert apply_changes("notes", moves=[(back, moved)]).moved == 1


def test_apply_changes_without_a_cache_still_works(indexed, model_loads) -> None:
    folder, _ = indexed
    for i in range(2):
        new = folder / "cooking" / f"new-{i}.txt"
        new.write_text(f"butter sugar {i} oven")
        assert apply_changes("notes", upserts=[new]).added == 1
    assert len(model_loads) == 2  # one load per call: what a long-lived caller should avoid


def stored_doc(name: str, path: Path):
    with Collection.open(name).snapshot() as snap:
        doc = snap.doc_by_path(str(path))
        return doc, (None if doc is None else snap.codes_of([doc.row])[0])


def test_a_move_with_an_edit_is_re_encoded(indexed) -> None:
    """An editor that renames and rewrites at once: the new path must not keep the old text's
    code and hash under the new file's size and mtime (a later scan would trust them)."""
    from nashcli import codes
    from nashcli.pipeline import SemanticHasher

    folder, paths = indexed
    old, _ = stored_doc("notes", paths[0])
    target = folder / "cars" / "was-space.txt"
    paths[0].rename(target)
    text = "engine brake clutch gearbox sedan dealer tire"
    target.write_text(text)
    bump(target)
    report = apply_changes("notes", moves=[(paths[0], target)])
    assert (report.moved, report.updated, report.added) == (1, 1, 0)
    doc, code = stored_doc("notes", target)
    st = target.stat()
    assert (doc.size, doc.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert doc.hash == documents.content_hash(target) != old.hash
    with Collection.open("notes").snapshot() as snap:
        fresh = SemanticHasher.load(snap.model_dir).encode([text])
    assert np.array_equal(code, codes.pack_codes(fresh)[0])
    assert stored_doc("notes", paths[0])[0] is None
    assert live_paths("notes") == {str(p) for p in paths[1:]} | {str(target)}
    # ... and the next scan finds nothing left to do.
    again = index_folder(folder)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(paths))


def test_a_touched_move_with_the_same_bytes_is_not_re_encoded(indexed) -> None:
    folder, paths = indexed
    old, old_code = stored_doc("notes", paths[1])
    target = folder / "moved.txt"
    paths[1].rename(target)
    bump(target)  # a new mtime, the same bytes
    report = apply_changes("notes", moves=[(paths[1], target)])
    assert (report.moved, report.updated, report.added) == (1, 0, 0)
    doc, code = stored_doc("notes", target)
    assert doc.row == old.row and np.array_equal(code, old_code)
    assert doc.mtime_ns == target.stat().st_mtime_ns and doc.hash == old.hash


def test_a_file_saved_many_times_counts_once_towards_a_retrain(tmp_path: Path) -> None:
    """An editor's autosave: each save re-encodes the file (a new row, the old one a
    tombstone), but it is one changed document, not one per save."""
    folder = tmp_path / "drafts"
    paths = make_docs(folder, per_topic=10)  # 30 documents: due after 8 (a quarter) change
    index_folder(folder, hasher_options=FAST)
    collection = Collection.open("drafts")
    for save in range(12):
        paths[0].write_text(f"rocket orbit launch draft, save {save} " + "moon " * save)
        bump(paths[0])
        assert apply_changes("drafts", upserts=[paths[0]]).updated == 1
    assert not retrain_due(collection)
    for path in paths[1:8]:  # now 8 documents changed
        path.write_text(path.read_text() + " revised")
        bump(path)
    report = apply_changes("drafts", upserts=paths[1:8])
    assert report.retrain_due and retrain_due(collection)


def test_files_edited_again_between_two_index_runs_count_once(tmp_path: Path) -> None:
    folder = tmp_path / "edits"
    paths = make_docs(folder, per_topic=10)  # 30 documents: due after 8 change
    index_folder(folder, hasher_options=FAST)
    for run in range(3):  # the same 4 files edited before each run: 4 changed, not 4 a run
        for path in paths[:4]:
            path.write_text(path.read_text() + f" edit {run}")
            bump(path)
        report = index_folder(folder, hasher_options=FAST)
        assert not report.retrained and report.updated == 4, run


def test_an_empty_mount_point_is_not_taken_for_every_file_deleted(tmp_path: Path) -> None:
    """A drive not mounted at the collection's folder leaves an empty folder on another
    device (simulated: the recorded device changed): nash index must not remove every
    document for it. An empty folder on the same device is a folder emptied: updated."""
    import sqlite3

    from nashcli.index import collections_dir

    folder = tmp_path / "mount"
    paths = make_docs(folder, per_topic=2)
    index_folder(folder, hasher_options=FAST)
    assert Collection.open("mount").root_device == os.stat(folder).st_dev
    away = tmp_path / "unplugged"
    away.mkdir()
    for topic_folder in {p.parent for p in paths}:
        topic_folder.rename(away / topic_folder.name)
    con = sqlite3.connect(collections_dir() / "mount" / "meta.sqlite")
    with con:
        con.execute("UPDATE info SET value='4242' WHERE key='root_device'")
    con.close()
    with pytest.raises(NashError) as caught:
        index_folder(folder)
    assert str(caught.value) == (
        f"{folder} is empty and on another device than when it was indexed, and collection "
        "'mount' holds 6 documents from it: if it is a drive that is not mounted, mount it; "
        "to drop them all, run: nash forget mount"
    )
    assert len(live_paths("mount")) == 6
    for topic_folder in list(away.iterdir()):  # the drive mounted again
        topic_folder.rename(folder / topic_folder.name)
    assert index_folder(folder).unchanged == 6
    assert Collection.open("mount").root_device == os.stat(folder).st_dev  # recorded again
    for topic_folder in {p.parent for p in paths}:
        topic_folder.rename(away / topic_folder.name)
    assert index_folder(folder).deleted == 6  # emptied on its own device: an update


def test_documents_added_since_the_fit_and_then_moved_still_count(tmp_path: Path) -> None:
    folder = tmp_path / "moves"
    make_docs(folder, per_topic=10)  # 30 documents: due after 8 change
    index_folder(folder, hasher_options=FAST)
    new = folder / "new"
    new.mkdir()
    for i in range(5):
        (new / f"n{i}.txt").write_text(f"rocket orbit launch fresh note {i} " * 3)
    assert not index_folder(folder, hasher_options=FAST).retrained  # 5 encoded since the fit
    new.rename(folder / "renamed")  # the 5 move (still encoded since the fit), 4 more come
    for i in range(4):
        (folder / f"m{i}.txt").write_text(f"stock market shares bank note {i} " * 3)
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained, report.retrain_reason  # 9, not 5 - 5 + 4


@pytest.mark.parametrize("failure", ["vanished", "denied"])
def test_a_retrain_that_cannot_read_a_file_tells_gone_from_unread(
    tmp_path: Path, monkeypatch, failure: str
) -> None:
    """A file deleted between the crawl and the retrain's read is removed; one the read is
    refused (a chmod changes neither size nor mtime: the crawl lists it unopened; simulated, as
    the suite may run as root) is there: left out unread, not removed."""
    folder = tmp_path / "reads"
    paths = make_docs(folder, per_topic=3)
    index_folder(folder, hasher_options=FAST)
    real = documents.read_document

    def read(path):
        if Path(path) == paths[0]:
            if failure == "denied":
                raise PermissionError(13, "Permission denied", str(path))
            paths[0].unlink()
        return real(path)

    monkeypatch.setattr(documents, "read_document", read)
    report = index_folder(folder, retrain=True, hasher_options=FAST)
    expected = (1, 0) if failure == "vanished" else (0, 1)
    assert report.retrained and (report.deleted, report.dropped_unread) == expected


def test_a_file_emptied_before_a_retrain_is_removed_not_unread(tmp_path: Path) -> None:
    folder = tmp_path / "emptied"
    paths = make_docs(folder, per_topic=3)
    index_folder(folder, hasher_options=FAST)
    paths[0].write_text("   \n\n  ")  # no text now (read, not sniffed): it leaves, as in an update
    report = index_folder(folder, retrain=True, hasher_options=FAST)
    assert report.retrained and (report.deleted, report.dropped_unread) == (1, 0)


def test_a_file_made_undecodable_leaves_the_index(indexed, monkeypatch) -> None:
    """An indexed file overwritten with bytes no encoding explains (no NUL, so the crawl's
    sniff passes it) kept its entry, answering with its old text until a retrain, and the
    summary counted it nowhere ("29 documents: 28 unchanged"). It is no document now; a file
    that cannot be read for now (a permission) keeps its entry, counted as kept."""
    folder, paths = indexed
    garbled, locked = paths[0], paths[1]
    garbled.write_bytes(bytes(range(0x80, 0x100)) * 80)
    bump(garbled)
    bump(locked)
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if str(path) == str(locked) and args and "b" in args[0]:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(documents, "open", refusing_open, raising=False)  # (read, not crawled)
    report = index_folder(folder)
    skipped = dict(report.skipped)
    assert skipped[str(garbled.relative_to(folder))].startswith("undecodable bytes")
    assert skipped[str(locked.relative_to(folder))] == "unreadable: permission denied"
    assert (report.deleted, report.kept, report.unchanged) == (1, 1, len(paths) - 2)
    assert live_paths("notes") == {str(p) for p in paths[1:]}
    # One deleted after the crawl saw it changed, before it was read: gone, not "kept unread".
    gone = paths[2]
    bump(gone)
    real_hash = indexing._hash

    def deleted_first(path):
        if str(path) == str(gone):
            gone.unlink()
        return real_hash(path)

    monkeypatch.setattr(indexing, "_hash", deleted_first)
    report = index_folder(folder)
    assert (report.deleted, report.kept) == (1, 1)  # (the locked one is still kept)
    assert str(gone) not in live_paths("notes")


def test_a_folder_listed_without_search_permission_loses_nothing(tmp_path, monkeypatch) -> None:
    """A folder of mode r-- can be listed, but nothing in it looked at: its sub-folders were
    skipped as "unreadable: permission denied", not as folders that cannot be listed, and every
    document under them was removed (then encoded again once the mode was back)."""
    folder = tmp_path / "perm"
    paths = make_docs(folder, per_topic=3)
    mid = folder / "mid"
    inside = [mid / "top.txt", *(mid / "inner" / f"inner{i}.txt" for i in range(2))]
    for i, path in enumerate(inside):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"orbit rocket launch telescope galaxy number {i}")
    index_folder(folder, hasher_options=FAST)
    before = live_paths("perm")
    real_scandir, real_stat = os.scandir, os.stat

    def denied(path) -> PermissionError:
        return PermissionError(13, "Permission denied", str(path))

    class Unsearchable:  # an entry of a folder without x: its name and type, nothing more
        def __init__(self, entry) -> None:
            self._entry, self.name, self.path = entry, entry.name, entry.path

        def is_symlink(self) -> bool:
            return self._entry.is_symlink()

        def is_dir(self, *, follow_symlinks: bool = True) -> bool:
            return self._entry.is_dir(follow_symlinks=False)

        def is_file(self, *, follow_symlinks: bool = True) -> bool:
            return self._entry.is_file(follow_symlinks=False)

        def stat(self, *, follow_symlinks: bool = True):
            raise denied(self.path)

    class Scan:
        def __init__(self, path) -> None:
            self._scan = real_scandir(path)

        def __enter__(self):
            return (Unsearchable(entry) for entry in self._scan)

        def __exit__(self, *exc) -> None:
            self._scan.close()

    def scandir(path="."):
        if not isinstance(path, int) and Path(path) == mid:
            return Scan(path)
        if not isinstance(path, int) and mid in Path(path).parents:
            raise denied(path)
        return real_scandir(path)

    def stat(path, *args, **kwargs):
        if not isinstance(path, int) and mid in Path(path).parents:
            raise denied(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "stat", stat)
    report = index_folder(folder, hasher_options=FAST)
    assert dict(report.skipped) == {
        "mid/inner": "unreadable folder: permission denied",
        "mid/top.txt": "unreadable: permission denied",
    }
    assert report.deleted == 0 and live_paths("perm") == before
    assert (report.unchanged, report.kept) == (len(paths), len(inside))


def test_a_folder_that_cannot_be_listed_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    """A sub-folder that cannot be listed keeps its documents' entries (they are not known to
    be gone); the whole folder unreadable is refused with one line and changes nothing."""
    folder = tmp_path / "perm"
    paths = make_docs(folder, per_topic=3)
    sub = folder / "sub"
    sub.mkdir()
    inside = [sub / f"inner{i}.txt" for i in range(2)]
    for i, path in enumerate(inside):
        path.write_text(f"orbit rocket launch telescope galaxy number {i}")
    index_folder(folder, hasher_options=FAST)
    before = live_paths("perm")
    assert {str(p) for p in [*paths, *inside]} == before
    locked: set[Path] = set()
    real_scandir = os.scandir

    def scandir(path="."):  # what a chmod 000 does to anyone but root
        if not isinstance(path, int) and Path(path) in locked:  # (an int: a folder's fd)
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    locked.add(sub)
    report = index_folder(folder, hasher_options=FAST)
    assert dict(report.skipped) == {"sub": "unreadable folder: permission denied"}
    assert report.deleted == 0 and live_paths("perm") == before
    assert (report.unchanged, report.kept) == (len(paths), len(inside))  # each one counted
    from nashcli.render import index_summary

    assert f"{len(paths)} unchanged, 2 kept unread (cannot be read now)" in index_summary(report)
    # A retrain cannot encode what it cannot read: it leaves them out, and says so (no
    # "removed": the files are there), and the next update once they can be read adds them.
    report = index_folder(folder, retrain=True, hasher_options=FAST)
    assert report.retrained and (report.deleted, report.dropped_unread) == (0, 2)
    assert "2 left out of the new model unread (cannot be read now; added again once they can)" in (
        index_summary(report)
    )
    locked.discard(sub)
    report = index_folder(folder, hasher_options=FAST)
    assert report.added == 2 and live_paths("perm") == before
    locked.add(sub)
    locked.add(folder)
    with pytest.raises(NashError, match="cannot read the folder .*perm: permission denied"):
        index_folder(folder, hasher_options=FAST)
    assert live_paths("perm") == before
    locked.clear()
    report = index_folder(folder, hasher_options=FAST)
    assert report.deleted == report.added == 0 and live_paths("perm") == before


def test_a_collection_emptied_takes_back_a_single_document(tmp_path: Path) -> None:
    """Too few documents to fit a model on are encoded with the model there, not refused."""
    folder = tmp_path / "two"
    folder.mkdir()
    first, second = folder / "a.txt", folder / "b.txt"
    first.write_text("orbit rocket launch telescope galaxy planet")
    second.write_text("stock market shares bank bond trader profit")
    index_folder(folder, hasher_options=FAST)
    first.unlink()
    second.unlink()
    assert index_folder(folder, hasher_options=FAST).deleted == 2
    first.write_text("orbit rocket launch telescope galaxy planet again")
    report = index_folder(folder, hasher_options=FAST)
    assert report.added == 1 and not report.retrained
    assert live_paths("two") == {str(first)}


def test_the_garbage_collector_runs_again_after_an_update_that_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crawl pauses the cyclic collector (a large folder's records make no cycles); an
    error in the middle must not leave it off for the rest of a long-lived process."""
    import gc

    folder = tmp_path / "notes"
    make_docs(folder)
    crawl = corpus.crawl

    def failing_crawl(*args, **kwargs):
        for n, item in enumerate(crawl(*args, **kwargs)):
            if n == 5:
                assert not gc.isenabled()  # paused while the records pile up
                raise NashError("the disk went away")
            yield item

    monkeypatch.setattr(corpus, "crawl", failing_crawl)
    assert gc.isenabled()
    with pytest.raises(NashError, match="the disk went away"):
        index_folder(folder)
    assert gc.isenabled()
    monkeypatch.setattr(corpus, "crawl", crawl)
    index_folder(folder, hasher_options=FAST)
    assert gc.isenabled()


def test_two_first_indexes_of_one_folder_at_once_both_succeed(tmp_path, monkeypatch) -> None:
    """A second `nash index` of a new folder, started while the first was still crawling,
    failed with "was just indexed as collection ... by another nash process"; started a
    second later it waited for the first model and updated it. Now it always does."""
    folder = tmp_path / "notes"
    paths = make_docs(folder)
    real_crawl = corpus.crawl

    def crawl_while_another_creates(root, **kwargs):
        Collection.create("notes", folder.resolve(), 64)  # the other process, meanwhile
        return real_crawl(root, **kwargs)

    monkeypatch.setattr(corpus, "crawl", crawl_while_another_creates)
    with pytest.raises(NashError, match="being indexed with 64-bit codes by a first index"):
        index_folder(folder, bits=128, hasher_options=FAST)  # (as one started later is told)
    Collection.open("notes").remove()
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and report.documents == len(paths)
    assert [c.name for c in list_collections()] == ["notes"]


def test_a_retrain_without_room_on_the_disk_is_refused_before_it_trains(
    indexed, monkeypatch
) -> None:
    """A full disk was found after the whole training (12-18 s), and a watcher refitted for
    nothing after every change; the room a new generation takes is checked first."""
    from nashcli import index

    folder, paths = indexed
    size = Collection.open("notes").generation_bytes()
    assert size > 0
    monkeypatch.setattr(index, "_free_bytes", lambda directory: size // 2)

    def trained(*args, **kwargs):
        raise AssertionError("trained on a full disk")

    monkeypatch.setattr(indexing, "_retrain", trained)
    with pytest.raises(NashError, match="No space left on device for a new model") as error:
        index_folder(folder, retrain=True, hasher_options=FAST)
    assert "free some space" in str(error.value)
    assert live_paths("notes") == {str(p) for p in paths}  # (the index as it was)


def test_an_update_then_retrain_reports_what_the_retrain_could_not_read(
    indexed, monkeypatch
) -> None:
    """The retrain after an update reads every file: an indexed file unchanged on disk but
    unreadable now was counted "unchanged" and missing from the skipped list."""
    folder, paths = indexed
    more = make_docs(folder / "more", per_topic=3, seed=1)  # 9 new on 24: a retrain is due
    unreadable = paths[0]
    real = indexing._read

    def read(path):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(indexing, "_read", read)
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and report.added == len(more)
    assert report.unchanged == len(paths) - 1 and report.dropped_unread == 1
    assert any(unreadable.name in path for path, _ in report.skipped)
    assert report.documents == len(paths) + len(more) - 1


def test_a_retrain_refused_after_its_update_says_the_update_stands(indexed, monkeypatch) -> None:
    from nashcli import index

    folder, paths = indexed
    more = make_docs(folder / "more", per_topic=3, seed=1)
    monkeypatch.setattr(index, "_free_bytes", lambda directory: 1000)
    with pytest.raises(
        NashError, match=r"the update before it was committed \(9 added, 0 updated, 0 removed\)"
    ):
        index_folder(folder, hasher_options=FAST)
    assert live_paths("notes") == {str(p) for p in paths + more}


def test_an_update_that_makes_a_retrain_due_does_not_compact_first(indexed) -> None:
    """The retrain writes a new generation without the deleted rows anyway: compacting the
    old one just before wrote a generation for nothing."""
    folder, paths = indexed
    for path in paths[:10]:  # over the share of dead rows that compacts
        path.unlink()
    make_docs(folder / "more", per_topic=3, seed=1)  # and a retrain due
    report = index_folder(folder, hasher_options=FAST)
    assert report.retrained and not report.compacted
    assert report.deleted == 10 and report.documents == len(paths) - 10 + 9
