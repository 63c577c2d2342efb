"""Keep a collection current as files change: watch a folder, coalesce bursts, apply short batches.

The pieces, top to bottom:

- :class:`Coalescer` folds raw file-system events into the *net* change per path since the last
  flush. The file system at flush time is the truth; events only say which paths to look at, and
  which moves to apply without re-encoding. An editor's "write a temp file, rename it over the
  original" becomes one change of the original; a file created and deleted within the window is
  nothing at all; ``git checkout`` touching thousands of files becomes a few large batches.
- :class:`Watcher` runs the loop: a watchdog observer feeds a queue; the loop waits (blocking, so an
  idle watcher uses no CPU) until the burst has been quiet for ``quiet`` seconds (or ``max_delay``
  seconds passed since its first event), then applies it in chunks of ``batch_size`` paths, each
  one short call to ``apply`` (which holds the collection's writer lock only for that chunk).
  Every few seconds (``HEALTH_INTERVAL``) it also calls ``on_tick``: the CLI re-makes its lock
  and pid files there if someone deleted or garbled them. Before each flush, and every second
  when idle, it checks that the folder is still there and still the one it watches: one
  replaced at its path (moved away or deleted, a new one made) gets a new observer and a
  catch-up pass; one gone for good stops the watcher with the index as it was.
  A catch-up pass (an incremental ``index_folder``) runs at start, after an inotify overflow,
  after a ``.gitignore``/``.nashignore`` change, a folder deleted or renamed inside the watched
  one, a failed update, a refit, and after such a replacement. When the collection has grown
  enough since its model was trained (``indexing.retrain_due``) a refit runs in a child process
  (:func:`refit_in_subprocess`), which a background thread waits for.
- Pid files and a lock per collection under :func:`nashcli.paths.state_dir` say who watches what;
  :func:`is_watching`, :func:`start_detached` and :func:`stop_watching` use them.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import json
import logging
import math
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from nashcli import corpus, paths
from nashcli.errors import IndexBusyError, IndexWriteError, NashError
from nashcli.names import from_visible, shell_quote, visible

log = logging.getLogger(__name__)

#: Seconds of silence that end a burst (an editor's save is a few events within milliseconds).
DEFAULT_QUIET = 0.2
#: Longest a change waits while events keep coming (bounds latency during a long ``git checkout``).
DEFAULT_MAX_DELAY = 1.0
#: Paths per ``apply`` call: the writer lock is held for one chunk, so ``nash index`` can get in.
DEFAULT_BATCH_SIZE = 256
#: Seconds between calls of ``on_tick`` (the CLI's lock and pid-file upkeep).
HEALTH_INTERVAL = 5.0
#: Seconds between checks, while idle, that the watched folder is still there and the same one
#: (a stat and an open: nothing to notice on an idle machine). A folder renamed away sends no
#: event of its own, so this bounds how long its move goes unnoticed.
ROOT_CHECK_INTERVAL = 1.0
#: Seconds a vanished watched folder has to reappear (a sync tool or a restore replacing it with
#: ``mv folder old && mv new folder``) before the watcher gives up.
REAPPEAR_GRACE = 2.0
#: Seconds a file that its latest event says is there (written, renamed to) may be missing from
#: the disk before the disk decides what became of it: the events of what came next (renamed
#: again, deleted) lag behind the disk, and a burst flushed before they arrive must not take the
#: file for deleted (a storm of 650 renames removed 50 documents for a second, then encoded
#: them again as new).
EVENT_GRACE = 2.0
#: Files whose change alters the ignore rules: a full catch-up pass follows.
IGNORE_FILES = frozenset({".gitignore", ".nashignore"})


# --------------------------------------------------------------------------------------------
# Coalescing
# --------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """The net change of one burst, ready for ``indexing.apply_changes``."""

    upserts: list[Path] = field(default_factory=list)
    deletions: list[Path] = field(default_factory=list)
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    #: A full catch-up pass is needed (ignore rules changed, events were lost, a folder vanished).
    rescan: bool = False

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletions or self.moves or self.rescan)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletions) + len(self.moves)

    def chunks(self, size: int) -> Iterable[Batch]:
        """Split into batches of at most ``size`` paths: moves, then deletions, then upserts."""
        items: list[tuple[str, Any]] = (
            [("move", m) for m in self.moves]
            + [("delete", p) for p in self.deletions]
            + [("upsert", p) for p in self.upserts]
        )
        for start in range(0, len(items), max(1, size)):
            chunk = Batch()
            lists = {"move": chunk.moves, "delete": chunk.deletions, "upsert": chunk.upserts}
            for kind, item in items[start : start + size]:
                lists[kind].append(item)
            yield chunk


#: ``is_ignored(path, is_dir)``: is the path out of the index's sight (hidden, ignored, not a
#: document type)?
IgnoreFn = Callable[[Path, bool], bool]


class Coalescer:
    """Net effect of file events since the last :meth:`take`, resolved against the disk.

    ``is_ignored(path, is_dir)`` applies the same rules as ``nash index``; events only about ignored
    are dropped, a move out of sight is a deletion and a move into sight a creation.
    """

    def __init__(self, is_ignored: IgnoreFn = lambda path, is_dir: False) -> None:
        self.is_ignored = is_ignored
        self._dirty: dict[Path, None] = {}  # paths to look at (an ordered set)
        self._moves: dict[Path, Path] = {}  # destination -> origin (a path that existed before)
        # path -> when its latest event said it is there (written, or renamed to)
        self._present_at: dict[Path, float] = {}
        # path -> (the name out of sight it was renamed to, when): gone only if it stays there
        self._hidden_as: dict[Path, tuple[Path, float]] = {}
        self._hidden_by: dict[Path, Path] = {}  # ... and that name -> the path
        self._waiting_until: float | None = None  # changes kept for their next events (take)
        self._fresh: set[Path] = set()  # created during this window: moving it is no "move"
        self._touched_after_move: set[Path] = set()
        self._rescan = False
        self.first_event: float | None = None
        self.last_event: float | None = None

    def __len__(self) -> int:
        return len(self._dirty) + len(self._moves) + int(self._rescan)

    def _stamp(self, now: float | None) -> None:
        now = time.monotonic() if now is None else now
        if self.first_event is None:
            self.first_event = now
        self.last_event = now

    def due(self, now: float, quiet: float, max_delay: float) -> float | None:
        """Seconds until the pending burst should be flushed (<= 0: now); None if nothing waits."""
        if not len(self):
            return None
        if self.first_event is None or self.last_event is None:  # no event since a take...
            if self._waiting_until is None:
                return None
            return self._waiting_until - now  # ...that kept changes waiting for their events
        return min(self.last_event + quiet, self.first_event + max_delay) - now

    # ---- events
    def request_rescan(self, now: float | None = None) -> None:
        """Ask for a full catch-up pass with the next flush."""
        self._rescan = True
        self._stamp(now)

    def created(self, path: Path, now: float | None = None) -> None:
        """A file appeared (or a directory: its files get their own events)."""
        if path.name in IGNORE_FILES:
            self.request_rescan(now)
        if self.is_ignored(path, False):
            return
        if path not in self._dirty and path not in self._moves:
            self._fresh.add(path)  # not known before: moving it moves no document
        self.modified(path, now)

    def modified(self, path: Path, now: float | None = None) -> None:
        """A file's content (may have) changed."""
        if path.name in IGNORE_FILES:
            self.request_rescan(now)
        if self.is_ignored(path, False):
            return
        self._dirty[path] = None
        if path in self._moves:
            self._touched_after_move.add(path)
        self._present_at[path] = time.monotonic() if now is None else now
        self._stamp(now)

    def deleted(self, path: Path, now: float | None = None, *, is_dir: bool = False) -> None:
        """A file or directory went away."""
        if path.name in IGNORE_FILES:
            self.request_rescan(now)
        if self.is_ignored(path, is_dir):
            return
        if is_dir:
            # Its files may be indexed; which ones is the index's business: a catch-up pass.
            self._rescan = True
        self._present_at.pop(path, None)
        self._forget_hidden(path)
        origin = self._moves.pop(path, None)
        if origin is not None:  # renamed, then deleted: what went is the file it was
            self._touched_after_move.discard(path)
            self._fresh.discard(origin)  # (a new file made at its old name since: not all)
            self._dirty[origin] = None
        self._dirty[path] = None
        self._stamp(now)

    def moved(
        self, src: Path, dst: Path, now: float | None = None, *, is_dir: bool = False
    ) -> None:
        """``src`` was renamed to ``dst`` (watchdog also reports each file of a moved directory)."""
        if is_dir:
            # The files inside get their own move events, but only those still there when
            # watchdog walks the new folder: one renamed or deleted there first (`mv s1 s2; rm
            # s2/x.txt`) gets none, and its document would stay. A catch-up pass settles the
            # folder (re-pathing by the bytes, nothing encoded again).
            if not (self.is_ignored(src, True) and self.is_ignored(dst, True)):
                self.request_rescan(now)
            self._stamp(now)
            return
        if IGNORE_FILES & {src.name, dst.name}:
            self.request_rescan(now)
        src_hidden, dst_hidden = self.is_ignored(src, False), self.is_ignored(dst, False)
        if src_hidden and dst_hidden:
            return
        if src_hidden:  # e.g. an editor's hidden temp file renamed over the real one
            original = self._hidden_by.pop(src, None)
            if original is not None and original != dst:  # out of sight, and back elsewhere:
                self._forget_hidden(original)  # its old name is gone, no waiting for it
            self.modified(dst, now)  # (not "created": it may replace an indexed file)
            return
        if dst_hidden:  # (an editor's backup, a save through a temporary name: it may be back)
            self.deleted(src, now)
            self._hidden_as[src] = (dst, time.monotonic() if now is None else now)
            self._hidden_by[dst] = src
            return
        origin = self._moves.pop(src, src)
        self._present_at.pop(src, None)  # (its latest event: gone from there)
        self._forget_hidden(src)
        # edited in this window, before or after an earlier move: its indexed code is stale
        touched = src in self._touched_after_move or src in self._dirty
        self._touched_after_move.discard(src)
        if origin != src:  # moved on: whatever src held before the first move (overwritten) goes
            self._dirty[src] = None
        if src in self._fresh:  # created in this window: dst is simply new, src forgotten
            self.created(dst, now)
            return
        self._dirty.pop(dst, None)
        self._fresh.discard(dst)
        overwritten = self._moves.get(dst)
        if overwritten is not None and overwritten != origin:  # a file moved here is replaced
            self._dirty[overwritten] = None
        self._moves[dst] = origin
        self._present_at[dst] = time.monotonic() if now is None else now
        if touched:
            self._touched_after_move.add(dst)
        else:  # (an edit of the file it replaced there is no edit of this one)
            self._touched_after_move.discard(dst)
        self._stamp(now)

    def _forget_hidden(self, path: Path) -> None:
        """Drop the record that ``path`` was renamed out of sight (a later event said more)."""
        hidden, _ = self._hidden_as.pop(path, (None, None))
        if hidden is not None and self._hidden_by.get(hidden) == path:
            del self._hidden_by[hidden]

    # ---- flush
    def take(self, now: float | None = None) -> Batch:
        """Resolve pending events against the disk and start a new window. A file that its
        latest event says is there (written, renamed to) but that is not on disk was renamed on
        or deleted by events not seen yet: it is kept for them until ``EVENT_GRACE`` seconds
        after that event, then judged by the disk."""
        now = time.monotonic() if now is None else now
        batch = Batch(rescan=self._rescan)
        waiting, claimed = self._resolve_moves(batch, now)
        batch.moves, cyclic = paths.moves_in_order(batch.moves)
        for origin, dst in cyclic:  # (none, as _vacated judges: else both ends by the disk)
            claimed.difference_update((origin, dst))
            self._dirty.setdefault(origin, None)
            self._dirty.setdefault(dst, None)
        kept = self._resolve_dirty(batch, claimed, now)
        self._carry_over(waiting, kept, now)
        # (a name that is not valid UTF-8 in upserts is reported by the watcher's admission)
        batch.upserts, batch.deletions, batch.moves = corpus.storable_changes(
            batch.upserts, batch.deletions, batch.moves
        )
        return batch

    def put_back(self, batch: Batch, due_at: float) -> None:
        """Take back a batch that could not be applied, to be resolved again from ``due_at``
        on (its moves as they were: the disk decides at the next :meth:`take`)."""
        for path in batch.upserts:
            self.modified(path)
        for path in batch.deletions:
            self.deleted(path)
        for origin, dst in batch.moves:
            self._moves[dst] = origin
        if batch.rescan:
            self.request_rescan()
        self.first_event = self.last_event = due_at

    def _events_to_come(self, path: Path, now: float) -> bool:
        """Whether ``path``, not on disk, is so by events not seen yet: its latest event, less
        than ``EVENT_GRACE`` ago, said it is there, or it was renamed out of sight to a name
        that is gone too."""
        if paths.may_be_there(path):
            return False
        if now < self._present_at.get(path, -math.inf) + EVENT_GRACE:
            return True
        hidden, when = self._hidden_as.get(path, (None, -math.inf))
        return now < when + EVENT_GRACE and not paths.may_be_there(hidden)

    def _resolve_moves(self, batch: Batch, now: float) -> tuple[dict[Path, Path], set[Path]]:
        """Each pending move into ``batch.moves``, kept waiting for its events, or left to the
        dirty paths (both ends judged by the disk); returns the moves to keep and the paths the
        moves settled (not to be judged again as dirty)."""
        claimed: set[Path] = set()
        waiting: dict[Path, Path] = {}  # moves to keep
        vacated = self._vacated()
        for dst, origin in self._moves.items():
            if origin == dst:  # moved back: nothing moved, but it may have been edited meanwhile
                if self._events_to_come(dst, now):
                    waiting[dst] = origin
                    claimed.add(dst)
                else:
                    self._dirty.setdefault(dst, None)
                continue
            landed = self._landed(dst)
            left = vacated(origin) if landed else False
            if landed and left:
                batch.moves.append((origin, dst))
                claimed.add(dst)
                if not paths.may_be_there(origin):  # (else a new file or another move's: not ours)
                    claimed.add(origin)
            elif self._events_to_come(dst, now) and not paths.may_be_there(origin):
                waiting[dst] = origin  # where it went next is in events still to come
                claimed.update((origin, dst))
            elif left is None and now < self._present_at.get(dst, -math.inf) + EVENT_GRACE:
                waiting[dst] = origin  # its old name holds a file whose events are still to come
                claimed.update((origin, dst))
            else:  # replaced, moved back, or gone again: judge both ends by what is on disk
                self._dirty.setdefault(origin, None)
                self._dirty.setdefault(dst, None)
        return waiting, claimed

    def _resolve_dirty(self, batch: Batch, claimed: set[Path], now: float) -> list[Path]:
        """Each dirty path not ``claimed`` into ``batch`` by what is on disk; returns those kept
        waiting for their events."""
        kept: list[Path] = []
        for path in self._dirty:
            if path in claimed:
                continue
            if _is_folder(path):  # its files have their own events; a document there is gone
                batch.deletions.append(path)
            elif paths.may_be_there(path):  # a file, a symlink or pipe nash refuses, or unreadable
                # (a change held from before new ignore rules is judged by them now)
                (batch.deletions if self.is_ignored(path, False) else batch.upserts).append(path)
            elif self._events_to_come(path, now):
                kept.append(path)
            else:
                batch.deletions.append(path)
        return kept

    def _carry_over(self, waiting: dict[Path, Path], kept: list[Path], now: float) -> None:
        """Start a new window holding only the moves and paths kept for their events, with what
        is known of them (as it was: the events that resolve them carry on from here)."""
        keep = set(waiting) | set(kept)
        touched = self._touched_after_move & keep
        present_at = {path: self._present_at[path] for path in keep if path in self._present_at}
        hidden_as = {path: self._hidden_as[path] for path in keep if path in self._hidden_as}
        self._dirty = dict.fromkeys(kept)
        self._moves = dict(waiting)
        self._fresh = set()
        self._touched_after_move = touched
        self._rescan = False
        self.first_event = self.last_event = None
        self._present_at, self._hidden_as = present_at, hidden_as
        self._hidden_by = {hidden: path for path, (hidden, _) in hidden_as.items()}
        seen = [*present_at.values(), *(when for _, when in hidden_as.values())]
        seen = [when for when in seen if now < when + EVENT_GRACE]  # (not one that ran out)
        self._waiting_until = min(seen) + EVENT_GRACE if seen else None

    def _landed(self, dst: Path) -> bool:
        """Whether the file a move brought to ``dst`` is there as it came, and in sight (the
        ignore rules may have changed since: such a file is judged with the dirty ones)."""
        return (
            dst not in self._touched_after_move
            and corpus.regular_file_stat(dst) is not None
            and not self.is_ignored(dst, False)
        )

    def _vacated(self) -> Callable[[Path], bool | None]:
        """A test of a move's old name: whether it is free of the file that moved, by the
        events. It is (True) if nothing is there, or a file whose latest event says it is there
        (`mv a b; touch a`), or the file of another move that stands (`mv b c; mv a b`, log
        rotation). It is not (False) in a cycle of moves (`mv a t; mv b a; mv t b`: judged by
        the disk, as two changed files). A file there that no event told of yet (None) is news
        still to come: the moved file back, or the next move of a chain."""
        verdicts: dict[Path, bool | None] = {}

        def vacated(origin: Path) -> bool | None:
            chain: dict[Path, None] = {}  # names whose verdict is the next one's
            while origin not in verdicts:
                into = self._moves.get(origin)
                if not paths.may_be_there(origin):
                    verdicts[origin] = True
                elif into is not None:  # the file of another move: if that one stands
                    if into == origin or origin in chain or not self._landed(origin):
                        verdicts[origin] = False
                        break
                    chain[origin] = None
                    origin = into
                else:  # a file whose latest event says it is there (not the one that moved,
                    # whose move took its mark), or one no event told of yet
                    verdicts[origin] = True if origin in self._present_at else None
            for name in chain:
                verdicts[name] = verdicts[origin]
            return verdicts[origin]

        return vacated


