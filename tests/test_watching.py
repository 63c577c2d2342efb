"""The watcher's mechanics with a fake index: coalescing, batching, retries, pid files, stop.

The index side is a recorder, so these tests need no model; the ones against the real index are
in test_watch_cli.py. Every wait polls with a timeout (no fixed sleeps decide an outcome).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nashcli import watching
from nashcli.errors import IndexBusyError, IndexWriteError, NashError
from nashcli.watching import Batch, Coalescer, Registration, Watcher

TIMEOUT = 15.0


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------------------------
# Coalescer: net effect of events, judged against the disk


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    return root


def hidden(path: Path, is_dir: bool = False) -> bool:
    return path.name.startswith(".")


def rename(events: Coalescer, src: Path, dst: Path, now: float | None = None) -> None:
    """Rename ``src`` to ``dst`` on disk and tell ``events``, as watchdog would at once."""
    os.replace(src, dst)
    events.moved(src, dst, now=now)


def test_editor_save_through_a_hidden_temp_file_is_one_change_of_the_original(folder):
    note = folder / "note.md"
    note.write_text("old")
    c = Coalescer(hidden)
    tmp = folder / ".note.md.swp"
    tmp.write_text("new")
    c.created(tmp)
    c.modified(tmp)
    rename(c, tmp, note)
    batch = c.take()
    assert batch.upserts == [note]
    assert batch.deletions == [] and batch.moves == []


def test_vim_style_save_keeps_the_file_and_drops_only_the_backup(folder):
    note = folder / "note.txt"
    backup = folder / "note.txt~"
    note.write_text("old")
    c = Coalescer()
    rename(c, note, backup)
    note.write_text("new")
    c.created(note)
    c.modified(note)
    backup.unlink()
    c.deleted(backup)
    batch = c.take()
    assert batch.upserts == [note]
    assert note not in batch.deletions and batch.moves == []


def test_a_rename_is_a_move_and_chained_renames_collapse(folder):
    a, b, d = folder / "a.txt", folder / "b.txt", folder / "d.txt"
    a.write_text("x")
    c = Coalescer()
    rename(c, a, b)
    rename(c, b, d)
    batch = c.take()
    assert batch.moves == [(a, d)]
    # (b may have been an indexed file that the first rename replaced: it goes)
    assert batch.upserts == [] and batch.deletions == [b]


def test_a_move_then_an_edit_is_a_deletion_and_an_upsert(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    rename(c, a, b)
    b.write_text("y")
    c.modified(b)
    batch = c.take()
    assert batch.moves == []
    assert batch.upserts == [b] and batch.deletions == [a]


def test_an_edit_then_a_move_is_a_deletion_and_an_upsert(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    a.write_text("edited")
    c.modified(a)
    rename(c, a, b)
    batch = c.take()
    assert batch.moves == []  # a re-path would keep the old text's code
    assert batch.upserts == [b] and batch.deletions == [a]


def test_a_rename_whose_next_events_have_not_come_yet_waits_for_them(folder):
    """A burst flushed midway (max_delay) sees the disk ahead of its events: the file renamed
    a -> a.tmp is already r.txt, whose rename is still to come. It was taken for deleted (its
    document removed), then encoded again as new; it waits for its events now."""
    a, tmp, r = folder / "a.txt", folder / "a.txt.tmp", folder / "r.txt"
    a.write_text("x")
    c = Coalescer()
    os.replace(a, tmp)
    os.replace(tmp, a)
    os.replace(a, r)  # all three done on disk...
    c.moved(a, tmp, now=10.0)  # ...the first one's event seen
    assert not c.take(now=10.5)  # nothing to do yet: no deletion of a
    assert c.due(10.5, quiet=0.2, max_delay=1.0) == pytest.approx(
        10.0 + watching.EVENT_GRACE - 10.5
    )
    c.moved(tmp, a, now=10.6)
    c.moved(a, r, now=10.6)
    batch = c.take(now=10.9)
    assert batch.moves == [(a, r)] and batch.deletions == [tmp] and not batch.upserts


def test_a_file_renamed_away_and_back_then_on_by_events_to_come_is_no_deletion(folder):
    """What the storm that found it did: a -> a.tmp -> a seen, a -> r.txt not yet."""
    a, tmp, r = folder / "a.txt", folder / "a.txt.tmp", folder / "r.txt"
    a.write_text("x")
    c = Coalescer()
    os.replace(a, r)
    c.moved(a, tmp, now=10.0)
    c.moved(tmp, a, now=10.0)
    assert c.take(now=10.3).deletions == [tmp]  # (only the name it passed through)
    c.moved(a, r, now=10.5)
    assert c.take(now=10.8).moves == [(a, r)]


def test_a_file_renamed_out_of_sight_and_back_by_events_to_come_is_no_deletion(folder):
    """a -> a.tmp (no document name: a deletion, as far as that event goes) seen, the rename
    back not yet, and a renamed on again since: not deleted while the name it went to is
    not there either; its events then come in one batch (which apply_changes takes for the
    move it is, by the bytes)."""
    a, tmp, r = folder / "a.txt", folder / "a.txt.tmp", folder / "r.txt"
    a.write_text("x")
    c = Coalescer(lambda p, is_dir=False: p.suffix == ".tmp")
    os.replace(a, r)
    c.moved(a, tmp, now=10.0)
    assert not c.take(now=10.3)
    c.moved(tmp, a, now=10.5)
    c.moved(a, r, now=10.5)
    batch = c.take(now=10.8)
    assert (batch.deletions, batch.upserts) == ([a], [r])
    # Out of sight it stays (a backup kept, a file moved into .trash): a deletion at once.
    r.rename(folder / "kept.tmp")
    c.moved(r, folder / "kept.tmp", now=11.0)
    assert c.take(now=11.1).deletions == [r]


def test_a_file_written_then_renamed_by_events_to_come_is_no_deletion(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    a.write_text("edited")
    os.replace(a, b)
    c.modified(a, now=10.0)
    assert not c.take(now=10.3)  # (its deletion, and b read anew as new, came before)
    c.moved(a, b, now=10.5)
    batch = c.take(now=10.8)
    assert batch.upserts == [b] and batch.deletions == [a]  # (edited: read anew, not re-pathed)


def test_a_file_renamed_over_one_that_moves_on_takes_the_replaced_ones_document_away(folder):
    """`mv a b; mv b c` where b was indexed, with a take between the two: a's document goes to
    c and b's is removed (the chain kept across takes collapsed to a -> c and b's stayed)."""
    a, b, d = folder / "a.txt", folder / "b.txt", folder / "d.txt"
    a.write_text("x")
    b.write_text("y")
    c = Coalescer()
    os.replace(a, b)
    os.replace(b, d)
    c.moved(a, b, now=10.0)
    assert not c.take(now=10.3)
    c.moved(b, d, now=10.4)
    batch = c.take(now=10.7)
    assert batch.moves == [(a, d)] and batch.deletions == [b]
    # `mv a b; mv c b`: a's file, on its way to b, was replaced there: a's document goes too
    e, f = folder / "e.txt", folder / "f.txt"
    e.write_text("e")
    f.write_text("f")
    os.replace(e, d)
    os.replace(f, d)
    c.moved(e, d, now=11.0)
    c.moved(f, d, now=11.0)
    batch = c.take(now=11.3)
    assert batch.moves == [(f, d)] and e in batch.deletions


def test_a_new_file_at_a_moved_files_old_name_does_not_hide_its_deletion(folder):
    """`mv a b; touch a; rm a; rm b`: a's document must go (a looked new, and came and went)."""
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    rename(c, a, b)
    a.write_text("new")
    c.created(a)
    a.unlink()
    c.deleted(a)
    b.unlink()
    c.deleted(b)
    assert a in c.take().deletions


def test_a_kept_change_is_looked_at_again_when_its_wait_ends_not_at_once(folder):
    """One path kept with an old event that ran out beside a new one: the next flush is when
    the new one's wait ends (the old one's time made the loop flush without pause for 2 s)."""
    a = folder / "a.txt"
    c = Coalescer(hidden)
    c.moved(a, folder / ".a.txt", now=0.0)  # out of sight (and gone from there since)
    c.created(a, now=2.5)  # back, and renamed away by an event not seen yet
    assert not c.take(now=2.7)
    assert c.due(2.7, quiet=0.2, max_delay=1.0) == pytest.approx(2.5 + watching.EVENT_GRACE - 2.7)


def test_a_folder_renamed_brings_a_full_pass(folder):
    """watchdog reports a moved folder's files as it walks the new one: a file renamed or
    deleted there first gets no event of its own (`mv s1 s2; rm s2/x.txt`, found by a fuzz
    against real inotify), and its document stayed. The pass settles the folder."""
    (folder / "s1").mkdir()
    c = Coalescer(hidden)
    c.moved(folder / "s1", folder / "s2", is_dir=True)
    assert c.take().rescan
    c.moved(folder / ".a", folder / ".b", is_dir=True)  # (out of sight both ways: nothing)
    assert not c.take()