def _storable(path: Path) -> bool:
    """Whether ``path`` can be an index entry (the index stores paths as UTF-8 text)."""
    return corpus.name_problem(path) is None


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, None if it is not there: tells a replaced folder apart."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class _Skips:
    """The paths a watcher skipped as unreadable, each also filed under every folder above it,
    so that a chmod finds what it may mend by lookup: a file's own entry, or all of a folder's
    (a scan of every skip for each event of a ``chmod -R`` grew with the square)."""

    def __init__(self, root: Path) -> None:
        self.root = root  # (no event comes from above it: filed up to it)
        self._paths: set[Path] = set()
        self._under: dict[Path, set[Path]] = {}

    def _folders(self, path: Path) -> Iterator[Path]:
        for folder in path.parents:
            yield folder
            if folder == self.root:
                return

    def add(self, path: Path) -> None:
        if path not in self._paths:
            self._paths.add(path)
            for folder in self._folders(path):
                self._under.setdefault(folder, set()).add(path)

    def discard(self, path: Path) -> None:
        if path in self._paths:
            self._paths.discard(path)
            for folder in self._folders(path):
                below = self._under[folder]
                below.discard(path)
                if not below:
                    del self._under[folder]

    def difference_update(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self.discard(path)

    def clear(self) -> None:
        self._paths.clear()
        self._under.clear()

    def under(self, folder: Path) -> set[Path]:
        """The skips inside ``folder``, at any depth."""
        return set(self._under.get(folder, ()))

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def __eq__(self, other: object) -> bool:  # (compared with a plain set of paths)
        return self._paths == (other._paths if isinstance(other, _Skips) else other)

    __hash__ = None  # type: ignore[assignment]


class _FolderReplaced(Exception):
    """Another folder now stands at the watched path: watch that one instead."""


def _is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder itself (not a symlink to one)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# The watch loop
# --------------------------------------------------------------------------------------------


def _passing(error: Exception) -> bool:
    """Whether a watcher logs ``error`` and tries again later: a write that failed (a full disk
    may clear) or anything unexpected. Any other ``NashError`` is one waiting does not mend (the
    collection forgotten or damaged): it ends the watch with its one line."""
    return isinstance(error, IndexWriteError) or not isinstance(error, NashError)


@dataclass
class BatchResult:
    """What one applied chunk did, for the caller to print."""

    batch: Batch
    seconds: float
    report: Any = None  # whatever ``apply`` returned (an ``indexing.IndexReport``)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files that are no documents


ApplyFn = Callable[[Sequence[Path], Sequence[Path], Sequence[tuple[Path, Path]]], Any]


class Watcher:
    """Watch ``root`` and apply its changes to a collection until :meth:`stop`.

    The index side is injected, so the mechanics are testable without a model:
    ``apply(upserts, deletions, moves)`` applies one chunk (``indexing.apply_changes``),
    ``catch_up()`` brings the whole collection up to date (``indexing.index_folder``),
    ``retrain_due()`` / ``retrain()`` decide and perform a background retrain (``retrain()``
    returns False where it found none needed after all and its pass found nothing changed
    (another process had just retrained, as a rule); the :class:`RefitOutcome` where none was
    needed and its pass took up changes (those that made one due were gone, or another process
    retrained too: the log says what the pass found, not which); else
    may return a line of what the refit found, :meth:`RefitOutcome.summary`, for the log),
    ``make_is_ignored()`` returns the ignore predicate (rebuilt after ignore files change),
    ``admit(path)`` says why an existing file is no document (a :class:`corpus.Skipped`: binary,
    empty, too big) or None; one that is no document by those rules (``excluded``) also leaves
    the index, as ``nash index`` drops it.
    ``on_tick()`` is called from the loop about every ``HEALTH_INTERVAL`` seconds, busy or idle
    (``Registration.refresh``: the lock and pid files are re-made if they went missing); a
    NashError from it ends the watch.
    """

    def __init__(
        self,
        root: Path,
        *,
        apply: ApplyFn,
        catch_up: Callable[[], Any],
        make_is_ignored: Callable[[], IgnoreFn] = lambda: lambda path, is_dir: False,
        admit: Callable[[Path], Any] = lambda path: None,
        retrain_due: Callable[[], bool] | None = None,
        retrain: Callable[[], Any] | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        quiet: float = DEFAULT_QUIET,
        max_delay: float = DEFAULT_MAX_DELAY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        retry_delay: float = 1.0,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self._apply = apply
        self._catch_up = catch_up
        self._make_is_ignored = make_is_ignored
        self._admit = admit
        self._retrain_due = retrain_due
        self._retrain = retrain
        self._on_batch = on_batch or (lambda result: None)
        self._say = on_message or (lambda message: log.info(message))
        self._on_ready = on_ready or (lambda: None)
        self._on_tick = on_tick or (lambda: None)
        self._last_tick = time.monotonic()
        self.quiet, self.max_delay, self.batch_size = quiet, max_delay, batch_size
        self.retry_delay = retry_delay
        self._events: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._retrain_thread: threading.Thread | None = None
        self.ready = threading.Event()  # set once the catch-up pass is done and events flow
        self.retrains = 0
        self.reattached = 0  # times the folder was replaced by another at its path
        self._backoff = 0.0
        self._root_id = _identity(self.root)
        self._watch_lost = False  # the observer saw the folder itself deleted: it watches nothing
        # Files and folders skipped as unreadable (a permission): a chmod of one (an attribute
        # event, else ignored) has it looked at again.
        self._unreadable = _Skips(self.root)
        self._last_pass_skipped: set[Path] = set()

    # ---- control
    def stop(self) -> None:
        """Ask the loop to finish its current chunk and return (safe from signal handlers)."""
        self._stopping.set()
        self._events.put(("stop",))

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def root_problem(self) -> str | None:
        """Why the watched folder cannot be watched any more, or None if it is fine."""
        if os.path.islink(self.root):  # (resolved at the start: it was a real folder then)
            target = os.path.realpath(self.root)
            return (
                f"the watched folder {self.root} is now a symlink to {target}, which a running "
                f"watcher cannot follow; to watch it: nash watch {shell_quote(self.root)}"
            )
        try:
            if not self.root.is_dir():
                return f"the watched folder {self.root} no longer exists"
            with os.scandir(self.root):
                pass
        except PermissionError:
            return f"the watched folder {self.root} is not readable"
        except OSError as error:
            return f"the watched folder {self.root} cannot be read ({error.strerror or error})"
        return None

    def _replaced(self) -> bool:
        """True if another folder now stands at the watched path (moved away, a new one made)."""
        now = _identity(self.root)
        return now is not None and now != self._root_id

    def _left_its_path(self) -> bool:
        """True if the watched folder is gone, unreadable, replaced or no longer watched: what
        :meth:`_gone` must sort out before anything more is applied."""
        return bool(self.root_problem()) or self._replaced() or self._watch_lost

    # ---- events (called from the observer thread)
    def _on_event(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        if kind == "modified" and event.is_directory:
            return
        src, dst = os.fsdecode(event.src_path), os.fsdecode(event.dest_path or "")
        self._events.put((kind, src, dst, event.is_directory))

    def _feed(self, coalescer: Coalescer, item: tuple) -> bool:
        """Fold one queued event in; False when the watched folder is gone."""
        kind, src, dst, is_dir = item
        src_path = Path(src)
        if src_path == self.root and kind in ("deleted", "moved", "attrib"):
            if kind == "deleted":  # watchdog stops watching it, even if one reappears there
                self._watch_lost = True
            return not self._left_its_path()
        if kind == "created":
            if not is_dir:
                coalescer.created(src_path)
        elif kind in ("modified", "closed"):
            coalescer.modified(src_path)
        elif kind == "deleted":
            coalescer.deleted(src_path, is_dir=is_dir)
        elif kind == "moved":
            if dst:
                coalescer.moved(src_path, Path(dst), is_dir=is_dir)
            else:
                coalescer.deleted(src_path, is_dir=is_dir)
        elif kind in ("overflow", "rescan"):
            coalescer.request_rescan()
        elif kind == "attrib":  # a chmod: what was skipped as unreadable may be readable now
            self._look_again(coalescer, src_path, is_dir)
        elif kind == "wake" and len(coalescer):
            coalescer.first_event = coalescer.last_event = time.monotonic() - self.max_delay
        return True

    # ---- the loop
    def run(self) -> None:
        """Catch up, then apply changes until :meth:`stop`; raises NashError if the folder goes."""
        from watchdog import events
        from watchdog.observers import Observer

        # Not opens and reads: the indexer's own reads would flood the kernel queue with them.
        wanted = [
            events.FileCreatedEvent,
            events.FileModifiedEvent,
            events.FileClosedEvent,
            events.FileDeletedEvent,
            events.FileMovedEvent,
            events.DirCreatedEvent,
            events.DirDeletedEvent,
            events.DirMovedEvent,
            events.DirAttribEvent,
            events.FileAttribEvent,  # a chmod (reads change no attribute the kernel reports)
        ]

        problem = self.root_problem()
        if problem:
            raise NashError(problem)
        self._root_id = _identity(self.root)
        from nashcli.index import CollectionGoneError

        try:
            while not self.stopping:
                observer, overflow = self._observe(events, Observer, wanted)
                try:
                    # Events arriving during the catch-up pass queue up and are applied after it.
                    self._catch_up_when_free()
                    if not self.ready.is_set():
                        self.ready.set()
                        if not self.reattached:
                            self._on_ready()
                    self._loop(observer)
                    break
                except _FolderReplaced:
                    # The old folder's events are about files no longer at the watched path;
                    # the catch-up pass on the new folder brings the index level with it. Until
                    # it is done, a stop request interrupts it, as during the first one.
                    self._say(f"{self.root} was replaced by another folder; watching the new one")
                    self.ready.clear()
                    self._root_id, self._watch_lost = _identity(self.root), False
                    self.reattached += 1
                finally:
                    overflow.remove()
                    observer.stop()
                    with contextlib.suppress(RuntimeError):
                        observer.join(timeout=5)
                self._drop_queued_events()
            if self.retraining:
                self._say("stopping during a background retrain: the current model stays")
        except CollectionGoneError as error:  # `nash forget`: nothing left to keep current
            self._say(f"{error}; stopping")

    def _observe(self, events: Any, observer_class: Any, wanted: list) -> tuple[Any, _OverflowHook]:
        """Start a recursive watchdog observer on the folder, feeding :meth:`_on_event`."""
        watcher = self

        class _Handler(events.FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:  # noqa: D102
                watcher._on_event(event)

        observer = observer_class()
        overflow = _OverflowHook(lambda: self._events.put(("overflow", "", "", False)))
        try:
            observer.schedule(_Handler(), str(self.root), recursive=True, event_filter=wanted)
            observer.start()
        except OSError as error:
            if error.errno == errno.ENOSPC:  # inotify's limit on watched folders
                raise NashError(
                    f"cannot watch {self.root}: too many folders for the system's limit; "
                    "raise it with: sudo sysctl fs.inotify.max_user_watches=524288"
                ) from None
            raise NashError(f"cannot watch {self.root}: {error.strerror or error}") from None
        overflow.install()
        return observer, overflow

    def _catch_up_when_free(self) -> None:
        """The catch-up pass, waiting for a long ``nash index`` or a refit that holds the lock."""
        while not self.stopping:
            try:
                self._run_catch_up()
                return
            except IndexBusyError as error:
                self._say(f"{error}; waiting")
                self._stopping.wait(self.retry_delay)

    def _queued_now(self) -> Iterator[tuple]:
        """The events already queued, taken one at a time without waiting for more."""
        while True:
            try:
                yield self._events.get_nowait()
            except queue.Empty:
                return

    def _drop_queued_events(self) -> None:
        """Forget queued events (keeping a stop request): they came from the replaced folder."""
        for item in self._queued_now():
            if item[0] == "stop":
                self._stopping.set()

    def _look_again(self, coalescer: Coalescer, path: Path, is_dir: bool = False) -> None:
        """After a chmod of ``path``: the files skipped as unreadable there (it, or under it
        when it is a folder) are looked at again; a folder that could not be listed asks for a
        full pass, as does an ignore file (its rules may have become readable, or unreadable).

        Both are lookups (:class:`_Skips`). Every event once compared every skipped path with
        its own: a ``chmod -R`` over 2,000 skipped files took 24 s, growing with the square
        (``benchmarks/watch_chmod.py``: 0.03 s now).
        """
        if path.name in IGNORE_FILES:
            coalescer.request_rescan()
        if not self._unreadable:  # (a chmod -R or touch of a tree with nothing skipped)
            return
        found = [path] if path in self._unreadable else []
        if is_dir or _is_folder(path):
            found += sorted(self._unreadable.under(path))
        for skipped in found:
            if _is_folder(skipped):
                coalescer.request_rescan()
            else:
                coalescer.modified(skipped)
            self._unreadable.discard(skipped)

    def _remember_unreadable(self, skipped: Iterable[tuple[Path, str]]) -> None:
        """Note the skips that a chmod may mend (see :meth:`_look_again`)."""
        for path, reason in skipped:
            if reason.startswith("unreadable"):  # (a permission; not "no text", "binary")
                self._unreadable.add(path if path.is_absolute() else self.root / path)

    def _run_catch_up(self) -> None:
        problem = self.root_problem()
        if problem:
            raise NashError(problem)
        started = time.perf_counter()
        report = self._catch_up()
        self._last_pass_skipped = {
            self.root / p for p, _ in getattr(report, "skipped", ())
        }  # (for the burst's own files, looked at after it)
        if report is not None:
            self._unreadable.clear()  # (what the full pass skipped is what stands now)
            self._remember_unreadable((Path(p), r) for p, r in getattr(report, "skipped", ()))
        self._on_batch(BatchResult(Batch(rescan=True), time.perf_counter() - started, report))
        self._maybe_retrain()

    def _loop(self, observer: Any) -> None:
        coalescer = Coalescer(self._make_is_ignored())
        while not self.stopping:
            self._tick()
            wait = coalescer.due(time.monotonic(), self.quiet, self.max_delay)
            try:
                timeout = ROOT_CHECK_INTERVAL if wait is None else max(wait, 0)
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                if item[0] == "stop":
                    break
                if not self._feed(coalescer, item):
                    self._gone()
                # Drain whatever else is already queued before deciding anything.
                for item in self._queued_now():
                    if item[0] == "stop":
                        self._stopping.set()
                        break
                    if not self._feed(coalescer, item):
                        self._gone()
                continue
            wait = coalescer.due(time.monotonic(), self.quiet, self.max_delay)
            if wait is None:  # idle: make sure the folder is still there, and still watched
                if not all(emitter.is_alive() for emitter in observer.emitters):
                    self._watch_lost = True  # (watchdog ends it when the folder is deleted)
                if self._left_its_path():
                    self._gone()
                elif not observer.is_alive():
                    raise NashError(f"stopped receiving changes from {self.root}")
                continue
            if wait > 0:
                continue
            self._flush(coalescer)

    def _tick(self) -> None:
        """Call ``on_tick`` if ``HEALTH_INTERVAL`` seconds passed since the last call."""
        now = time.monotonic()
        if now - self._last_tick < HEALTH_INTERVAL:
            return
        self._last_tick = now
        try:
            self._on_tick()
        except NashError:  # a reason to stop (another watcher took the watch lock)
            raise
        except Exception as error:  # noqa: BLE001 - housekeeping must not end the watch
            log.debug("on_tick failed: %r", error)

    def _gone(self) -> None:
        """The folder vanished, changed or is no longer watched: re-attach if a folder stands
        (or soon stands) at its path, carry on if it is the same one and still watched, else
        stop with the reason. A folder deleted and made again may get the old one's inode
        number back, so a lost watch re-attaches whatever the identity says."""
        deadline = time.monotonic() + REAPPEAR_GRACE
        while self.root_problem() and time.monotonic() < deadline and not self.stopping:
            self._stopping.wait(0.05)
        if self.stopping:
            return
        problem = self.root_problem()
        if problem:
            raise NashError(problem)
        if self._replaced() or self._watch_lost:
            raise _FolderReplaced

    def _postpone(self, coalescer: Coalescer, delay: float) -> None:
        coalescer.first_event = coalescer.last_event = time.monotonic() + delay

    def _trouble(self, coalescer: Coalescer, batch: Batch, error: Exception) -> None:
        """An unexpected failure (a full disk, a damaged file): say so, retry later, in full."""
        self._backoff = min(60.0, max(self.retry_delay, 2 * self._backoff))
        what = str(error) if isinstance(error, NashError) else f"{type(error).__name__}: {error}"
        self._say(
            f"could not update the index ({what}); "
            f"trying again with a full pass in {self._backoff:g} s"
        )
        self._requeue(coalescer, batch)
        coalescer.request_rescan()
        self._postpone(coalescer, self._backoff)

    def _flush(self, coalescer: Coalescer) -> None:
        # During a refit the changes wait: applied now with the old model, the refit's switch
        # would encode them again with the new one (what other writers did meanwhile is redone).
        if self.retraining:
            self._postpone(coalescer, self.retry_delay)
            return
        # Never apply changes seen under a folder that has left its path: a folder renamed away
        # still sends its files' events under the old paths, where nothing is (each would be a
        # deletion), and a new folder there is not the one they happened in.
        if self._left_its_path():
            self._gone()  # returns only if the same folder is back, still watched...
            if self.stopping:  # ...or on a stop while waiting: the next start catches up
                return
        batch = coalescer.take()
        if batch.rescan:
            try:
                self._run_catch_up()  # (it stops with the reason if the folder went meanwhile)
            except IndexBusyError:
                self._requeue(coalescer, batch)
                return
            except Exception as error:  # noqa: BLE001 - a daemon reports and carries on...
                if not _passing(error):  # ...unless the watch itself cannot go on
                    raise
                self._trouble(coalescer, batch, error)
                return
            self._backoff = 0.0
            coalescer.is_ignored = self._make_is_ignored()
            # The pass trusts size and mtime; a file seen written in this burst is hashed as it
            # would be in any other (`cp -p`, `rsync -t` keep both): it is looked at next.
            for path in batch.upserts:
                if path not in self._last_pass_skipped and not coalescer.is_ignored(path, False):
                    coalescer.modified(path)  # (one the pass skipped was reported: no twice)
            return
        skipped: list[tuple[Path, str]] = []
        admitted = []
        for path in batch.upserts:
            refusal = self._admit(path)
            if refusal is None:
                admitted.append(path)
            elif paths.may_be_there(path):  # (one that vanished meanwhile is no news)
                skipped.append((path, refusal.reason))
                if refusal.excluded and _storable(path):  # past --max-size, emptied: stale
                    batch.deletions.append(path)
        batch.upserts = admitted
        self._unreadable.difference_update(admitted)
        self._remember_unreadable(skipped)
        if skipped:
            self._on_batch(BatchResult(Batch(), 0.0, None, skipped))
        chunks = list(batch.chunks(self.batch_size))
        for done, chunk in enumerate(chunks):
            started = time.perf_counter()
            try:
                report = self._apply(chunk.upserts, chunk.deletions, chunk.moves)
            except IndexBusyError as error:
                # The rest waits too, in its order: a move onto a name comes after the move
                # out of it, and another writer holds the lock for the next chunks as well.
                self._say(f"{error}; retrying in {self.retry_delay:g} s")
                for later in chunks[done:]:
                    self._requeue(coalescer, later)
                return
            except Exception as error:  # noqa: BLE001 - as above
                if not _passing(error):
                    raise
                self._trouble(coalescer, chunk, error)
                return
            self._backoff = 0.0
            self._remember_unreadable((Path(p), r) for p, r in getattr(report, "skipped", ()))
            self._on_batch(BatchResult(chunk, time.perf_counter() - started, report))
        self._maybe_retrain()

    def _requeue(self, coalescer: Coalescer, batch: Batch) -> None:
        """Put a batch that could not be applied back, to be tried after ``retry_delay``."""
        coalescer.put_back(batch, time.monotonic() + self.retry_delay)

    @property
    def retraining(self) -> bool:
        """Whether a background retrain is running."""
        return self._retrain_thread is not None and self._retrain_thread.is_alive()

    def _maybe_retrain(self) -> None:
        if self._retrain is None or self._retrain_due is None or self.retraining:
            return
        try:
            due = self._retrain_due()
        except NashError:
            return
        if not due:
            return
        self._say("retraining the model in the background")

        def _work() -> None:
            try:
                outcome = self._retrain()
                if outcome is False:
                    self._say("no retrain needed: another nash process has just retrained it")
                    return
                if isinstance(outcome, RefitOutcome):  # (its pass's changes: said, not hidden)
                    self._say(f"no retrain needed after all ({outcome.summary()})")
                    return
                self.retrains += 1
                # (what the refit's own pass found: the changes it took up are in no other line)
                found = f" ({outcome})" if isinstance(outcome, str) and outcome else ""
                self._say(f"retrained: new documents are encoded with the new model{found}")
                # A full pass: what the refit left out unread (it ran in another process) is
                # noted here, to be looked at again when a chmod makes it readable.
                self._events.put(("rescan", "", "", False))
            except RefitKilled as error:
                if not self.stopping:  # (stopping ends the refit child: already said so)
                    self._say(f"retrain failed: {error}")
            except NashError as error:
                self._say(f"retrain failed: {error}")
            finally:
                self._events.put(("wake", "", "", False))  # apply what queued up meanwhile

        self._retrain_thread = threading.Thread(target=_work, name="nash-retrain", daemon=True)
        self._retrain_thread.start()

    def wait_for_retrain(self, timeout: float | None = None) -> bool:
        """Block until a running background retrain ends; True if none is running afterwards."""
        thread = self._retrain_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True


class _OverflowHook(logging.Handler):
    """watchdog tells of a kernel event-queue overflow only in a log warning: rescan on it."""

    LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        if "overflow" in record.getMessage().lower():
            self._callback()

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


# --------------------------------------------------------------------------------------------
# The same rules as `nash index`, and the wiring to the index
# --------------------------------------------------------------------------------------------


def ignore_rules(root: Path) -> IgnoreFn:
    """``is_ignored(path, is_dir)`` with :func:`nashcli.corpus.crawl`'s rules, for single paths.

    :class:`nashcli.corpus.IgnoreMatcher` (hidden names, ``.gitignore`` / ``.nashignore`` rules,
    suffixes that are no document type; build a new one after an ignore file changes). Symlinks
    are not ignored here but refused when a batch is applied (:func:`document_problem`), as
    ``nash index`` lists them: a link that replaced an indexed file takes its entry away.
    """
    return corpus.IgnoreMatcher(root).is_ignored


def document_problem(path: Path, max_bytes: int | None = None):
    """Why ``path`` is not indexed (a :class:`corpus.Skipped`: empty, binary, over
    ``max_bytes``, unreadable), or None: crawl's checks."""
    checked = corpus.check_file(path, max_bytes=max_bytes or corpus.DEFAULT_MAX_BYTES)
    return checked if isinstance(checked, corpus.Skipped) else None


def collection_for(target: str | Path) -> tuple[str, Path | None]:
    """(collection name, folder) for a folder path or a collection name.

    A folder that some collection indexes gives that collection (whatever its name); another
    folder gives the name ``nash index`` would choose; a name of an existing collection gives it.
    """
    from nashcli.index import Collection, collection_of, name_for_folder

    path, found = paths.look_at(target)
    if found is not None and stat.S_ISDIR(found.st_mode):
        root = path.resolve()
        return collection_of(root) or name_for_folder(root), root
    if Collection.exists(str(target)):
        return str(target), Collection.open(str(target)).root
    if found is not None:  # a file: watchers watch folders
        raise NashError(f"{target}: is a file; give the watched folder or the collection's name")
    gone = Path(os.path.abspath(path))
    recorded = collection_of(gone)  # the folder of a collection, gone (moved, unplugged)
    if recorded is not None:
        return recorded, gone
    raise NashError(f"{target}: no such folder or collection")


def running_watcher_of(target: str) -> str | None:
    """The running watcher that ``target`` names (its collection's name, or the folder its pid
    file records), found without opening the collection, which may be damaged."""
    folder = paths.expand_user(target).resolve()
    for each in watched_names():
        info = read_pid_file(each) or {}
        if each == target or (info.get("root") and Path(str(info["root"])) == folder):
            return each
    return None


def watch_target(path: str, name: str | None, bits: int | None) -> tuple[str, Path, bool]:
    """(collection name, folder, already indexed) that ``nash watch PATH [--name] [--bits]``
    means, or one NashError line on why it cannot watch it: checked before the watcher says
    "watching ...", as ``nash index`` would refuse the same folder, name or code length."""
    from nashcli.corpus import check_root
    from nashcli.index import Collection, collection_of, same_folder, validate_name
    from nashcli.names import shell_quote

    _, found = paths.look_at(path)
    if found is not None and not stat.S_ISDIR(found.st_mode):
        raise NashError(f"{path}: is a file; nash watch keeps a folder indexed")
    if found is not None:  # /proc, a path not valid UTF-8
        check_root(Path(os.path.abspath(paths.expand_user(path))))
    found_name, root = collection_for(path)
    if root is None or not root.is_dir():
        if root is not None and Collection.exists(found_name):
            raise NashError(
                f"the folder of collection {found_name!r}, {root}, is gone; if it moved, run: "
                f"nash index NEW-PLACE --name {found_name}"
            )
        raise NashError(f"{path}: no such folder")

    holder = collection_of(root)
    if name is not None and holder is not None and name != holder:  # as nash index refuses it
        raise NashError(
            f"{root} is already indexed as collection {holder!r}: nash watch "
            f"{shell_quote(root)} keeps it current (to index it under another name, "
            f"first: nash forget {holder})"
        )
    name = name or found_name
    validate_name(name)

    existing = Collection.open(name) if Collection.exists(name) else None
    recorded = existing.root if existing is not None else root
    if existing is not None and bits is not None and bits != existing.bits:
        raise NashError(
            f"collection {name!r} uses {existing.bits}-bit codes; to re-encode it with {bits} "
            f"bits, first run: nash index {shell_quote(root)} --bits {bits} --retrain"
        )
    if same_folder(recorded, root):  # (its path, now a link here: watched as indexed)
        return name, recorded, existing is not None
    if not recorded.exists():  # its folder moved here? nash index re-points it
        raise NashError(
            f"collection {name!r} indexes {recorded}, which is not there now; to move it "
            f"here, first run: nash index {shell_quote(root)} --name {name}"
        )
    if os.path.normpath(path) == name:  # a folder here named as the collection meant?
        raise NashError(
            f"{path!r} is a folder here that no collection indexes, and collection {name!r} "
            f"indexes {recorded}: to watch that, run: nash watch {shell_quote(recorded)}; "
            f"to watch this folder, give it another name with --name"
        )
    raise NashError(
        f"collection {name!r} already indexes {recorded}; choose another name with --name"
    )


class _Notes:
    """An ``indexing.Reporter`` for a watcher: no bars, its notes go to the watcher's log."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self._say = say

    def progress(self, phase: str, completed: int, total: int | None) -> None:
        pass

    def note(self, message: str) -> None:
        self._say(message)


def make_watcher(
    root: Path,
    name: str,
    *,
    bits: int | None = None,
    device: str = "auto",
    hasher_options: dict | None = None,
    reporter: Any = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    on_message: Callable[[str], None] | None = None,
    on_ready: Callable[[], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    quiet: float = DEFAULT_QUIET,
    max_delay: float = DEFAULT_MAX_DELAY,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_timeout: float = 2.0,
) -> Watcher:
    """A :class:`Watcher` of ``root`` wired to collection ``name`` through :mod:`nashcli.indexing`.

    The catch-up pass is ``index_folder`` (it creates the collection on first use; a refit it
    makes due is left to ``retrain``); each chunk is ``apply_changes`` (new and changed
    documents are encoded with the current model, moves re-pathed, deletions dropped);
    ``retrain_due`` decides when a background ``index_folder`` in a child process fits a new
    model and switches generations.
    """
    from nashcli import indexing
    from nashcli.index import Collection, CollectionGoneError

    root = Path(root).expanduser().resolve()
    reporter = reporter or _Notes(on_message or log.info)  # a wait for another's fit is logged
    due = threading.Event()  # set by the last report, so asking costs no extra query
    indexed = threading.Event()  # the first pass is done: a missing collection was forgotten
    hashers = indexing.HasherCache()  # the model, loaded once per generation, not per update
    max_bytes: int | None = None  # the collection's --max-size, read at most once a second
    read_at = 0.0

    def admit(path: Path):
        nonlocal max_bytes, read_at
        if time.monotonic() - read_at > 1.0:  # a `nash index --max-size` may have changed it
            read_at = time.monotonic()  # (a failing read is not retried for every file)
            with contextlib.suppress(NashError, OSError):
                max_bytes = Collection.open(name).max_bytes
        return document_problem(path, max_bytes)

    def catch_up() -> Any:
        report = indexing.index_folder(
            root,
            name=name,
            bits=bits,
            device=device,
            reporter=reporter,
            hasher_options=hasher_options,
            lock_timeout=lock_timeout,
            hashers=hashers,
            create=not indexed.is_set(),
            refit=False,  # (a refit it makes due runs in a child process: _maybe_retrain)
        )
        indexed.set()
        due.set() if report.retrain_due else due.clear()
        _warm_up(name, hashers, device)
        return report

    def apply(upserts: Sequence[Path], deletions: Sequence[Path], moves: Sequence) -> Any:
        if not Collection.exists(name):
            raise CollectionGoneError(name)
        report = indexing.apply_changes(
            name,
            upserts=upserts,
            deletions=deletions,
            moves=moves,
            device=device,
            lock_timeout=lock_timeout,
            hashers=hashers,
        )
        due.set() if report.retrain_due else due.clear()
        return report

    def retrain_due() -> bool:
        return due.is_set() and indexing.retrain_due(Collection.open(name))

    def retrain() -> str | bool | RefitOutcome:
        outcome = refit_in_subprocess(root, name, device, hasher_options)
        due.clear()
        if outcome.retrained:
            return outcome.summary()
        # Not due when the child looked: retrained by another process meanwhile, or the
        # changes that made it due were gone by the child's own pass (then it found changes).
        return outcome if outcome.added or outcome.updated or outcome.deleted else False

    return Watcher(
        root,
        apply=apply,
        catch_up=catch_up,
        make_is_ignored=lambda: ignore_rules(root),
        admit=admit,
        retrain_due=retrain_due,
        retrain=retrain,
        on_batch=on_batch,
        on_message=on_message,
        on_ready=on_ready,
        on_tick=on_tick,
        quiet=quiet,
        max_delay=max_delay,
        batch_size=batch_size,
    )


def exit_when_orphaned(parent: int | None = None, interval: float = 1.0) -> threading.Thread:
    """In a child process: exit as soon as its parent (pid ``parent``, by default the current
    parent) is gone, which re-parents the child.

    A refit whose watcher was killed (``kill -9`` leaves children running) would otherwise train
    on unseen, race the retrain of the next watcher or ``nash index``, and write a traceback
    into the log when it found no one to report to. Its half-written generation is debris that
    the next writer sweeps, as after any crash. (On Windows a child keeps its parent's pid as
    ``getppid()`` after the parent dies: there the guard never fires.)"""
    parent = os.getppid() if parent is None else parent

    def guard() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(3)

    thread = threading.Thread(target=guard, name="exit-when-orphaned", daemon=True)
    thread.start()
    return thread


def _refit_main() -> None:
    """The refit child's entry point: read its request (JSON) on stdin, refit the model on the
    whole folder where that is still due, print the outcome (JSON: whether it retrained)."""
    # Ignored from the first line on, though a terminal's Ctrl-C no longer reaches this process
    # (its own process group): a `kill -INT` of it would otherwise print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    line = sys.stdin.readline()
    if not line:  # the watcher is gone before it said what to do
        return
    request = json.loads(line)
    exit_when_orphaned(request["parent"])  # the watcher may be killed while this starts up
    # What another process's "training" message names (the lock's holder file): the watch
    # this refit belongs to, not a bare "nash".
    sys.argv = ["nash", "watch", request["root"]]
    # The outcome is the only line on the pipe: the fit's own output, Python's or a native
    # library's on file descriptor 1, goes to stderr.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from nashcli import indexing

    with contextlib.suppress(OSError, AttributeError):
        os.nice(5)  # a background job: queries and the watcher come first
    try:
        report = indexing.index_folder(
            Path(request["root"]),
            name=request["name"],
            device=request["device"],
            hasher_options=request["hasher_options"],
            lock_timeout=60.0,
            create=False,
        )
        outcome = {
            "retrained": report.retrained,
            "documents": report.documents,
            "added": report.added,
            "updated": report.updated,
            "deleted": report.deleted,
        }
    except Exception as error:  # noqa: BLE001 - reported by the parent
        outcome = {"error": str(error) if isinstance(error, NashError) else repr(error)}
    with contextlib.suppress(OSError):  # (a broken pipe: the watcher is gone, no one to tell)
        out.write(json.dumps(outcome) + "\n")
        out.flush()


@dataclass
class RefitOutcome:
    """What a refit child did: whether it retrained, and what its own pass over the folder
    found changed since the index it started from (changes the watcher had not applied yet,
    which it takes up: the watcher's log names them nowhere else)."""

    retrained: bool
    documents: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0

    def summary(self) -> str:
        """``"400 documents; its pass found 90 added, 20 removed"``, for the watcher's log."""
        found = ", ".join(
            f"{n:,} {what}"
            for n, what in (
                (self.added, "added"),
                (self.updated, "updated"),
                (self.deleted, "removed"),
            )
            if n
        )
        return f"{self.documents:,} documents" + (f"; its pass found {found}" if found else "")


class RefitKilled(NashError):
    """The refit child ended by a signal: the watcher's own stop (SIGTERM as it exits), or
    someone else's kill, or the system's out-of-memory killer."""


def refit_in_subprocess(
    root: Path, name: str, device: str = "auto", hasher_options: dict | None = None
) -> RefitOutcome:
    """A due retrain: ``index_folder`` in a child process; whether it retrained, and what its
    pass over the folder found.

    The child decides again whether the retrain is due, so that where another process (a `nash
    index`) retrained the collection meanwhile, or while the child waited for its turn to train,
    it updates the index with that model instead of fitting one more.

    A child, not a thread: the fit's memory (hundreds of MB of activations and allocator arenas)
    goes back to the system when it exits, so a long-running watcher stays small, and the fit
    does not compete with the watch loop for the interpreter. The child runs in a process group
    of its own, so a Ctrl-C at the terminal stops the watcher, which then ends the child, and
    never the child itself (a `multiprocessing` child, in the terminal's group, printed a
    KeyboardInterrupt traceback when the Ctrl-C came in the first few tenths of a second, before
    it could ignore it). Raises NashError if it fails.
    """
    request = {
        "root": str(root),
        "name": name,
        "device": device,
        "hasher_options": hasher_options,
        "parent": os.getpid(),
    }
    line = json.dumps(request).encode() + b"\n"
    child = subprocess.Popen(
        [sys.executable, "-c", "from nashcli.watching import _refit_main; _refit_main()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
        **apart_from_terminal(),
    )
    # The watcher exiting (Ctrl-C, `nash watch --stop`) ends the refit: its thread is a daemon.
    end_child = functools.partial(_end, child)
    atexit.register(end_child)
    try:
        answer, _ = child.communicate(line)
    finally:
        atexit.unregister(end_child)
    if child.returncode < 0:
        raise RefitKilled(f"the refit process was ended by signal {-child.returncode}")
    try:
        outcome = json.loads(answer)
    except ValueError:  # it died without a word (out of memory, the orphan guard)
        raise NashError(f"the refit process ended with exit code {child.returncode}") from None
    if "error" in outcome:
        raise NashError(str(outcome["error"]))
    return RefitOutcome(
        bool(outcome["retrained"]),
        **{key: int(outcome.get(key, 0)) for key in ("documents", "added", "updated", "deleted")},
    )


def _end(child: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate ``child`` and wait for it (kill it if it lingers)."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _warm_up(name: str, hashers: Any, device: str = "auto") -> None:
    """Load the collection's current model into ``hashers`` (an ``indexing.HasherCache``), so
    the first change is not also the first model load (seconds on a busy machine where the
    model needs torch); later updates reuse it until the generation changes."""
    from nashcli.index import Collection

    with contextlib.suppress(NashError, OSError):
        collection = Collection.open(name)
        with collection.snapshot() as snap:
            if snap.generation:
                hashers.get(collection.directory, snap.generation, snap.model_dir, device)


# --------------------------------------------------------------------------------------------
# Who watches what: a lock held for the watcher's lifetime, and a pid file beside it
# --------------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    """``name`` as it appears in file names (a valid collection name is unchanged)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _state_path(name: str, suffix: str) -> Path:
    return paths.state_dir() / f"watch-{_safe_name(name)}.{suffix}"


def pid_file(name: str) -> Path:
    """Where the watcher of collection ``name`` writes its pid, root, start time and log path."""
    return _state_path(name, "pid")


def log_file(name: str) -> Path:
    """Where a background watcher of collection ``name`` writes its output."""
    return paths.log_dir() / f"watch-{_safe_name(name)}.log"


def process_identity(pid: int) -> str | None:
    """Something that tells this process apart from a later one given the same pid.

    The process start time: from ``/proc`` on Linux (ticks since boot), else from psutil if it is
    installed. None when the process does not exist or no source is available.
    """
    proc_stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = proc_stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return f"proc:{fields[19]}"  # field 22 of stat(5): starttime; fields[0] is field 3
    try:
        import psutil
    except ImportError:
        return None
    try:
        return f"psutil:{psutil.Process(pid).create_time():.3f}"
    except (psutil.Error, OSError):
        return None


def _same_process(info: dict) -> bool:
    """Whether the pid in a pid file still names the process that wrote it."""
    try:
        pid = int(info.get("pid", 0))
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    recorded = info.get("identity")
    current = process_identity(pid)
    if isinstance(recorded, str) and current and recorded.split(":")[0] == current.split(":")[0]:
        return recorded == current
    from nashcli.index import pid_alive

    return pid_alive(pid)  # no way to compare start times here: liveness is all we know


def read_pid_file(name: str) -> dict | None:
    """The pid file's content (pid, name, root, started, log, identity); None if it is missing
    or damaged."""
    try:
        info = json.loads(pid_file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _lock_busy(name: str) -> bool | None:
    """True if some process holds the watch lock of ``name``; None if it cannot be probed."""
    from filelock import FileLock, Timeout

    lock_path = _state_path(name, "lock")
    if not lock_path.exists():
        return False
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return None
    lock.release()
    return False


def is_watching(name: str) -> bool:
    """Whether a live watcher keeps collection ``name`` current.

    The truth is the watch lock, which its watcher holds while it lives and the OS drops when it
    dies (even by SIGKILL), so a stale pid file, whether its pid is dead or reused by another
    process, reads as "not watching". Where the lock cannot be probed, the pid file's process
    start time is compared with the live process's.
    """
    busy = _lock_busy(name)
    if busy is not None:
        return busy
    info = read_pid_file(name)
    return bool(info) and _same_process(info)


def watched_names() -> list[str]:
    """Collections that have a live watcher, whether or not its pid file is still there.

    A watcher whose pid file was deleted or garbled still holds its lock ``watch-<name>.lock``;
    its collection is known by that file's name (valid collection names are file names as is).
    """
    state = paths.state_dir()
    names = []
    for path in sorted(state.glob("watch-*.pid")):
        try:
            name = json.loads(path.read_text(encoding="utf-8"))["name"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(name, str) and name not in names and is_watching(name):
            names.append(name)
    known = {_safe_name(name) for name in names}
    for path in sorted(state.glob("watch-*.lock")):
        safe = path.name[len("watch-") : -len(".lock")]
        if safe and safe not in known and _lock_busy(safe):
            names.append(safe)
    return sorted(names)


# ---- which process holds a watch lock: for `--stop` when the pid file is gone or garbled


def _has_open(pid: int, target: os.stat_result) -> bool | None:
    """Whether process ``pid`` has the file ``target`` open (``/proc``); None if not readable."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    except OSError:
        return None
    for fd in fds:
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def _lock_holders(lock: Path) -> list[int] | None:
    """Pids of the processes that hold the watch lock ``lock``; None where nash cannot tell.

    Linux: ``/proc/locks`` names the process holding the flock on the file's inode (confirmed
    by its open files where readable), else every process with the file open (``/proc/*/fd``).
    Elsewhere psutil's open files when it is installed, else None.
    """
    try:
        target = lock.stat()
    except OSError:
        return []
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        table = ""
    holders = []
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146518 0 EOF"; a waiter's line has a "->"
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid, inode = int(fields[4]), int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if pid > 0 and inode == target.st_ino and _has_open(pid, target) is not False:
            holders.append(pid)
    if holders:
        return holders
    if Path("/proc/self/fd").is_dir():
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and _has_open(int(entry.name), target):
                holders.append(int(entry.name))
        return holders
    try:
        import psutil
    except ImportError:
        return None
    for process in psutil.process_iter():
        try:
            files = process.open_files()
        except (psutil.Error, OSError):
            continue
        for opened in files:
            with contextlib.suppress(OSError):
                st = os.stat(opened.path)
                if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                    holders.append(process.pid)
                    break
    return holders


def _command_line(pid: int) -> list[str] | None:
    """The arguments process ``pid`` was started with, or None where they cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        raw = None
    if raw:
        return [os.fsdecode(arg) for arg in raw.split(b"\0") if arg]
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).cmdline() or None
    except (psutil.Error, OSError):
        return None


def _is_nash_watch(pid: int) -> bool | None:
    """Whether process ``pid`` runs ``nash watch`` (not ``--stop``); None if nash cannot tell."""
    args = _command_line(pid)
    if args is None:
        return None
    return "watch" in args and "--stop" not in args and any("nash" in arg for arg in args)


def _find_watcher(name: str, info: dict | None) -> int:
    """The pid of the watcher of ``name``: the process holding its lock, which runs ``nash
    watch``; else the pid file's, if that process's start time is the one recorded.

    Raises NashError, with what to do instead, when nash cannot be sure: nothing but a watcher
    of ``name`` is ever signalled (pids get reused).
    """
    lock = _state_path(name, "lock")
    recorded = 0
    with contextlib.suppress(TypeError, ValueError):
        recorded = int((info or {}).get("pid", 0))
    holders = _lock_holders(lock)
    if holders:
        others = [pid for pid in holders if pid != os.getpid()]
        watchers = [pid for pid in others if _is_nash_watch(pid)]
        if recorded in watchers:
            return recorded
        if len(watchers) == 1:
            return watchers[0]
        suspects = watchers or others
        if suspects:
            pid = suspects[0]
            which = "pid " + ", ".join(str(p) for p in suspects)
            raise NashError(
                f"collection {name!r} is watched by {which}, which nash cannot confirm is its "
                f"watcher; if `ps -o args= -p {pid}` shows a nash watch, stop it with: kill {pid}"
            )
    if recorded > 0 and info is not None and _same_process(info):
        identity = process_identity(recorded)
        strong = bool(identity and info.get("identity") == identity)
        if (strong or holders is None) and _is_nash_watch(recorded) is not False:
            return recorded
    raise NashError(
        f"collection {name!r} is being watched, but its pid file {pid_file(name)} is missing or "
        f"damaged and nash cannot tell which process holds {lock}; find it with: "
        f"fuser -v {lock} (or: lsof {lock}), then stop it with: kill PID"
    )


#: Size past which a background watcher moves its log to ``LOG.1`` (dropping the one there)
#: and goes on in a new one: a watcher left running for months keeps two logs at most.
LOG_ROTATE_BYTES = 8 * 2**20


def rotate_log(log: Path, fds: Sequence[int], limit: int = LOG_ROTATE_BYTES) -> bool:
    """Move ``log`` to ``LOG.1`` and point ``fds`` (the output that goes to it) at a new
    ``log`` once it is larger than ``limit``; whether it did. Nothing happens unless ``fds[0]``
    still writes to ``log`` (a log removed or replaced by hand is left alone)."""
    try:
        st = os.fstat(fds[0])
        if st.st_size <= limit or not os.path.samestat(st, os.stat(log)):
            return False
        os.replace(log, log.with_name(f"{log.name}.1"))
        new = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:  # (a full disk, a log folder gone: it goes on where it writes now)
        return False
    try:
        with contextlib.suppress(OSError):
            os.write(
                new,
                f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} continued from {log.name}.1\n".encode(),
            )
        for fd in fds:
            os.dup2(new, fd)
    finally:
        os.close(new)
    return True


class Registration:
    """Hold the watch lock of a collection and advertise the watcher in its pid file.

    Raises NashError if another live watcher already holds it.
    """

    def __init__(self, name: str, root: Path, *, log: Path | None = None) -> None:
        self.name, self.root, self.log = name, Path(root), log
        self._lock: Any = None
        self._info: dict = {}

    def __enter__(self) -> Registration:
        from filelock import FileLock, Timeout

        paths.ensure_dir(paths.state_dir())
        lock = FileLock(str(_state_path(self.name, "lock")))
        try:
            # A short wait: `nash status` probes this lock for an instant.
            lock.acquire(timeout=2)
        except Timeout:
            info = read_pid_file(self.name) or {}
            pid = f" (pid {info['pid']})" if "pid" in info else ""
            raise NashError(
                f"collection {self.name!r} is already being watched{pid}; "
                f"stop it with: nash watch --stop {self.name}"  # (a name needs no quoting)
            ) from None
        except OSError as error:  # a read-only disk, another user's data directory
            raise NashError(
                f"cannot watch collection {self.name!r}: {error.strerror or error} "
                f"({paths.state_dir()})"
            ) from None
        self._lock = lock
        self._lock_id = _identity(Path(lock.lock_file))
        self._info = {
            "pid": os.getpid(),
            "identity": process_identity(os.getpid()),
            "name": self.name,
            "root": str(self.root),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "log": str(self.log) if self.log else None,
            "ready": False,
        }
        self._write()
        return self

    def _write(self) -> None:
        target = pid_file(self.name)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._info), encoding="utf-8")
        os.replace(tmp, target)

    def refresh(self) -> None:
        """Take the watch lock again and write the pid file again if either went missing or was
        replaced (deleted or garbled by hand): ``nash status``, ``nash forget`` and ``--stop``
        read them, and a second watcher would start beside this one without the lock file.

        Raises NashError if another process took the re-made lock file meanwhile (a second
        watcher started in between): two watchers must not write one collection.
        """
        if self._lock is None:
            return
        self._keep_lock()
        if read_pid_file(self.name) != self._info:
            with contextlib.suppress(OSError):
                paths.state_dir().mkdir(parents=True, exist_ok=True)
                self._write()
        if self.log is not None:  # (a background watcher: its output is the log)
            sys.stdout.flush()
            rotate_log(self.log, (sys.stdout.fileno(), sys.stderr.fileno()))

    def _keep_lock(self) -> None:
        from filelock import FileLock, Timeout

        path = Path(self._lock.lock_file)
        if _identity(path) == self._lock_id:
            return
        lock = FileLock(str(path))
        try:
            paths.state_dir().mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=1)  # a `nash status` probe holds it for an instant
        except Timeout:
            raise NashError(
                f"the watch lock {path} was deleted and another process took it (another "
                f"watcher of {self.name!r}?); see: nash status"
            ) from None
        except OSError as error:
            log.debug("cannot re-make the watch lock %s: %r", path, error)
            return
        self._lock.release()  # held on the deleted file: nobody else can see it
        self._lock, self._lock_id = lock, _identity(path)

    def mark_ready(self) -> None:
        """Note in the pid file that the catch-up pass is done (``start_detached`` waits on it)."""
        if self._lock is not None:
            self._info["ready"] = True
            self._write()

    def __exit__(self, *exc: object) -> None:
        info = read_pid_file(self.name)
        if info and info.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                pid_file(self.name).unlink()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# --------------------------------------------------------------------------------------------
# Background watchers: start, stop
# --------------------------------------------------------------------------------------------


def apart_from_terminal(detached: bool = False) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that keep a child out of the terminal's process group,
    which a Ctrl-C there signals; ``detached``: without a console too (Windows)."""
    if os.name == "posix":
        return {"start_new_session": True}
    flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # pragma: no cover - Windows
    if detached:  # pragma: no cover - Windows
        flags |= getattr(subprocess, "DETACHED_PROCESS", 0)
    return {"creationflags": flags}  # pragma: no cover - Windows


@contextlib.contextmanager
def _opened_log(log_path: Path, argv: Sequence[str]) -> Iterator[BinaryIO]:
    """The watcher's log, open for appending, its first line written (a full disk: one line
    that names the log, not a bare "No space left on device")."""
    header = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} nash {' '.join(argv)}"
    try:
        out = open(log_path, "ab")  # noqa: SIM115 - closed below
        try:
            out.write(f"{visible(header)}\n".encode())  # (a folder's name may hold a newline)
            out.flush()
        except BaseException:
            out.close()
            raise
    except OSError as error:
        reason = error.strerror or error
        raise NashError(f"cannot write the watcher's log {log_path}: {reason}") from None
    with out:
        yield out


def start_detached(
    name: str, argv: Sequence[str], *, timeout: float = 60.0, settle: float = 3.0
) -> tuple[int, Path, bool]:
    """Run ``nash <argv>`` (a foreground ``nash watch``) in its own session, output to its log.

    Returns (pid, log path, caught up) once the child holds the watch lock and has either caught
    up or kept running for ``settle`` seconds (a first index can take minutes); raises NashError
    with the last line of its log if it exits before.
    """
    if is_watching(name):
        info = read_pid_file(name) or {}
        raise NashError(
            f"collection {name!r} is already being watched (pid {info.get('pid', '?')}); "
            f"stop it with: nash watch --stop {name}"
        )
    log_path = log_file(name)
    paths.ensure_dir(log_path.parent)
    if log_path.exists() and not log_path.is_file():
        raise NashError(f"{log_path}: is in the way of the watcher's log (not a file)")
    # Through the `nash` script where it was started by it, so that `ps` and `pgrep -f "nash
    # watch"` find the background watcher (as `python -c ...` they did not).
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "nash" and os.path.isfile(script):
        launcher = [sys.executable, script]
    else:  # (nash run from Python, or a Windows nash.exe, which Python cannot run)
        launcher = [sys.executable, "-c", "from nashcli.cli import main; main()"]
    with _opened_log(log_path, argv) as out:
        child = subprocess.Popen(
            [*launcher, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            **apart_from_terminal(detached=True),
        )
    deadline = time.monotonic() + timeout
    registered = None
    while time.monotonic() < deadline:
        info = read_pid_file(name)
        if child.poll() is not None:
            # (the log shows names escaped)
            reason = from_visible(_last_line(log_path).removeprefix("nash: error: "))
            raise NashError(f"the background watcher exited: {reason}")
        if info and info.get("pid") == child.pid and is_watching(name):
            if info.get("ready"):
                return child.pid, log_path, True
            registered = registered or time.monotonic()
            if time.monotonic() - registered >= settle:
                return child.pid, log_path, False
        time.sleep(0.05)
    raise NashError(f"the background watcher did not start within {timeout:g} s; see {log_path}")


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [line for line in lines if line]
    return lines[-1] if lines else "(empty log)"


def stop_watching(name: str, *, timeout: float = 30.0) -> int | None:
    """Ask the watcher of ``name`` to stop (SIGTERM) and wait for it; its pid, or None if none ran.

    A stale pid file (dead or reused pid) is removed and never signalled. The watcher is found
    by its lock (:func:`_find_watcher`), so a deleted or garbled pid file does not hide it;
    NashError if nash cannot tell which process it is.
    """
    info = read_pid_file(name)
    if not is_watching(name):
        with contextlib.suppress(OSError):
            pid_file(name).unlink()  # stale, or damaged: nobody holds the lock
        return None
    try:
        pid = _find_watcher(name, info)
    except NashError:
        if not is_watching(name):  # it ended meanwhile (or the lock was only probed)
            return None
        raise
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended on its own meanwhile
        return pid
    except PermissionError:
        raise NashError(f"not allowed to stop the watcher of {name!r} (pid {pid})") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_watching(name):
            left = read_pid_file(name)  # the watcher removes its own; a garbled one stays
            if left is None or left.get("pid") == pid or not _same_process(left):
                with contextlib.suppress(OSError):
                    pid_file(name).unlink()
            return pid
        time.sleep(0.05)
    raise NashError(f"the watcher of {name!r} (pid {pid}) has not stopped after {timeout:g} s")