def test_a_change_held_from_before_new_ignore_rules_is_judged_by_them(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    b.write_text("y")
    c = Coalescer()
    c.modified(a)
    rename(c, b, folder / "d.txt")
    c.is_ignored = lambda path, is_dir=False: path.name in ("a.txt", "d.txt")  # (a .gitignore)
    batch = c.take()
    assert a in batch.deletions and folder / "d.txt" in batch.deletions and b in batch.deletions
    assert not batch.upserts and not batch.moves


def test_a_rename_whose_next_events_never_come_is_judged_by_the_disk(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    os.replace(a, b)
    b.unlink()  # (its deletion's event lost)
    c.moved(a, b, now=10.0)
    assert not c.take(now=10.1)
    assert a in c.take(now=10.0 + watching.EVENT_GRACE).deletions
    assert c.due(20.0, 0.2, 1.0) is None  # nothing left


def test_a_file_renamed_then_deleted_is_the_original_deleted(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    rename(c, a, b)
    b.unlink()
    c.deleted(b)
    batch = c.take()  # at once: no wait for events that have all come
    assert a in batch.deletions and not batch.moves and not batch.upserts


def test_a_file_moved_and_moved_back_is_only_looked_at_again(folder):
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("x")
    c = Coalescer()
    rename(c, a, b)
    b.write_text("edited")
    c.modified(b)
    rename(c, b, a)
    batch = c.take()
    assert batch.moves == []
    assert a in batch.upserts and a not in batch.deletions


def test_a_moved_files_old_name_taken_again_keeps_the_move(folder):
    """Log rotation, `mv b c; mv a b`, `mv a b; touch a`: each file that moved is a move (its
    code kept), in an order that empties a name before a move onto it; a name taken by a new
    file is an upsert. They were all taken for new files and encoded again."""
    a, b, d = folder / "a.txt", folder / "b.txt", folder / "d.txt"
    a.write_text("a")
    b.write_text("b")
    c = Coalescer()
    rename(c, b, d)
    rename(c, a, b)
    batch = c.take()
    assert batch.moves == [(b, d), (a, b)]
    assert batch.upserts == [] and batch.deletions == []
    # a rotation whose newest name is made again by the program that writes it
    log, log1, log2 = folder / "log", folder / "log.1", folder / "log.2"
    log.write_text("3")
    log1.write_text("2")
    for old, new in ((log1, log2), (log, log1)):
        rename(c, old, new)
    log.write_text("new")
    c.created(log)
    batch = c.take()
    assert batch.moves == [(log1, log2), (log, log1)]
    assert batch.upserts == [log] and batch.deletions == []


def test_a_move_whose_old_name_is_taken_by_events_to_come_waits_for_them(folder):
    """A rotation flushed midway (its events came for over a second on a loaded machine): b
    moved to c is seen, a moved onto b not yet, so b holds a file no event told of. Both were
    taken for changed files and encoded again (54 of a rotation's 100 moves); the move waits
    for the events now, and after ``EVENT_GRACE`` without them the disk decides."""
    a, b, d = folder / "a.txt", folder / "b.txt", folder / "d.txt"
    a.write_text("a")
    b.write_text("b")
    c = Coalescer()
    os.replace(b, d)
    os.replace(a, b)
    c.moved(b, d, now=10.0)
    assert not c.take(now=10.3)
    c.moved(a, b, now=10.5)
    batch = c.take(now=10.8)
    assert batch.moves == [(b, d), (a, b)] and not batch.upserts and not batch.deletions
    # the events that would say what is at b never come: judged by the disk
    os.replace(d, folder / "e.txt")
    os.replace(b, d)
    (folder / "e.txt").replace(b)
    c.moved(b, d, now=20.0)
    assert not c.take(now=20.3)
    batch = c.take(now=20.0 + watching.EVENT_GRACE)
    assert not batch.moves and sorted(batch.upserts) == [b, d]


def test_a_swap_behind_an_editors_save_is_no_pair_of_moves(folder):
    """Fuzz-found: f05's own save (through a hidden name) announced a file there, which then
    moved on; the file at f05 now is f08's, in a swap. The announcement was taken for the new
    occupant's, both halves of the swap passed as moves, and the cycle was dropped: f05 and
    f08 kept each other's documents. A cycle is two changed files."""
    names = ("f05.txt", "f08.txt", "f28.txt")
    for name in names:
        (folder / name).write_text(name)
    c = Coalescer(lambda p, is_dir=False: p.name.startswith("."))
    f = {name: folder / name for name in ("f05.txt", "f08.txt", "f28.txt", "x.txt", "e.txt")}
    hidden = folder / ".t.tmp"

    rename(c, f["f05.txt"], f["x.txt"], now=0.0)
    rename(c, f["f28.txt"], hidden, now=0.0)  # an editor's save onto f05 through a hidden name
    rename(c, hidden, f["f05.txt"], now=0.0)
    rename(c, f["f05.txt"], f["e.txt"], now=0.0)  # ...whose file moved on
    rename(c, f["f08.txt"], f["f05.txt"], now=0.0)  # then f05 and f08 swapped
    rename(c, f["x.txt"], f["f08.txt"], now=0.0)
    batch = c.take(now=0.3)
    assert {f["f05.txt"], f["f08.txt"]} <= set(batch.upserts)
    assert not {f["f05.txt"], f["f08.txt"]} & {path for move in batch.moves for path in move}


def test_a_file_moved_onto_a_name_whose_edited_file_was_replaced_is_a_move(folder):
    """`mv f15 g0; edit g0; mv g0 g1; mv f04 g1; mv f20 f04`: g1's edit mark stayed on the
    file that replaced it, so f04's move onto g1 (and f20's onto f04) was re-encoded."""
    c = Coalescer()
    f15, f04, f20, g0, g1 = (folder / n for n in ("f15.txt", "f04.txt", "f20.txt", "g0", "g1"))
    for path in (f15, f04, f20):
        path.write_text(path.name)
    rename(c, f15, g0)
    g0.write_text("edited")
    c.modified(g0)
    rename(c, g0, g1)
    rename(c, f04, g1)
    rename(c, f20, f04)
    batch = c.take()
    assert batch.moves == [(f04, g1), (f20, f04)]
    assert f15 in batch.deletions and not batch.upserts


def test_a_file_renamed_to_a_name_not_utf8_leaves_its_old_name_to_what_came_there(folder):
    """Fuzz-found: its old name was also a deletion, after the upsert of the file made there
    (or the move onto it) in the same batch, which then lost its document."""
    a, b = folder / "f14.txt", folder / "f13.txt"
    bad = folder / os.fsdecode(b"f14-\xff.txt")
    a.write_text("a")
    b.write_text("b")
    c = Coalescer()
    rename(c, a, bad)
    a.write_text("a new f14")
    c.created(a)
    batch = c.take()
    assert a in batch.upserts and a not in batch.deletions
    os.replace(bad, folder / "back.txt")  # (a moved file's old name taken by another move)
    rename(c, a, bad)
    rename(c, b, a)
    batch = c.take()
    assert batch.moves == [(b, a)] and a not in batch.deletions


def test_a_swap_of_two_names_is_two_upserts(folder):
    """`mv a t; mv b a; mv t b`: a cycle of moves has no order that empties each name first:
    both files are looked at again."""
    a, b, t = folder / "a.txt", folder / "b.txt", folder / "t.txt"
    a.write_text("a")
    b.write_text("b")
    c = Coalescer()
    for old, new in ((a, t), (b, a), (t, b)):
        rename(c, old, new)
    batch = c.take()
    assert batch.moves == [] and batch.deletions == [t]  # (t might have held a document)
    assert sorted(batch.upserts) == [a, b]


def test_moves_out_of_and_into_sight(folder):
    (folder / ".trash").mkdir()
    gone, back = folder / "gone.txt", folder / ".trash" / "back.txt"
    gone.write_text("x")
    back.write_text("y")
    c = Coalescer(lambda p, is_dir=False: ".trash" in p.parts)
    rename(c, gone, folder / ".trash" / "gone.txt")
    rename(c, back, folder / "back.txt")
    batch = c.take()
    assert batch.deletions == [gone]
    assert batch.upserts == [folder / "back.txt"]
    assert batch.moves == []


def test_a_file_that_comes_and_goes_within_a_burst_is_a_deletion_of_what_it_replaced(folder):
    """Nothing to the index where it was new; but its name may have held a document (a file
    moved in over an indexed one, `sed -i`'s temporary renamed over it, the old name of a
    file moved on) that a fuzz of the coalescer found left live when it was "forgotten"."""
    flash = folder / "flash.txt"
    c = Coalescer()
    flash.write_text("x")
    c.created(flash)
    flash.unlink()
    c.deleted(flash)
    batch = c.take()
    assert batch.deletions == [flash] and not batch.upserts and not batch.moves
    a, tmp, b = folder / "a.txt", folder / "sedX1", folder / "b.txt"
    tmp.write_text("new")  # `create sedX1; mv sedX1 a.txt; rm a.txt`: a.txt's document goes
    c.created(tmp)
    rename(c, tmp, a)
    a.unlink()
    c.deleted(a)
    assert a in c.take().deletions
    e = folder / "e.txt"  # `mv e.txt b.txt; create e.txt; mv e.txt b.txt`: e.txt's goes
    e.write_text("e")
    rename(c, e, b)
    e.write_text("new e")
    c.created(e)
    rename(c, e, b)
    batch = c.take()
    assert e in batch.deletions and b in batch.upserts


def test_a_file_saved_out_of_sight_and_back_under_another_name_is_gone_at_once(folder):
    """`mv a.txt x.tmp; mv x.tmp d.txt`, every event seen: a.txt is gone now (it waited 2 s
    for x.tmp, which its last event had already left, and d.txt was meanwhile a second copy)."""
    a, tmp, d = folder / "a.txt", folder / "x.tmp", folder / "d.txt"
    a.write_text("x")
    c = Coalescer(lambda p, is_dir=False: p.suffix == ".tmp")
    rename(c, a, tmp, now=10.0)
    rename(c, tmp, d, now=10.0)
    batch = c.take(now=10.3)
    assert (batch.deletions, batch.upserts) == ([a], [d])  # (one update: a move, by the bytes)


def test_a_deleted_file_recreated_and_deleted_again_is_still_a_deletion(folder):
    old = folder / "old.txt"
    c = Coalescer()
    c.deleted(old)  # it existed (and was indexed) before this burst
    old.write_text("x")
    c.created(old)
    old.unlink()
    c.deleted(old)
    assert c.take().deletions == [old]


def test_a_file_in_a_folder_nash_may_not_enter_is_no_deletion(folder, monkeypatch):
    """chmod 000 on a sub-folder (simulated: the suite may run as root), then a file in it is
    touched or created: it cannot be looked at, which is not gone (nash index keeps it too)."""
    locked = folder / "locked"
    locked.mkdir()
    touched, new = locked / "indexed.txt", locked / "new.txt"
    touched.write_text("x")
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):
        if Path(path).parent == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    c = Coalescer()
    c.modified(touched)
    new.write_text("y")
    c.created(new)
    batch = c.take()
    assert batch.deletions == [] and sorted(batch.upserts) == sorted([touched, new])


def test_ignored_paths_are_dropped_and_ignore_files_ask_for_a_rescan(folder):
    c = Coalescer(hidden)
    c.modified(folder / ".hidden.txt")
    assert len(c) == 0
    c.modified(folder / ".gitignore")
    batch = c.take()
    assert batch.rescan and not batch.upserts


def test_flush_waits_for_quiet_but_not_longer_than_max_delay(folder):
    c = Coalescer()
    assert c.due(0.0, quiet=0.2, max_delay=1.0) is None
    c.modified(folder / "a.txt", now=10.0)
    assert c.due(10.0, 0.2, 1.0) == pytest.approx(0.2)
    for t in (10.15, 10.3, 10.45, 10.6, 10.75, 10.9):  # events keep coming...
        c.modified(folder / "a.txt", now=t)
    assert c.due(10.9, 0.2, 1.0) == pytest.approx(0.1)  # ...but the burst is flushed at 11.0


def test_chunks_keep_every_change_once_and_respect_the_size():
    batch = Batch(
        upserts=[Path(f"u{i}") for i in range(5)],
        deletions=[Path("d0"), Path("d1")],
        moves=[(Path("m0"), Path("m1"))],
    )
    chunks = list(batch.chunks(3))
    assert [len(ch) for ch in chunks] == [3, 3, 2]
    assert [m for ch in chunks for m in ch.moves] == batch.moves
    assert [d for ch in chunks for d in ch.deletions] == batch.deletions
    assert [u for ch in chunks for u in ch.upserts] == batch.upserts


def test_ignore_rules_are_the_crawls(folder):
    (folder / ".gitignore").write_text("build/\n*.log.txt\n")
    (folder / "sub").mkdir()
    (folder / "sub" / ".nashignore").write_text("private.md\n")
    is_ignored = watching.ignore_rules(folder)
    assert not is_ignored(folder / "a.txt")
    assert not is_ignored(folder / "sub" / "b.md")
    assert is_ignored(folder / "build" / "c.txt")
    assert is_ignored(folder / "x.log.txt")
    assert is_ignored(folder / "sub" / "private.md")
    assert is_ignored(folder / ".git" / "HEAD")
    assert is_ignored(folder / "picture.png")
    assert is_ignored(folder.parent / "outside.txt")
    assert not is_ignored(folder / "sub", True)


# --------------------------------------------------------------------------------------------
# Watcher: a real observer, a recording fake index


class FakeIndex:
    """Records what the watcher applies; can be told to be busy or to retrain."""

    def __init__(self) -> None:
        self.calls: list[Batch] = []
        self.catch_ups = 0
        self.busy = 0
        self.full = 0  # how many applies find the disk full
        self.lock = threading.Lock()

    def apply(self, upserts, deletions, moves):
        with self.lock:
            if self.busy:
                self.busy -= 1
                raise IndexBusyError("index 'x' is busy")
            if self.full:
                self.full -= 1
                raise IndexWriteError("cannot change collection 'x': No space left on device (/x)")
            self.calls.append(Batch(list(upserts), list(deletions), list(moves)))
        return None

    def catch_up(self):
        with self.lock:
            self.catch_ups += 1

    def upserts(self) -> list[Path]:
        with self.lock:
            return [p for b in self.calls for p in b.upserts]

    def deletions(self) -> list[Path]:
        with self.lock:
            return [p for b in self.calls for p in b.deletions]

    def moves(self) -> list[tuple[Path, Path]]:
        with self.lock:
            return [m for b in self.calls for m in b.moves]


class Running:
    """A watcher running in a thread; ``error`` holds what ``run`` raised."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: watcher.ready.is_set() or self.error is not None, what="catch-up")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            self.error = error

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


@pytest.fixture
def fake() -> FakeIndex:
    return FakeIndex()


@pytest.fixture
def run_watcher(folder, fake):
    started: list[Running] = []

    def start(**kw) -> Running:
        kw.setdefault("quiet", 0.05)
        kw.setdefault("max_delay", 0.5)
        kw.setdefault("retry_delay", 0.05)
        kw.setdefault("make_is_ignored", lambda: watching.ignore_rules(folder))
        running = Running(Watcher(folder, apply=fake.apply, catch_up=fake.catch_up, **kw))
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def test_new_renamed_and_deleted_files_reach_the_index(folder, fake, run_watcher):
    run_watcher()
    assert fake.catch_ups == 1
    a = folder / "a.txt"
    a.write_text("hello")
    wait_until(lambda: a in fake.upserts(), what="upsert")
    b = folder / "b.txt"
    os.replace(a, b)
    wait_until(lambda: (a, b) in fake.moves(), what="move")
    assert b not in fake.upserts()  # a rename is not re-encoded
    b.unlink()
    wait_until(lambda: b in fake.deletions(), what="deletion")


def test_a_burst_is_coalesced_into_few_batches(folder, fake, run_watcher):
    run_watcher(batch_size=100, quiet=0.2, max_delay=2.0)
    files = [folder / f"f{i:03}.txt" for i in range(300)]
    for path in files:
        path.write_text("text")
    wait_until(lambda: set(fake.upserts()) >= set(files), what="all 300 files")
    assert len(fake.calls) <= 10
    assert all(len(b) <= 100 for b in fake.calls)


def test_ignored_files_never_reach_the_index_and_ignore_changes_rescan(folder, fake, run_watcher):
    (folder / ".git").mkdir()
    (folder / "build").mkdir()
    (folder / ".gitignore").write_text("build/\n")
    run_watcher()
    (folder / ".git" / "index").write_text("x")
    (folder / "build" / "out.txt").write_text("x")
    (folder / "image.png").write_bytes(b"\x89PNG")
    (folder / "kept.txt").write_text("x")
    wait_until(lambda: folder / "kept.txt" in fake.upserts(), what="kept.txt")
    assert fake.upserts() == [folder / "kept.txt"]
    (folder / ".gitignore").write_text("build/\nkept.txt\n")
    wait_until(lambda: fake.catch_ups == 2, what="a rescan after .gitignore changed")


def test_a_file_written_in_a_burst_with_a_full_pass_is_still_looked_at(folder, fake, run_watcher):
    """A full pass trusts size and mtime; a file seen written in the same burst (`cp -p` keeps
    both) is still handed over, as in any burst, to be hashed."""
    (folder / ".gitignore").write_text("build/\n")
    run_watcher(quiet=0.3, max_delay=3.0)
    (folder / "copied.txt").write_text("x")
    (folder / ".gitignore").write_text("build/\ndist/\n")  # the same burst: a full pass
    wait_until(lambda: fake.catch_ups == 2, what="the full pass")
    wait_until(lambda: folder / "copied.txt" in fake.upserts(), what="the written file")


def test_files_that_vanish_before_they_are_read_are_skipped_quietly(folder, fake, run_watcher):
    run_watcher(quiet=0.5, max_delay=5.0)
    for i in range(20):
        flash = folder / f"flash{i}.txt"
        flash.write_text("x")
        flash.unlink()
    (folder / "marker.txt").write_text("x")
    wait_until(lambda: folder / "marker.txt" in fake.upserts(), what="marker")
    assert fake.upserts() == [folder / "marker.txt"]
    # (deletions of names that may have held a document: nothing, in an index that had none)
    assert set(fake.deletions()) <= {folder / f"flash{i}.txt" for i in range(20)}


def test_binary_and_empty_files_are_reported_not_indexed(folder, fake, run_watcher):
    seen = []
    run_watcher(admit=watching.document_problem, on_batch=seen.append)
    (folder / "blob.txt").write_bytes(b"\x00\x01\x02")
    (folder / "empty.txt").write_text("")
    (folder / "good.txt").write_text("words")
    wait_until(lambda: folder / "good.txt" in fake.upserts(), what="good.txt")
    skipped = {p.name: r for result in seen for p, r in result.skipped}
    assert skipped == {"blob.txt": "binary file", "empty.txt": "empty file"}
    assert fake.upserts() == [folder / "good.txt"]
    # An indexed file that is no document any more (emptied) leaves the index: its entry
    # would answer queries with the text it used to hold.
    (folder / "good.txt").write_text("")
    wait_until(lambda: folder / "good.txt" in fake.deletions(), what="the emptied file dropped")


def test_a_chmod_looks_again_at_what_was_skipped_as_unreadable(folder, fake, run_watcher):
    """A file skipped as unreadable and made readable with chmod (no write: no other event) is
    indexed then, and so are the files of a folder that could not be listed; a chmod of
    anything else is no change (it would cost a read of the file)."""
    from nashcli.corpus import Skipped

    locked: set[Path] = set()

    def admit(path: Path):  # what a chmod 000 does to anyone but root
        return Skipped(path, "unreadable: permission denied") if path in locked else None

    seen = []
    run_watcher(admit=admit, on_batch=seen.append)
    note, other = folder / "note.txt", folder / "other.txt"
    other.write_text("words")
    wait_until(lambda: other in fake.upserts(), what="the readable file")
    locked.add(note)
    note.write_text("words")
    wait_until(lambda: any(p == note for r in seen for p, _ in r.skipped), what="the skip")
    locked.clear()
    note.chmod(0o600)  # readable again
    wait_until(lambda: note in fake.upserts(), what="the chmod's second look")
    before = list(fake.upserts())
    other.chmod(0o600)  # never skipped: its chmod changes nothing nash reads
    sub = folder / "sub"
    sub.mkdir()
    sub.chmod(0o700)
    time.sleep(0.5)
    assert fake.upserts() == before and fake.catch_ups == 1


def test_a_chmod_of_a_folder_that_could_not_be_listed_asks_for_a_full_pass(folder, fake):
    watcher = Watcher(folder, apply=fake.apply, catch_up=fake.catch_up)
    sub, loose = folder / "sub", folder / "loose.txt"
    sub.mkdir()
    loose.write_text("x")
    watcher._remember_unreadable(
        [(Path("sub"), "unreadable folder: permission denied"), (loose, "binary file")]
    )
    assert watcher._unreadable == {sub}  # (a binary file stays one whatever its mode)
    coalescer = Coalescer()
    watcher._look_again(coalescer, loose)
    assert not coalescer.take()
    watcher._look_again(coalescer, sub)
    assert coalescer.take().rescan and watcher._unreadable == set()
    # An ignore file's chmod: its rules may have become readable (its folder was left out
    # for them) or unreadable (its folder must go): a full pass either way, which notes the
    # skips anew.
    watcher._remember_unreadable(
        [(Path("sub"), "unreadable folder: its .gitignore cannot be read (permission denied)")]
    )
    watcher._look_again(coalescer, sub / ".gitignore")
    assert coalescer.take().rescan
    watcher._look_again(coalescer, folder / ".nashignore")
    assert coalescer.take().rescan


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_names_that_are_not_utf8_are_judged_as_the_index_knows_them(folder) -> None:
    """Such a name is never an entry (it is skipped when seen): its deletion is none, a move
    from it a new file, a move to it the old entry's deletion. Looked up as they were, each
    stopped the update with a UnicodeEncodeError in the log and a full pass."""
    bad = [Path(os.fsdecode(os.fsencode(folder) + b"/bad%d\xff.txt" % i)) for i in range(3)]
    good, kept = folder / "good.txt", folder / "kept.txt"
    for path in (bad[1], good):
        path.write_text("words")
    coalescer = Coalescer()
    coalescer.moved(bad[0], good)  # renamed to a good name
    coalescer.moved(kept, bad[1])  # renamed to a bad one
    coalescer.deleted(bad[2])
    batch = coalescer.take()
    assert batch.moves == [] and batch.deletions == [kept]
    assert sorted(batch.upserts) == sorted([good, bad[1]])  # (the watcher reports bad[1])


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_a_symlink_whose_name_is_not_utf8_is_skipped_not_looked_up(
    folder, fake, run_watcher
) -> None:
    """A symlink is refused before its name is judged, as one whose entry must go (excluded):
    its deletion was looked up and stopped the update with a UnicodeEncodeError."""
    seen = []
    run_watcher(on_batch=seen.append, admit=watching.document_problem)  # (the CLI's checks)
    target = folder / "real.txt"
    target.write_text("words")
    wait_until(lambda: target in fake.upserts(), what="the real file")
    link = Path(os.fsdecode(os.fsencode(folder) + b"/link\xfe.txt"))
    link.symlink_to(target)
    wait_until(lambda: any(p == link for r in seen for p, _ in r.skipped), what="the skip")
    time.sleep(0.3)
    assert link not in fake.deletions() and link not in fake.upserts()


def test_a_chmod_of_a_folder_looks_again_at_the_skips_under_it_alone(folder, fake):
    """A folder's chmod (the x bit its files needed) brings back the files skipped under it,
    not the others; a file's chmod brings back that file."""
    watcher = Watcher(folder, apply=fake.apply, catch_up=fake.catch_up)
    sub, near = folder / "sub", folder / "sub2"
    sub.mkdir()
    near.mkdir()
    inside, beside, loose = sub / "a.txt", near / "b.txt", folder / "c.txt"
    for path in (inside, beside, loose):
        path.write_text("x")
    watcher._remember_unreadable(
        [(p, "unreadable: permission denied") for p in (inside, beside, loose)]
    )
    coalescer = Coalescer()
    watcher._feed(coalescer, ("attrib", str(sub), "", True))
    batch = coalescer.take()
    assert set(batch.upserts) == {inside} and not batch.rescan
    watcher._feed(coalescer, ("attrib", str(loose), "", False))
    assert set(coalescer.take().upserts) == {loose}
    assert watcher._unreadable == {beside}
    assert folder.parent not in watcher._unreadable._under  # (filed up to the root alone)


def test_a_file_replaced_by_a_symlink_or_a_folder_leaves_the_index(folder, fake, run_watcher):
    """A symlink is never followed (nor indexed under its name), and a folder at a document's
    path means the document is gone, as ``nash index`` sees them."""
    seen = []
    run_watcher(admit=watching.document_problem, on_batch=seen.append)
    other, linked, foldered = (folder / name for name in ("other.txt", "linked.txt", "f.txt"))
    for path in (other, linked, foldered):
        path.write_text("words")
    wait_until(lambda: {other, linked, foldered} <= set(fake.upserts()), what="three files")
    linked.unlink()
    linked.symlink_to(other)
    foldered.unlink()
    foldered.mkdir()
    wait_until(lambda: {linked, foldered} <= set(fake.deletions()), what="both dropped")
    skipped = {p.name: r for result in seen for p, r in result.skipped}
    assert skipped == {"linked.txt": "symlink to a file, not followed"}
    assert fake.upserts().count(linked) == 1  # never sent to the index as a document again


def test_a_busy_index_is_retried(folder, fake, run_watcher):
    messages = []
    run_watcher(on_message=messages.append)
    fake.busy = 2
    (folder / "late.txt").write_text("x")
    wait_until(lambda: folder / "late.txt" in fake.upserts(), what="the retried upsert")
    assert any("busy" in m for m in messages)


def test_a_busy_index_gets_the_rest_of_the_batch_later_in_its_order(folder, fake, run_watcher):
    """`mv b c; mv a b` in chunks of one: the move out of b is busy, so the move onto b must
    wait for it, not go first (it took b's document for the one replaced, and each chunk after a
    busy one waited for the lock again)."""
    a, b, c = folder / "a.txt", folder / "b.txt", folder / "c.txt"
    a.write_text("a")
    b.write_text("b")
    run_watcher(batch_size=1, quiet=0.5)
    fake.busy = 1
    os.replace(b, c)
    os.replace(a, b)
    wait_until(lambda: len(fake.moves()) == 2, what="both moves")
    assert fake.moves() == [(b, c), (a, b)]
    assert fake.upserts() == [] and fake.deletions() == []


def test_a_full_disk_is_retried_not_the_end_of_the_watch(folder, fake, run_watcher):
    messages = []
    running = run_watcher(on_message=messages.append)
    fake.full = 1
    (folder / "late.txt").write_text("x")
    wait_until(lambda: fake.catch_ups >= 2, what="the full pass after the failure")
    assert running.error is None and running.thread.is_alive()
    assert any(
        m.startswith("could not update the index (cannot change collection 'x': No space left")
        for m in messages
    )


def test_retrain_runs_in_the_background_and_changes_wait_for_it(folder, fake, run_watcher):
    release = threading.Event()
    retrained = threading.Event()
    due = [True]

    def retrain():
        release.wait(TIMEOUT)
        due[0] = False
        retrained.set()

    running = run_watcher(retrain_due=lambda: due[0], retrain=retrain)
    wait_until(lambda: running.watcher.retraining, what="the retrain to start")
    (folder / "during.txt").write_text("x")
    time.sleep(0.3)  # several flush periods: the change must wait for the retrain
    assert folder / "during.txt" not in fake.upserts()
    release.set()
    wait_until(retrained.is_set, what="retrain")
    wait_until(lambda: folder / "during.txt" in fake.upserts(), what="the queued change")
    # Then a full pass: what the refit (another process) left out unread is noted here.
    wait_until(lambda: fake.catch_ups == 2, what="the pass after the retrain")


def test_a_refit_another_process_made_unnecessary_is_not_counted(folder, fake, run_watcher):
    due = [True]
    messages: list[str] = []

    def retrain():  # the refit found the model retrained by a `nash index` meanwhile
        due[0] = False
        return False

    running = run_watcher(retrain_due=lambda: due[0], retrain=retrain, on_message=messages.append)
    wait_until(
        lambda: "no retrain needed: another nash process has just retrained it" in messages,
        what="the refit's outcome",
    )
    assert running.watcher.retrains == 0
    assert not any(m.startswith("retrained") for m in messages)


def test_a_refit_whose_own_pass_made_it_unnecessary_says_so(folder, fake, run_watcher):
    """The refit child's pass took up the changes that made the retrain due (a file dropped
    since): the log said "another nash process has just retrained it", which none had."""
    from nashcli.watching import RefitOutcome

    due = [True]
    messages: list[str] = []

    def retrain():
        due[0] = False
        return RefitOutcome(False, documents=12, deleted=1)

    running = run_watcher(retrain_due=lambda: due[0], retrain=retrain, on_message=messages.append)
    expected = "no retrain needed after all (12 documents; its pass found 1 removed)"
    wait_until(lambda: expected in messages, what="the refit's outcome")
    assert running.watcher.retrains == 0
    assert not any("another nash process" in m for m in messages)


def test_a_retrain_says_what_its_own_pass_found(folder, fake, run_watcher):
    due = [True]

    def retrain():
        due[0] = False
        return "410 documents; its pass found 90 added, 20 removed"

    messages: list[str] = []
    run_watcher(retrain_due=lambda: due[0], retrain=retrain, on_message=messages.append)
    expected = (
        "retrained: new documents are encoded with the new model "
        "(410 documents; its pass found 90 added, 20 removed)"
    )
    wait_until(lambda: expected in messages, what="the retrain's line")


@pytest.mark.parametrize(
    ("error", "reported"),
    [  # the refit child killed as the watcher exits (SIGTERM): the log already says so
        (watching.RefitKilled("the refit process was ended by signal 15"), False),
        (NashError("cannot write the model: No space left on device"), True),  # a real failure
    ],
)
def test_a_retrain_failing_as_the_watcher_stops_is_reported_unless_the_stop_ended_it(
    folder, fake, run_watcher, error, reported
):
    messages: list[str] = []
    stopped = threading.Event()

    def retrain():
        stopped.wait(TIMEOUT)
        raise error

    running = run_watcher(retrain_due=lambda: True, retrain=retrain, on_message=messages.append)
    wait_until(lambda: running.watcher.retraining, what="the retrain to start")
    running.stop()
    stopped.set()
    assert running.watcher.wait_for_retrain(TIMEOUT)
    assert "stopping during a background retrain: the current model stays" in messages
    assert (f"retrain failed: {error}" in messages) == reported
    assert sum("retrain failed" in m for m in messages) == reported


def test_a_deleted_folder_stops_the_watcher_with_a_clear_message(folder, fake, run_watcher):
    running = run_watcher()
    shutil.rmtree(folder)
    running.thread.join(TIMEOUT)
    assert isinstance(running.error, NashError)
    assert "no longer exists" in str(running.error)


def test_a_folder_replaced_by_a_new_one_is_watched_again(folder, fake, run_watcher, monkeypatch):
    monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 0.2)  # the idle check notices it
    messages = []
    running = run_watcher(on_message=messages.append)
    old = folder.with_name("notes.old")
    folder.rename(old)  # e.g. a restore or a sync tool: the old folder moved away...
    folder.mkdir()  # ...and a new one at the same path
    (folder / "new.txt").write_text("in the new folder")
    wait_until(lambda: fake.catch_ups == 2, what="a catch-up pass of the new folder")
    assert any("replaced" in m for m in messages)
    (old / "stale.txt").write_text("in the old folder, no longer watched")
    (folder / "later.txt").write_text("x")
    wait_until(lambda: folder / "later.txt" in fake.upserts(), what="a change in the new folder")
    assert folder / "stale.txt" not in fake.upserts()
    assert running.error is None and running.watcher.reattached == 1


def test_a_folder_swapped_in_by_renames_is_watched_again(folder, fake, run_watcher, monkeypatch):
    monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 0.2)
    running = run_watcher()
    staged = folder.with_name("notes.new")
    staged.mkdir()
    (staged / "restored.txt").write_text("x")
    folder.rename(folder.with_name("notes.old"))
    staged.rename(folder)  # the path is empty for a moment, then holds another folder
    # Files there before the new folder's catch-up pass are that pass's work (the fake index
    # records no files for it); changes after it arrive as events.
    wait_until(lambda: fake.catch_ups == 2, what="a catch-up pass of the new folder")
    assert running.watcher.reattached == 1
    (folder / "after.txt").write_text("x")
    wait_until(lambda: folder / "after.txt" in fake.upserts(), what="a change in the new folder")
    assert running.error is None


def test_a_folder_deleted_and_made_again_is_watched_again(folder, fake, run_watcher, monkeypatch):
    # ext4 often gives the new folder the old one's inode number: only the lost watch tells.
    monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 0.2)
    running = run_watcher()
    shutil.rmtree(folder)
    folder.mkdir()
    wait_until(lambda: fake.catch_ups == 2, what="a catch-up pass of the new folder")
    (folder / "after.txt").write_text("x")
    wait_until(lambda: folder / "after.txt" in fake.upserts(), what="a change in the new folder")
    assert running.error is None and running.watcher.reattached == 1


def test_the_catch_up_after_a_re_attach_counts_as_not_ready(folder, fake, monkeypatch):
    """Not ready = a stop request interrupts the pass at once (the CLI raises in it)."""
    monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 0.2)
    release, calls = threading.Event(), []

    def catch_up():
        calls.append(1)
        if len(calls) == 2:
            release.wait(TIMEOUT)

    watcher = Watcher(folder, apply=fake.apply, catch_up=catch_up, quiet=0.05, max_delay=0.5)
    running = Running(watcher)
    folder.rename(folder.with_name("notes.old"))
    folder.mkdir()
    wait_until(lambda: len(calls) == 2, what="the new folder's catch-up pass")
    assert not watcher.ready.is_set()
    release.set()
    wait_until(watcher.ready.is_set, what="ready again")
    running.stop()
    assert running.error is None


def test_a_stop_while_the_folder_is_missing_is_a_clean_stop(folder, fake, run_watcher, monkeypatch):
    monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 0.05)
    monkeypatch.setattr(watching, "REAPPEAR_GRACE", 30.0)
    running = run_watcher()
    shutil.rmtree(folder)
    time.sleep(0.3)  # the watcher is now waiting for the folder to come back
    running.stop()
    assert running.error is None


@pytest.mark.parametrize("stop_while_waiting", [False, True])
def test_changes_in_a_folder_renamed_away_are_not_applied(
    folder, fake, run_watcher, monkeypatch, stop_while_waiting: bool
):
    """The renamed folder still sends its files' events under the old paths, where nothing is
    now: applied, each was a deletion (a touch of every file emptied the collection). Nor may
    a stop (Ctrl-C) while the flush waits for the folder to come back apply them."""
    if stop_while_waiting:
        monkeypatch.setattr(watching, "REAPPEAR_GRACE", 30.0)  # the flush waits for the folder
        monkeypatch.setattr(watching, "ROOT_CHECK_INTERVAL", 30.0)  # ...not the idle check
    for n in range(5):
        (folder / f"note-{n}.txt").write_text(f"note {n}")
    running = run_watcher()
    moved = folder.with_name("notes.moved")
    folder.rename(moved)
    for n in range(5):
        (moved / f"note-{n}.txt").write_text(f"note {n}, edited after the move")
    if stop_while_waiting:
        time.sleep(0.8)  # the flush is now waiting for the folder to come back
        running.stop()
        assert running.error is None
    else:
        running.thread.join(TIMEOUT)
        assert isinstance(running.error, NashError) and "no longer exists" in str(running.error)
    assert fake.deletions() == [] and fake.upserts() == []


def test_a_folder_renamed_away_is_noticed_within_seconds_when_idle(folder, fake, run_watcher):
    running = run_watcher()
    time.sleep(0.5)  # idle
    started = time.monotonic()
    folder.rename(folder.with_name("notes.moved"))
    running.thread.join(TIMEOUT)
    assert isinstance(running.error, NashError) and "no longer exists" in str(running.error)
    assert time.monotonic() - started < 5  # the idle check every 1 s, then 2 s of grace


def test_a_folder_moved_away_and_back_is_still_watched(folder, fake, run_watcher):
    running = run_watcher()
    away = folder.with_name("notes.away")
    folder.rename(away)
    away.rename(folder)
    (folder / "back.txt").write_text("x")
    wait_until(lambda: folder / "back.txt" in fake.upserts(), what="a change after the round trip")
    assert running.error is None and running.watcher.reattached == 0


def test_a_folder_that_becomes_unreadable_stops_the_watcher(folder, fake, run_watcher):
    running = run_watcher()
    problem = f"the watched folder {folder} is not readable"
    running.watcher.root_problem = lambda: problem  # what a chmod does to anyone but root
    folder.chmod(0o700)  # the attribute change is the event that makes it look
    running.thread.join(TIMEOUT)
    assert isinstance(running.error, NashError) and str(running.error) == problem


def test_a_background_watchers_log_is_rotated_past_its_size(tmp_path: Path) -> None:
    """A watcher left running kept one log growing for ever: past the size, the log moves to
    LOG.1 and its output goes on in a new one (two logs at most)."""
    log = tmp_path / "watch-notes.log"
    log.write_text("--- started\n" + "indexed 1\n" * 20)
    out = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        assert not watching.rotate_log(log, (out,), limit=1000)  # not past it yet
        assert watching.rotate_log(log, (out,), limit=100)
        os.write(out, b"indexed 2\n")
        old = tmp_path / "watch-notes.log.1"
        assert old.read_text().startswith("--- started\n") and old.stat().st_size > 100
        assert log.read_text().endswith("continued from watch-notes.log.1\nindexed 2\n")
        log.unlink()  # removed by hand: left alone (its output goes where it went)
        log.write_text("x" * 200)
        assert not watching.rotate_log(log, (out,), limit=100)
    finally:
        os.close(out)


def test_a_folder_replaced_by_a_symlink_stops_the_watcher(folder, fake, run_watcher, tmp_path):
    """A watcher resolves its folder's links when it starts: a symlink put in its place later
    was "watched" as a new folder, and nothing under it reached the index again (the kernel
    watched the link itself). It stops, and says that a new start follows the link."""
    other = tmp_path / "other"
    other.mkdir()
    running = run_watcher()
    folder.rename(tmp_path / "away")
    folder.symlink_to(other)
    running.thread.join(TIMEOUT)
    assert isinstance(running.error, NashError)
    assert str(running.error) == (
        f"the watched folder {folder} is now a symlink to {other}, which a running watcher "
        f"cannot follow; to watch it: nash watch {folder}"
    )
    assert fake.catch_ups == 1  # (nothing of the other folder was taken in)


def test_an_unreadable_folder_is_refused_with_a_clear_message(folder, fake, monkeypatch):
    if os.name == "posix" and os.geteuid() != 0:
        folder.chmod(0)
    else:  # root reads anything: make the folder unreadable to the check itself
        real_scandir = os.scandir

        def scandir(path="."):
            if Path(path) == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        with pytest.raises(NashError, match="is not readable"):
            Watcher(folder, apply=fake.apply, catch_up=fake.catch_up).run()
    finally:
        folder.chmod(0o755)
    assert fake.catch_ups == 0


def test_a_reason_to_stop_from_the_periodic_check_ends_the_watch(
    folder, fake, run_watcher, monkeypatch
):
    monkeypatch.setattr(watching, "HEALTH_INTERVAL", 0.05)
    ticks = []

    def on_tick():
        ticks.append(1)
        if len(ticks) == 3:
            raise NashError("another watcher took the lock")
        if len(ticks) == 1:
            raise OSError("a passing hiccup")  # only logged

    running = run_watcher(on_tick=on_tick)
    running.thread.join(TIMEOUT)
    assert isinstance(running.error, NashError) and "took the lock" in str(running.error)
    assert len(ticks) == 3


def test_stop_ends_the_loop(folder, fake, run_watcher):
    running = run_watcher()
    running.stop()
    assert running.error is None


# --------------------------------------------------------------------------------------------
# Who watches what


def test_registration_marks_the_collection_as_watched(folder):
    assert not watching.is_watching("notes")
    with Registration("notes", folder):
        assert watching.is_watching("notes")
        info = watching.read_pid_file("notes")
        assert info["pid"] == os.getpid() and info["root"] == str(folder)
        assert watching.watched_names() == ["notes"]
        with pytest.raises(NashError, match="already being watched"), Registration("notes", folder):
            pass
    assert not watching.is_watching("notes")
    assert watching.read_pid_file("notes") is None


def _write_pid_file(name: str, pid: int, identity: str | None) -> None:
    target = watching.pid_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"pid": pid, "identity": identity, "name": name, "root": "/x"}))


def test_a_pid_file_of_a_dead_process_is_stale(folder):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    _write_pid_file("notes", child.pid, watching.process_identity(os.getpid()))
    assert not watching.is_watching("notes")
    assert not watching._same_process(watching.read_pid_file("notes"))
    assert watching.stop_watching("notes") is None
    assert not watching.pid_file("notes").exists()  # cleaned up


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc start times")
def test_a_pid_reused_by_another_process_is_stale_and_never_signalled(folder):
    # Our own pid, but "started" at another time: a watcher that died and whose pid was reused.
    _write_pid_file("notes", os.getpid(), "proc:1")
    assert not watching._same_process(watching.read_pid_file("notes"))
    assert not watching.is_watching("notes")
    assert watching.stop_watching("notes") is None  # (a SIGTERM would have ended this test run)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_a_killed_watcher_releases_its_claim(folder, nash_home):
    code = (
        "import sys, time; from pathlib import Path; from nashcli.watching import Registration\n"
        f"with Registration('notes', Path({str(folder)!r})):\n"
        "    print('ready', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "NASH_HOME": str(nash_home)},
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        assert watching.is_watching("notes")
        child.send_signal(signal.SIGKILL)
        child.wait(TIMEOUT)
        wait_until(lambda: not watching.is_watching("notes"), what="the lock to be released")
        assert watching.read_pid_file("notes")["pid"] == child.pid  # stale file, recognised
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()


def _exited(pid: int) -> bool:
    """Gone, or a zombie (an orphan's exit waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_refit_child_exits_when_its_watcher_is_killed(tmp_path: Path) -> None:
    """kill -9 of a watcher left its refit child training on, re-parented to init."""
    pid_file = tmp_path / "child.pid"
    child = (
        "import os, time; from nashcli.watching import exit_when_orphaned; "
        f"exit_when_orphaned(interval=0.05); open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    spawn = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
    parent = subprocess.Popen([sys.executable, "-c", spawn + "time.sleep(60)"])
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), what="the child")
        pid = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(TIMEOUT)
        wait_until(lambda: _exited(pid), what="the orphan's exit")
    finally:
        parent.kill()
        if pid_file.exists() and pid_file.read_text():  # the orphan, should this have failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
