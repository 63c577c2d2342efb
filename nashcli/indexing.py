"""Keeping a collection's index in step with its folder: `nash index` and the watcher's updates.

``index_folder`` crawls a folder and brings the index up to date: unchanged files (same size and
mtime) are not even read; files whose bytes changed but whose text did not (same content hash)
only get their stat updated; new and changed files are encoded with the current model and
appended; files that disappeared are tombstoned; a file that reappears elsewhere with the same
text is re-pathed without encoding. The first run, ``--retrain``, or :func:`retrain_due` fit the
features and the model afresh and write a new generation. Work is committed in batches, so a
killed run keeps what it finished and the next run does the rest.

A damaged collection (``index.DamagedCollectionError``) is rebuilt from the folder by any run,
with or without ``--retrain``: damaged generation files get a new generation (what ``--retrain``
writes); a damaged ``meta.sqlite`` gets a whole new collection built aside and then put in place.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from nashcli import codes
from nashcli.documents import reader_of
from nashcli.errors import IndexBusyError, NashError
from nashcli.index import (
    Collection,
    CollectionGoneError,
    DamagedCollectionError,
    DocMeta,
    DocRow,
    Snapshot,
    Writer,
    collection_of,
    collections_dir,
    list_collections,
    name_for_folder,
    refused_write,
    same_folder,
    training_turn,
    validate_name,
)
from nashcli.names import shell_quote
from nashcli.paths import look_at, may_be_there, moves_in_order

#: A model is retrained on its own once the rows encoded since it was fitted (new and changed
#: documents) reach this share of the documents it was fitted on (see README, "When the model
#: is retrained", and ``benchmarks/collections.py --retrain-study`` for the measurement).
RETRAIN_GROWTH = 0.5
#: ... but tiny collections retrain sooner: a model fitted on fewer documents than
#: ``SMALL_COLLECTION`` is refitted once the collection has grown by ``SMALL_GROWTH`` (a
#: quarter; fitting a few hundred is seconds).
SMALL_COLLECTION = 1000
SMALL_GROWTH = 0.25
#: How a retrain's reason begins when it rebuilt a damaged collection (news a watcher repeats).
REBUILT = "rebuilt from the folder"
#: Tombstoned rows are dropped by rewriting the generation once they exceed this share of rows.
COMPACT_SHARE = 0.3
#: Documents read, encoded and committed per batch (a killed run keeps finished batches).
BATCH = 512
CHANGES_KEPT = 50  # per-document changes an IndexReport lists (its counts count them all)
#: How long a writer waits for another one (a watcher's update, a `nash index`) to finish.
LOCK_TIMEOUT = 10.0
#: How long a retrain waits to switch generations: its minutes of training are not thrown away
#: because another writer's batch (hundreds of files being encoded) held the lock for 10 s.
SWITCH_TIMEOUT = 120.0


#: Free bytes a retrain needs beyond the size of the collection's last generation.
RETRAIN_ROOM = 1 << 20
FIRST_INDEX = "first index"  # the retrain reason of a collection's first model


class _Unindexable(NashError):
    """A first index whose model was committed, yet too few of its files could be read to keep
    a collection: it is removed, as when that is found before the fit."""


class _FirstIndexAbandoned(CollectionGoneError):
    """The first index this process waited for stopped and removed the new collection (Ctrl-C,
    an error): :func:`index_folder` creates it again and indexes it itself."""


class _TooFewDocuments(NashError):
    """Fewer documents than a model is fitted on (``count`` of them)."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class Reporter(Protocol):
    """Progress sink: the CLI shows bars, library users pass nothing."""

    def progress(self, phase: str, completed: int, total: int | None) -> None:
        """``phase`` is 'crawling', 'reading', 'training' or 'encoding'; total None = unknown."""

    def note(self, message: str) -> None:
        """One line about a delay the user should know of (waiting for another process)."""


class _Silent:
    def progress(self, phase: str, completed: int, total: int | None) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class IndexReport:
    """What an indexing run did, for the summary line and for scripts."""

    collection: str
    root: Path
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    # Of ``deleted``, entries whose file is still there but left out by .gitignore/.nashignore
    # rules now: the summary says so, else "removed" reads as if the files had gone.
    ignored: int = 0
    kept: int = 0  # entries kept as they were: their file or folder cannot be read now
    dropped_unread: int = 0  # entries a retrain dropped for that reason (not deleted files)
    # Files a retrain found but could not read now (not "no document": a permission, say).
    unread_paths: set[str] = field(default_factory=set, repr=False)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    retrained: bool = False
    retrain_reason: str = ""
    compacted: bool = False
    documents: int = 0
    seconds: float = 0.0
    retrain_due: bool = False
    # The first ``CHANGES_KEPT`` changes to single documents, in order, as (kind, paths): "+"
    # added, "~" changed, "-" removed (one path), "→" moved (old, new), for a watcher's log.
    changes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def note(self, kind: str, *paths: object) -> None:
        """Count one change (``+ ~ - →``) and keep it for the log while there is room."""
        counter = {"+": "added", "~": "updated", "-": "deleted", "→": "moved"}[kind]
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.changes) < CHANGES_KEPT:
            self.changes.append((kind, tuple(str(p) for p in paths)))


@contextlib.contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while the crawl and the index's maps are built.

    They are plain records (a path, a size, a time) and make no reference cycles, but each full
    collection walks every object alive, and with 100k files' records alive the collector ran
    often enough to take 0.4 s of a 2.4 s update of an unchanged folder. Reference counting
    frees everything as usual meanwhile; the collector resumes (as it was) afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def due_for_retrain(trained_docs: int, encoded_since: int) -> bool:
    """The retrain policy on plain counts (see :data:`RETRAIN_GROWTH`)."""
    if trained_docs <= 0:
        return encoded_since > 0
    share = SMALL_GROWTH if trained_docs < SMALL_COLLECTION else RETRAIN_GROWTH
    return encoded_since >= share * trained_docs


def retrain_due(collection: Collection) -> bool:
    """Has the collection changed enough since its model was fitted that it should be refitted?

    Counts the documents encoded with the current model after it was fitted (new and changed
    ones, a file saved many times once: :attr:`~nashcli.index.Snapshot.encoded_since`) against
    the number it was fitted on.
    """
    with collection.snapshot() as snap:
        if snap.generation == 0:
            return True
        return due_for_retrain(snap.trained_docs, snap.encoded_since)


def _min_documents() -> int:
    """The fewest documents a model is fitted on (imported late: queries and updates that
    retrain nothing never need it)."""
    from nashcli.pipeline import MIN_DOCUMENTS

    return MIN_DOCUMENTS


def _new_hasher(bits: int, device: str, seed: int, options: dict | None):
    """A fresh SemanticHasher; ``options`` may name a ``method`` (default: DEFAULT_METHOD)."""
    from nashcli.methods import DEFAULT_METHOD
    from nashcli.pipeline import SemanticHasher

    options = dict(options or {})
    method = options.pop("method", DEFAULT_METHOD)
    return SemanticHasher(n_bits=bits, method=method, device=device, seed=seed, **options)


def _load_hasher(model_dir: Path, device: str):
    """The encoder of the files an update adds: torch-free for a linear model (the default),
    with the full hasher's TF-IDF rows and codes to the bit, so an update of a few files
    imports neither torch nor scikit-learn (a re-index of 500 files, one edited: 2.44 → 0.38 s,
    benchmarks/reindex.py --edited 1); the full hasher for other models."""
    from nashcli.features import TfidfFeatures
    from nashcli.model_files import model_problem
    from nashcli.similar import LinearQueryEncoder

    fast = None if model_problem(model_dir) else LinearQueryEncoder.load(model_dir)
    if fast is not None:
        with contextlib.suppress(NashError, TypeError, ValueError, AttributeError):
            fast.features = TfidfFeatures.load(model_dir)  # the checks the full loader makes
            return fast
    from nashcli.pipeline import SemanticHasher

    return SemanticHasher.load(model_dir, device=device)  # (or its one line on what is damaged)


class HasherCache:
    """The current model of each collection, loaded once per model generation.

    Loading a model (torch import aside, reading and rebuilding the weights) was most of the cost
    of each small update a watcher applies. A long-lived caller (the watcher) creates one cache
    and passes it to every :func:`apply_changes` / :func:`index_folder` call: the model is loaded
    on the first update that needs it and again only when the collection switches generations
    (a retrain or a compaction). A generation is identified by its number *and* its model
    files' identity, so a collection forgotten and re-created under the same name never gets a
    stale model. One entry per collection directory and device; no module-level state.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[tuple, object]] = {}

    @staticmethod
    def _key(model_dir: Path, generation: int) -> tuple:
        st = (model_dir / "model.json").stat()
        return (generation, st.st_ino, st.st_mtime_ns, st.st_size)

    def get(self, collection_dir: Path, generation: int, model_dir: Path, device: str):
        """The hasher saved in ``model_dir`` (generation ``generation``), loaded if not cached."""
        slot = (str(collection_dir), device)
        try:
            key = self._key(model_dir, generation)
        except OSError:  # unreadable model: let the loader raise its clear NashError
            return _load_hasher(model_dir, device)
        cached = self._entries.get(slot)
        if cached is not None and cached[0] == key:
            return cached[1]
        hasher = _load_hasher(model_dir, device)
        self._entries[slot] = (key, hasher)
        return hasher


def _model_loader(w: Writer, device: str, hashers: HasherCache | None):
    """A ``load_hasher()`` for :func:`_apply`: through ``hashers`` when given."""
    generation, model_dir = w.generation, w.gen_dir() / "model"
    if hashers is None:
        return lambda: _load_hasher(model_dir, device)
    return lambda: hashers.get(w.collection.directory, generation, model_dir, device)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read(path: Path) -> tuple[str, str]:
    """``(text, title)`` of a document; :class:`documents.UnreadableFile` if it has no text."""
    from nashcli import documents, titles

    doc = documents.read_document(path)
    if not doc.text.strip():
        raise documents.UnreadableFile("no text", path, excluded=True)
    return doc.text, (doc.title or titles.title_of(doc.text))[:200]


def _hash(path: Path) -> str:
    """Content hash of the file's bytes (same bytes: same text, same code)."""
    from nashcli import documents

    return documents.content_hash(path)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A file to index: its path as text (``Path`` objects cost a no-op update of 60,000 files
    17 MB more, all held at once), size and modification time."""

    path_text: str
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return Path(self.path_text)


def index_folder(
    root: Path | str,
    *,
    name: str | None = None,
    bits: int | None = None,
    retrain: bool = False,
    device: str = "auto",
    reporter: Reporter | None = None,
    max_bytes: int | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    seed: int = 0,
    hasher_options: dict | None = None,
    hashers: HasherCache | None = None,
    create: bool = True,
    refit: bool = True,
) -> IndexReport:
    """Index ``root`` into collection ``name`` (default: the collection that already indexes
    ``root``, else one named after the folder), incrementally.

    ``bits`` defaults to the collection's (64 for a new one); changing it needs ``retrain``.
    ``hasher_options`` go to :class:`~nashcli.pipeline.SemanticHasher` (e.g. ``max_epochs``, or
    a ``method`` other than ``methods.DEFAULT_METHOD`` for comparisons). ``hashers`` (a
    :class:`HasherCache` a long-lived caller keeps) saves reloading the current model.
    A damaged collection is rebuilt from the folder (see the module's docstring).
    ``create=False`` (a watcher after its first pass) raises :class:`CollectionGoneError`
    rather than create a collection that was forgotten meanwhile. ``refit=False`` updates with
    the model there and leaves a refit that falls due to the caller (``report.retrain_due``: a
    watcher fits in a child process, its own keeps handling events); a first index, a
    ``retrain`` and a rebuild still fit. A folder with no file at all,
    on another device than when it was indexed, whose collection holds documents is refused:
    that is a drive not mounted at the folder (a watcher sees it as its folder replaced), and
    the update would remove them all. (A folder emptied where it is is an update.)
    Raises :class:`NashError` for a missing folder, a folder with nothing to index, or a name
    taken by another folder; :class:`IndexBusyError` if another writer keeps the lock.
    """
    started = time.perf_counter()
    reporter = reporter or _Silent()
    if bits is not None and not 1 <= bits <= 1024:  # (0 is not "the default": say so)
        raise NashError(f"the number of bits must be between 1 and 1024, not {bits}")
    root, root_device, name, named, collection, damage, moving = _target(
        root, name, bits, retrain, create
    )
    report = IndexReport(collection=name, root=root)
    if max_bytes is None and collection is not None:
        max_bytes = collection.max_bytes  # the limit given last time, if any

    # The crawl needs no lock: it only reads the folder.
    crawled_ns = time.time_ns()  # (a large first index records it: see _fill)
    found, skipped, excluded = _crawl(root, None if moving else collection, max_bytes, reporter)
    if (collection is None or moving) and not found:
        why = f" ({_skip_summary(skipped)})" if skipped else ""
        raise NashError(f"{root}: nothing to index, no text documents found{why}")
    unmounted = collection is not None and collection.root_device not in (None, root_device)
    if unmounted and not (found or skipped):
        held = 0
        with contextlib.suppress(NashError):  # (damage: _index rebuilds, or says what it is)
            held = collection.summary()["documents"]
        if held:
            raise NashError(
                f"{root} is empty and on another device than when it was indexed, and "
                f"collection {name!r} holds {held:,} document{'' if held == 1 else 's'} from "
                f"it: if it is a drive that is not mounted, mount it; to drop them all, run: "
                f"nash forget {name}"
            )
    if moving:  # the user says the collection's folder went here (moved or renamed)
        _move_root(collection, root, found, lock_timeout)
    elif collection is None and not named:  # a new folder, or a collection's folder moved here?
        _say_if_moved_here(root, found, reporter)
    if collection is None:  # (before the trainer loads; _check_readable counts what is read)
        _check_enough(found, root, "text document")

    index_into = functools.partial(
        _index,
        found=found,
        skipped=skipped,
        bits=bits,
        device=device,
        seed=seed,
        hasher_options=hasher_options,
        reporter=reporter,
        lock_timeout=lock_timeout,
        hashers=hashers,
        excluded=frozenset(excluded),
        max_bytes=max_bytes,
        root_device=root_device if found else None,  # (where documents were found)
        crawled_ns=crawled_ns,
    )
    if damage is None:
        created = collection is None
        if collection is None:
            collection, created = _create_once(name, root, bits or 64, lock_timeout)
            if not created:  # (made by another process meanwhile, with its own --bits)
                _check_bits(collection, bits, retrain)
        index_into = functools.partial(index_into, retrain=retrain)
        try:
            try:
                index_into(collection, report=report, defer_retrain=True)
            except _FirstIndexAbandoned:
                if not create:
                    raise CollectionGoneError(name) from None
                collection, created = _create_once(name, root, bits or 64, lock_timeout)
                report = IndexReport(collection=name, root=root)
                index_into(collection, report=report)
            if (
                refit
                and report.retrain_due
                and not report.retrained
                and len(found) >= _min_documents()
            ):
                # The update is committed with the model there before the retrain it made
                # due: a retrain stopped midway (a cron job's timeout, a laptop put to sleep)
                # kept none of the run's work, and the new files stayed out on every run.
                again = IndexReport(collection=name, root=root)
                try:
                    index_into(collection, report=again)
                except NashError as error:  # (a full disk, say): the update stands; say so
                    if not isinstance(error, CollectionGoneError):  # (forgotten: it does not)
                        error.args = (f"{error}; {_committed(report)}", *error.args[1:])
                    raise
                _add_retrain(report, again)
        except BaseException as error:
            if (
                not created
                and isinstance(error, DamagedCollectionError)
                and error.what == "meta.sqlite"
            ):
                damage = error  # the metadata itself: rebuild the whole collection below
                report = IndexReport(collection=name, root=root)
            else:
                # A failed first index (one document, Ctrl-C...) leaves nothing, unless its
                # model was committed (a large folder's: the next run goes on from there).
                if created and (not _has_model(collection) or isinstance(error, _Unindexable)):
                    with contextlib.suppress(NashError, OSError):
                        collection.remove(timeout=0)
                raise
    if damage is not None:
        staged = Collection.create(name, root, bits or 64, staged=True)
        try:  # built beside the damaged collection, which stays as it is until the switch
            index_into(staged, report=report, retrain=True, damage=damage)
            staged.install(timeout=max(lock_timeout, SWITCH_TIMEOUT))
        except BaseException:
            with contextlib.suppress(NashError, OSError):
                staged.remove(timeout=0)
            raise
    report.seconds = time.perf_counter() - started
    return report


class _Target(NamedTuple):
    """What ``index_folder(root, name=...)`` indexes: the folder (resolved; the collection's own
    path where that leads here), its device, the collection's name and whether it was given,
    the collection (None: a new one, or damaged metadata: ``damage``), and whether the user
    moves the collection to this folder."""

    root: Path
    device: int
    name: str
    named: bool
    collection: Collection | None
    damage: DamagedCollectionError | None
    moving: bool


def _target(
    root: Path | str, name: str | None, bits: int | None, retrain: bool, create: bool
) -> _Target:
    """The folder and collection ``index_folder`` is asked to index, or one NashError line on
    why not (no such folder, a name another folder holds, bits that need ``retrain``...)."""
    root, found = look_at(root)
    if found is None:
        raise NashError(f"{root}: no such folder")
    if not stat.S_ISDIR(found.st_mode):
        raise NashError(f"{root}: not a folder (nash index takes a folder)")
    root = root.resolve()
    named = name is not None
    if named:
        validate_name(name)  # (before it is a path: a long one is the OS's error there)
    else:  # the folder's collection, whatever it was named; else a new name
        name = collection_of(root) or name_for_folder(root)
    collection, damage = None, None
    if Collection.exists(name):
        try:
            collection = Collection.open(name)
        except DamagedCollectionError as error:  # its metadata: nothing left to check the root
            damage = error
    elif (collections_dir() / name).is_dir():  # its meta.sqlite is gone: rebuild it as well
        damage = DamagedCollectionError(name, "meta.sqlite", "missing")
    elif not create:
        raise CollectionGoneError(name)
    if damage is not None and not named:
        # Its folder was recorded in the lost metadata: a folder that merely shares the name
        # must not take it over. The message says to rebuild with --name, from its own folder,
        # which is not known now (this one, perhaps: then FOLDER is this one).
        error = DamagedCollectionError(name, damage.what, damage.reason)
        error.args = (
            f"{error} (the folder it indexed is not known now; if it is this one, FOLDER is "
            f"{shell_quote(root)})",
        )
        raise error
    if collection is not None and collection.root != root and same_folder(collection.root, root):
        # The path it was indexed at leads here (the folder moved, a link left in its place):
        # it stays the collection's folder, so stored paths, a watcher's paths and the next
        # move and link all keep meaning the same files.
        root = collection.root
    moving = collection is not None and collection.root != root
    if moving and (collection.root.exists() or not named):
        # An unplugged drive must not hand its collection to another folder of the same name.
        raise NashError(
            f"collection {name!r} already indexes {collection.root}"
            + ("" if collection.root.exists() else ", which is not there now")
            + "; choose another name with --name"
            + ("" if collection.root.exists() else f", or to move it here: --name {name}")
        )
    holder = collection_of(root) if moving or collection is None else None
    if holder is not None and holder != name:  # one folder, one collection
        raise NashError(
            f"{root} is already indexed as collection {holder!r}: nash index "
            f"{shell_quote(root)} updates "
            f"it (to index it under another name, first: nash forget {holder})"
        )
    _check_bits(collection, bits, retrain)
    return _Target(root, found.st_dev, name, named, collection, damage, moving)


def _crawl(
    root: Path, collection: Collection | None, max_bytes: int | None, reporter: Reporter
) -> tuple[list[_Candidate], dict[str, str], set[str]]:
    """(files to index, skipped path → reason, skipped paths that drop an entry: excluded) of
    ``root``; ``collection``'s stored file states let unchanged files skip their checks."""
    from nashcli import corpus

    found: list[_Candidate] = []
    skipped: dict[str, str] = {}
    excluded: set[str] = set()
    crawl_kw = {} if max_bytes is None else {"max_bytes": max_bytes}
    with _paused_gc():
        if collection is not None:
            with contextlib.suppress(DamagedCollectionError):  # _index says what is damaged
                crawl_kw["known"] = collection.file_states()
        for n, item in enumerate(corpus.crawl(root, **crawl_kw), 1):
            path = item.path if item.path.is_absolute() else root / item.path
            if isinstance(item, corpus.Skipped):
                skipped[str(path)] = item.reason
                if item.excluded:
                    excluded.add(str(path))
            else:
                found.append(_Candidate(str(path), item.size, item.mtime_ns))
            if n % 64 == 0:  # a bar redrawn 10 times a second needs no call per file
                reporter.progress("crawling", n, None)
    del crawl_kw  # (its map of the stored files: an update reads them again under the lock)
    reporter.progress("crawling", len(found) + len(skipped), None)
    return found, skipped, excluded


def _has_model(collection: Collection) -> bool:
    """Whether ``collection`` has a committed model (False where it cannot be read)."""
    try:
        return collection.summary()["generation"] > 0
    except (NashError, OSError):
        return False


def _committed(report: IndexReport) -> str:
    """What an update committed before the retrain it made due failed."""
    return (
        f"the update before it was committed ({report.added:,} added, {report.updated:,} "
        f"updated, {report.deleted:,} removed), not retrained"
    )


def _check_bits(collection: Collection | None, bits: int | None, retrain: bool) -> None:
    """Another code length than the collection's needs ``retrain`` (also where it has no model
    yet: another process's first index may be fitting it at its length)."""
    if collection is None or bits is None or bits == collection.bits or retrain:
        return
    if not _has_model(collection):  # (a first index under way, or one stopped before its fit)
        raise NashError(
            f"collection {collection.name!r} is being indexed with {collection.bits}-bit codes "
            "by a first index that has not finished (under way, or stopped); add --retrain to "
            f"index it with {bits} bits instead"
        )
    raise NashError(
        f"collection {collection.name!r} uses {collection.bits}-bit codes; "
        f"add --retrain to re-encode it with {bits} bits"
    )


def _add_retrain(report: IndexReport, retrain: IndexReport) -> None:
    """Into ``report`` (an update), what the ``retrain`` that followed it did: it read every
    file, so entries the update kept unread, or counted unchanged without reading them, are
    dropped if they cannot be read now, and such files are skipped."""
    report.retrained, report.retrain_reason = retrain.retrained, retrain.retrain_reason
    report.deleted += retrain.deleted
    report.ignored += retrain.ignored
    if retrain.retrained:
        # (the kept entries are among those dropped unread; the others were "unchanged")
        report.unchanged -= max(0, retrain.dropped_unread - report.kept)
        report.kept = 0
    report.dropped_unread += retrain.dropped_unread
    report.unread_paths |= retrain.unread_paths
    listed = {path for path, _ in report.skipped}
    report.skipped += [skip for skip in retrain.skipped if skip[0] not in listed]
    report.compacted = report.compacted or retrain.compacted
    report.documents, report.retrain_due = retrain.documents, retrain.retrain_due


def _gone(stored: Iterable[str], seen: set[str], skipped: dict[str, str]) -> list[str]:
    """The ``stored`` paths of documents gone from the folder: not ``seen`` by the crawl, and
    not skipped by it either (a file that cannot be read now, or one in a folder that cannot be
    listed, keeps its old entry: it is not known to be gone)."""
    from nashcli import corpus

    unlisted = tuple(
        path + os.sep
        for path, reason in skipped.items()
        if reason.startswith(corpus.UNREADABLE_FOLDER)
    )
    return [
        path
        for path in stored
        if path not in seen and path not in skipped and not path.startswith(unlisted)
    ]


def _plan(
    stored: Mapping[str, tuple[int, int]], found: list[_Candidate], skipped: dict[str, str]
) -> tuple[list[_Candidate], list[_Candidate], list[str]]:
    """(new files, files whose size or mtime changed, paths of documents gone from the folder),
    given the stored documents' (size, mtime_ns) by path."""
    paths = [c.path_text for c in found]
    gone = _gone(stored, set(paths), skipped)
    fresh: list[_Candidate] = []
    changed: list[_Candidate] = []
    for path, c in zip(paths, found, strict=True):
        state = stored.get(path)
        if state is None:
            fresh.append(c)
        elif state != (c.size, c.mtime_ns):
            changed.append(c)
    return fresh, changed, gone


def _skip_summary(skipped: dict[str, str]) -> str:
    """ "13 skipped: 10 not a text document, 3 empty file": the commonest reasons first."""
    reasons = Counter(skipped.values())
    shown = ", ".join(f"{n:,} {reason}" for reason, n in reasons.most_common(3))
    return f"{len(skipped):,} skipped: {shown}" + (", …" if len(reasons) > 3 else "")


def _create_once(name: str, root: Path, bits: int, timeout: float) -> tuple[Collection, bool]:
    """``(collection, created here)``: a new collection ``name`` for ``root``, or the one of
    that name another process created for ``root`` since this one looked (two `nash index` of
    a new folder at once: this one then waits for that one's first model, as one started a
    second later does, and updates it); another name for ``root`` (two `nash index` of one
    folder under two names) is refused. The check and the creation happen under one lock for
    every collection."""
    from filelock import FileLock, Timeout

    from nashcli import paths

    lock = paths.ensure_dir(paths.state_dir()) / "create-collection.lock"
    creating = FileLock(str(lock), timeout=max(timeout, 10.0))
    try:
        creating.acquire()
    except Timeout:
        busy = f"another nash process keeps {lock} (it creates a collection)"
        raise IndexBusyError(busy) from None
    except OSError as error:  # a read-only or full disk: one line, before anything is read
        raise refused_write(name, error, lock.parent, "create") from None
    try:
        holder = collection_of(root)
        if holder == name:
            return Collection.open(name), False
        if holder is not None:
            raise NashError(
                f"{root} was just indexed as collection {holder!r} by another nash process: "
                f"nash index {shell_quote(root)} updates it"
            )
        if Collection.exists(name):
            raise NashError(
                f"collection {name!r} was just created by another nash process; "
                "run the command again when it is done"
            )
        return Collection.create(name, root, bits), True
    finally:
        creating.release()


def _storable_only(report: IndexReport, upserts, deletions, moves) -> tuple[list, list, list]:
    """The changes as :func:`corpus.storable_changes` judges names that are not valid UTF-8,
    an upsert of one skipped with the crawl's reason."""
    from nashcli import corpus

    upserts, deletions, moves = corpus.storable_changes(upserts, deletions, moves)
    storable = []
    for path in upserts:
        problem = corpus.name_problem(path)
        if problem is None:
            storable.append(path)
        else:
            report.skipped.append((_rel(path, report.root), problem))
    return storable, deletions, moves


def _as_stored(root: Path, upserts, deletions, moves) -> tuple[list, list, list]:
    """The changes as paths under the collection's folder as recorded, outside it left out.

    A watcher reports the real paths of a folder reached through a link (macOS's FSEvents
    always does), or the old path of one re-pointed since it started: each is taken back to
    the recorded folder, so no document is ever stored twice under two names. A move out of
    the folder is a deletion, one into it an upsert."""
    real_root = root.resolve()

    def stored(path) -> Path | None:
        path = Path(os.path.abspath(path))
        if path == root or root in path.parents:
            return path
        real = path.resolve()
        if real_root in real.parents:
            return root / real.relative_to(real_root)
        return None

    ups = [p for p in map(stored, upserts) if p is not None]
    dels = [p for p in map(stored, deletions) if p is not None]
    mvs = []
    for old, new in moves:
        old, new = stored(old), stored(new)
        if old is not None and new is not None:
            mvs.append((old, new))
        elif old is not None:
            dels.append(old)
        elif new is not None:
            ups.append(new)
    return ups, dels, mvs


def _found_at_their_paths(collection: Collection, root: Path, found) -> tuple[int, int]:
    """(how many of ``collection``'s documents ``found`` holds at their paths relative to its
    folder, as if ``root`` were it; how many documents it has)."""
    prefix = str(collection.root).rstrip(os.sep) + os.sep
    with collection.snapshot() as snap:
        stored = {d.path[len(prefix) :] for d in snap.live_docs() if d.path.startswith(prefix)}
    here = {c.path_text[len(str(root)) + 1 :] for c in found}
    return len(stored & here), len(stored)


def _say_if_moved_here(root: Path, found, reporter: Reporter) -> None:
    """A note, before a first index trains, when ``root`` holds at least half of the documents
    of a collection whose folder is gone, at their paths: likely that folder moved here, which
    ``--name`` re-points without training (this run would make a second collection)."""
    for collection in list_collections():
        if os.path.lexists(collection.root):
            continue
        with contextlib.suppress(NashError, OSError):
            kept, stored = _found_at_their_paths(collection, root, found)
            if stored and 2 * kept >= stored:
                reporter.note(
                    f"{kept:,} of the {stored:,} documents of collection {collection.name!r} "
                    f"are here at their paths, and its folder {collection.root} is gone; if "
                    f"this is it moved, stop (Ctrl-C) and run: nash index "
                    f"{shell_quote(root)} --name {collection.name}, which keeps its model and codes"
                )


def _move_root(collection: Collection, root: Path, found, lock_timeout: float) -> None:
    """Point ``collection`` at ``root``, its folder moved there: stored paths are re-rooted, so
    the scan that follows finds the files unchanged rather than all new (no retrain). Refused
    when ``root`` holds fewer than half of the collection's documents at their relative paths:
    that is another folder, and taking it would throw the index away."""
    old = collection.root
    kept, stored = _found_at_their_paths(collection, root, found)
    if stored and 2 * kept < stored:  # a shared README.md does not make it the same folder
        raise NashError(
            f"{root} holds {'none' if not kept else f'only {kept}'} of the {stored} "
            f"documents of collection {collection.name!r} at their paths, so it is not its "
            f"folder moved; choose another name with --name (or: nash forget {collection.name})"
        )
    with collection.writer(timeout=lock_timeout) as w:
        w.move_root(old, root)


def _index(
    collection: Collection,
    found: list[_Candidate],
    skipped: dict[str, str],
    report: IndexReport,
    bits: int | None,
    retrain: bool,
    device: str,
    seed: int,
    hasher_options: dict | None,
    reporter: Reporter,
    lock_timeout: float,
    hashers: HasherCache | None = None,
    *,
    damage: DamagedCollectionError | None = None,
    excluded: frozenset[str] = frozenset(),
    max_bytes: int | None = None,
    root_device: int | None = None,
    defer_retrain: bool = False,
    crawled_ns: int | None = None,
) -> None:
    """Decide between an incremental update and a retrain, and do it; with ``defer_retrain``,
    an update where only the documents changed since the fit would make a retrain due (the
    caller retrains after it: ``report.retrain_due``). ``max_bytes`` (the size
    limit the crawl used, when one was given) is recorded for later runs and the watcher, and
    ``root_device`` (the folder's device, where it held documents) for the next empty pass.

    ``skipped`` files keep their entries (a file that cannot be read now may be readable
    later) until a retrain, which cannot encode them; ``excluded`` ones, no documents by the
    rules (over ``--max-size``, empty, binary), leave at once.

    A retrain reads, fits and encodes *without* the writer lock (it takes a minute or more, and a
    watcher's short updates must not wait that long); it takes the lock only to switch to the
    new generation, then re-applies whatever a watcher committed in the meantime. It holds the
    collection's training turn (:func:`~nashcli.index.training_turn`) throughout: one that had
    to wait for another process's fit decides again, usually finding nothing left to train. Damaged
    generation files (or model) are replaced the same way: the documents recorded in
    ``meta.sqlite`` are all a retrain needs of the old generation.
    """
    root = report.root
    for path, reason in skipped.items():
        report.skipped.append((_rel(Path(path), root), reason))
    keep = {path: reason for path, reason in skipped.items() if path not in excluded}

    def reason(generation: int, encoded: int, trained: int) -> str:
        """Why to retrain the collection as read, "" for an incremental update."""
        if generation == 0:
            return FIRST_INDEX
        if retrain and len(found) >= _min_documents():
            return "--retrain"
        if retrain:  # too few to fit on: bring the index up to date with the model it has
            return ""
        if defer_retrain:
            return ""  # the update first, with the model there; the caller retrains if then due
        if not due_for_retrain(trained, encoded):  # (what the update encoded since the fit:
            return ""  # a touched, moved or unreadable file counts for nothing)
        if len(found) < _min_documents():
            return ""  # too few to fit a model on: the model there encodes them (as `nash watch`)
        return (
            f"the collection changed by {encoded:,} "
            f"document{'' if encoded == 1 else 's'} since the model was trained "
            # (a compaction keeps, of its training rows, those still live)
            f"({trained:,} of the documents it was trained on "
            f"{'is' if trained == 1 else 'are'} still in it)"
        )

    def look(snap: Snapshot) -> tuple[str, dict[str, DocRow] | None, bool]:
        if snap.generation:
            snap.check_model()
            snap.check_values()
            # The length now: another process may have retrained with other --bits since this
            # one opened the collection (a retrain without --bits keeps it, not the old one).
            collection.bits = snap.bits
        why = reason(snap.generation, snap.encoded_since, snap.trained_docs)
        # The documents only for a retrain: an update reads them again under the writer lock
        # (100,000 of them took 0.4 s and 56 MB here, for nothing, on every update)
        return why, ({d.path: d for d in snap.live_docs()} if why else None), snap.filling

    @_paused_gc()
    def decide() -> tuple[str, dict[str, DocRow] | None, bool]:
        """Why to retrain ("" for an incremental update), and, for a retrain, the stored
        documents; and whether a first index is to go on with (:attr:`Snapshot.filling`)."""
        found_damage = damage  # a staged rebuild's; other damage is found by reading
        try:
            why, stored, filling = collection.read(look)
        except DamagedCollectionError as error:
            if error.what == "meta.sqlite":
                raise
            found_damage, stored, filling = error, None, False
        if found_damage is not None:
            state = "could not be read" if found_damage.denied else "was damaged"
            why = f"{REBUILT}: {found_damage.what} {state}, {found_damage.reason}"
            if stored is None:
                stored = collection.recorded_docs()
        return why, stored, filling

    def not_retrained(n: int, what: str) -> None:
        kept = (
            f" (so its codes stay {collection.bits}-bit, not the {bits} asked for)"
            if bits is not None and bits != collection.bits
            else ""
        )
        reporter.note(
            f"not retrained: {n} {what}{'' if n == 1 else 's'} here, and nash learns its codes "
            f"from at least {_min_documents()}; the index was updated with the model it has" + kept
        )

    why, stored, filling = decide()
    if retrain and not why:
        not_retrained(len(found), "text document")
    with contextlib.ExitStack() as turn:
        # One fit per collection at a time; after waiting for another's, decide again.
        if why and turn.enter_context(training_turn(collection.name, reporter.note)):
            try:
                why, stored, filling = decide()
            except CollectionGoneError:
                if why == FIRST_INDEX:  # its creator stopped and removed it: not a forget
                    raise _FirstIndexAbandoned(collection.name) from None
                raise
            # The fit waited for may have changed the code length (`--bits 32 --retrain`):
            # another --bits without --retrain must not undo it unasked.
            _check_bits(collection, bits, retrain)
        if why:
            if not found:
                raise NashError(f"{root}: nothing to index, no text documents found")
            report.retrained, report.retrain_reason = True, why
            # (a full disk is found after the training otherwise: the new generation takes
            # about what the last one does, and the metadata's journal some more)
            collection.check_writable(room=collection.generation_bytes() + RETRAIN_ROOM)
            target_bits = bits or collection.bits
            counted = (report.added, report.updated, report.unchanged, len(report.skipped))
            try:
                hasher, words, tfidf, metas = _retrain(
                    found,
                    stored,
                    target_bits,
                    device,
                    seed,
                    hasher_options,
                    report,
                    reporter,
                    fill_later=why == FIRST_INDEX,
                )
                # An indexed file that cannot be read now keeps its entry in incremental
                # updates, but not through a retrain: its code belongs to the old model and its
                # text is not there to encode. Of the entries a retrain drops, those of files
                # that are there but cannot be read now (the crawl could not list them, or
                # reading failed for a reason that may pass) are no deletions: they come back
                # once they can be read.
                seen = {c.path_text for c in found}
                listed = seen | set(_gone(stored, seen, keep))
                unread = {
                    path for path in stored if path not in listed or path in report.unread_paths
                }
                removed = set(stored) - {m.path for m in metas} - unread
                report.dropped_unread, report.deleted = len(unread), len(removed)
                report.ignored = ignored_now(root, removed)
            except _TooFewDocuments as error:
                if why == FIRST_INDEX or why.startswith(REBUILT):  # no model to fall back on
                    raise
                not_retrained(error.count, "readable text document")  # the others unreadable
                report.retrained, report.retrain_reason = False, ""
                report.added, report.updated, report.unchanged, kept = counted
                del report.skipped[kept:]
                why = ""
        if why:
            with collection.writer(timeout=max(lock_timeout, SWITCH_TIMEOUT)) as w:
                w.remember_max_bytes(max_bytes)
                if root_device is not None:
                    w.remember_root_device(root_device)
                if words is None:  # a large folder's first index: its model first
                    _fill(w, hasher, found, target_bits, report, reporter, crawled_ns)
                    _finish(w, report)
                    return
                current = w.live_docs()
                w.new_generation(
                    hasher.save,
                    words,
                    tfidf,
                    metas,
                    method=hasher.method,
                    trained_docs=len(metas),
                    bits=target_bits,
                    # In the switch's transaction: a crash between the two would lose what a
                    # watcher committed during the training (it will not send it again).
                    before_commit=lambda: _catch_up(
                        w, hasher, stored, current, metas, report, reporter
                    ),
                )
                _finish(w, report)
            return
    _update(
        collection,
        found,
        keep,
        report,
        reporter,
        lock_timeout,
        device=device,
        hashers=hashers,
        max_bytes=max_bytes,
        root_device=root_device,
        filling=filling,
        retrain_next=lambda: defer_retrain and len(found) >= _min_documents(),
    )


def _update(
    collection: Collection,
    found: list[_Candidate],
    keep: Mapping[str, str],
    report: IndexReport,
    reporter: Reporter,
    lock_timeout: float,
    *,
    device: str,
    hashers: HasherCache | None,
    max_bytes: int | None,
    root_device: int | None,
    filling: bool,
    retrain_next: Callable[[], bool],
) -> None:
    """The incremental update of :func:`_index`: under the writer lock, encode the ``found``
    files that are new or changed with the model there (on ``device``, through ``hashers``),
    drop those gone (``keep``: unreadable now, their entries stay), and go on with a first
    index that was stopped (``filling``). ``retrain_next()`` says whether the caller retrains
    next, asked only where the update makes a retrain due (see :func:`_finish`)."""
    with contextlib.ExitStack() as turn:
        # A first index to go on with (its model committed, then stopped): one process at a
        # time, as a fit is (another waits, then finds it done), and named by `nash status`.
        if filling:
            turn.enter_context(training_turn(collection.name, reporter.note))
        with collection.writer(timeout=lock_timeout) as w:
            w.remember_max_bytes(max_bytes)  # first: a run stopped midway dropped files by it
            if root_device is not None:
                w.remember_root_device(root_device)
            with _paused_gc():
                # Again, under the lock: a watcher may have written meanwhile. Whole rows only of
                # the files that changed or went: a no-op update of 60,000 files peaked at 130 MB
                # (RSS) with every row, 103 MB with this.
                states = w.file_states()
                fresh, changed, gone_paths = _plan(states, found, keep)
                needed = [c.path_text for c in changed] + gone_paths
                # (most of them: one read of every row is quicker than looking each up)
                many = 2 * len(needed) > len(states)
                stored = w.live_docs() if many else w.live_docs_at(needed)
                gone = [stored[path] for path in gone_paths]
            report.unchanged = len(found) - len(fresh) - len(changed)
            # (not known to be gone)
            report.kept = len(states) - len(gone) - (len(found) - len(fresh))
            del states
            load_hasher = _model_loader(w, device, hashers)
            if w.filling:  # (as it is now, under the lock: another run may have gone on)
                reporter.note(
                    "going on with the first index, stopped before it was done (its model is kept)"
                )
                # The files it found first are the fit's; those made or changed since are not.
                fits, fresh = _unchanged_since(w.filled_from_ns, fresh)
                _apply(w, load_hasher, fits, {}, [], report, reporter, fitted=True)
                w.set_filling(False)
            _apply(w, load_hasher, fresh + changed, stored, gone, report, reporter)
            _finish(w, report, retrain_next=retrain_next)


def _unchanged_since(
    when_ns: int | None, candidates: Sequence[_Candidate]
) -> tuple[list[_Candidate], list[_Candidate]]:
    """(``candidates`` there as they are now at ``when_ns``, the others), each in their order: a
    file's modification and status change times (a copy that keeps the mtime, `cp -p`, `rsync
    -a`, is new by its ctime) are both earlier. None, unknown: all taken as unchanged."""
    if when_ns is None:
        return list(candidates), []
    unchanged: list[_Candidate] = []
    since: list[_Candidate] = []
    for candidate in candidates:
        try:
            st = os.stat(candidate.path_text)
        except OSError:  # (read next, and reported as skipped there)
            since.append(candidate)
            continue
        (unchanged if max(st.st_mtime_ns, st.st_ctime_ns) < when_ns else since).append(candidate)
    return unchanged, since


def _finish(
    w: Writer, report: IndexReport, *, retrain_next: Callable[[], bool] = lambda: False
) -> None:
    """Compact where deletions took over, and count; no compaction where a retrain is due and
    ``retrain_next()`` (the caller retrains next): it rewrites everything anyway."""
    counts = w.counts()
    due = due_for_retrain(counts["trained_docs"], counts["encoded_since"])
    if not (due and retrain_next()):  # (asked only then: it imports the trainer's module)
        _maybe_compact(w, report)
        counts = w.counts()
        due = due_for_retrain(counts["trained_docs"], counts["encoded_since"])
    report.documents, report.retrain_due = counts["live"], due


def _catch_up(
    w: Writer,
    hasher,
    before: dict[str, DocRow],
    current: dict[str, DocRow],
    metas: Sequence[DocMeta],
    report: IndexReport,
    reporter: Reporter,
) -> None:
    """After a retrain: redo, with the new model, what other writers committed while it ran
    (staged on the new generation before its switch commits: ``Writer.new_generation``).

    ``before`` is the index the retrain started from, ``current`` the old generation's state
    just before the switch, ``metas`` what the new generation holds. A file the retrain found
    new that has gone since (seen by a watcher or by no one) leaves too.
    """
    ours = {m.path: m for m in metas}
    gone_new = [p for p in ours if p not in before and p not in current and not may_be_there(p)]
    if current == before and not gone_new:
        return
    new_rows = w.live_docs()
    redo: list[_Candidate] = []
    for path, doc in current.items():
        old = before.get(path)
        if old is not None and _state(old) == _state(doc):
            continue  # no other writer touched it: what the retrain decided stands (left out)
        mine = ours.get(path)
        if mine is None or (mine.size, mine.mtime_ns) != (doc.size, doc.mtime_ns):
            redo.append(_Candidate(str(Path(path)), doc.size, doc.mtime_ns))
    dropped = [new_rows[p].row for p in ours if p in before and p not in current]
    dropped += [new_rows[p].row for p in gone_new]
    if dropped:
        w.tombstone(dropped)
        w.commit()
    if redo:
        _apply(w, lambda: hasher, redo, w.live_docs(), [], IndexReport("", report.root), reporter)


def _state(doc: DocRow) -> tuple[int, int, str]:
    """What says a document's file is the one its row was made from."""
    return doc.size, doc.mtime_ns, doc.hash


def _retrain(
    found: Sequence[_Candidate],
    stored: dict[str, DocRow],
    bits: int,
    device: str,
    seed: int,
    hasher_options: dict | None,
    report: IndexReport,
    reporter: Reporter,
    fill_later: bool = False,
):
    """Fit features + model and encode every document: (hasher, words, tfidf, metas); with
    ``fill_later``, above the training cap, only fit: (hasher, None, None, []) (the caller
    commits the model, then encodes into it: :func:`_fill`).

    Within the hasher's training cap every document is read once and kept for the fit. Above
    it only the training sample is read for the fit; then every document is read again, a batch
    at a time, and encoded, so the texts of a million documents are never in memory at once.
    """
    hasher = _new_hasher(bits, device, seed, hasher_options)

    def on_epoch(epoch: int, max_epochs: int, info: dict) -> None:
        reporter.progress("training", epoch, max_epochs)

    metas: list[DocMeta] = []
    sample = hasher.training_sample(len(found))
    if sample is None:
        texts = []
        for text, meta in _read_documents(found, stored, report, reporter, "reading"):
            texts.append(text)
            metas.append(meta)
        _check_readable(texts, report.root)
        reporter.progress("training", 0, None)
        hasher.fit(texts, on_epoch=on_epoch, keep_rows=True)
        # The training texts' rows as the fit made them (what vectorize gives, to the bit):
        # tokenising them again was about a tenth of a first index.
        tfidf, hasher.fit_rows_ = hasher.fit_rows_, None
        words = _codes_of_rows(hasher, tfidf, reporter)  # (the rows are stored as they are)
    else:
        texts = []  # of the sample; a file it cannot read is reported by the second pass
        for n, i in enumerate(sample, 1):
            with contextlib.suppress(Exception):
                texts.append(_read(found[i].path)[0])
            reporter.progress("reading", n, len(sample))
        _check_readable(texts, report.root)
        reporter.progress("training", 0, None)
        hasher.fit(texts, on_epoch=on_epoch, collection=len(found))
        del texts
        if fill_later:
            return hasher, None, None, metas

        def every_text() -> Iterator[str]:
            for text, meta in _read_documents(found, stored, report, reporter, "encoding"):
                metas.append(meta)
                yield text

        words, tfidf = _encode(hasher, _batches(every_text()), None, len(found))
        _check_readable(metas, report.root)
    return hasher, words, tfidf, metas


def _fill(
    w: Writer,
    hasher,
    found: Sequence[_Candidate],
    bits: int,
    report: IndexReport,
    reporter: Reporter,
    crawled_ns: int | None,
) -> None:
    """A large folder's first index from its fitted model: the model committed first, with no
    documents, then every file encoded a batch at a time, each batch committed and counted as
    the fit's. A stop keeps the model and what was committed (encoding a million files after
    the fit takes minutes); the next run goes on from there (:attr:`Writer.filling`), counting
    as the fit's only files not made or changed since ``crawled_ns``, when this run crawled."""
    empty = hasher.vectorize([""])[:0]
    words = np.zeros((0, codes.n_words(bits)), dtype=np.uint64)
    w.new_generation(
        hasher.save,
        words,
        empty,
        [],
        method=hasher.method,
        trained_docs=0,
        bits=bits,
        # (in the switch: no model without the mark)
        before_commit=lambda: w.set_filling(True, crawled_ns=crawled_ns),
    )
    _apply(w, lambda: hasher, found, {}, [], report, reporter, fitted=True)
    try:  # (the sample was readable; the others may not be)
        _check_readable(range(w.counts()["live"]), report.root)
    except NashError as error:
        raise _Unindexable(str(error)) from None
    w.set_filling(False)


def ignored_now(root: Path, paths: Iterable[str]) -> int:
    """How many of ``paths`` (entries an update drops) are still there but left out by the
    ignore rules under ``root``: a ``.nashignore`` of ``*`` empties a collection, and its
    summary must not read as if the files were deleted."""
    from nashcli.corpus import IgnoreMatcher

    matcher = None
    count = 0
    for path in paths:
        if may_be_there(path):  # (a deleted file costs one failed lstat)
            matcher = matcher or IgnoreMatcher(root)
            count += matcher.is_ignored(path)
    return count


def _read_documents(
    found: Sequence[_Candidate],
    stored: dict[str, DocRow],
    report: IndexReport,
    reporter: Reporter,
    phase: str,
) -> Iterator[tuple[str, DocMeta]]:
    """(text, meta) of each readable candidate, counted in ``report`` as added, updated or
    unchanged against ``stored``; an unreadable one is reported as skipped."""
    for n, c in enumerate(found, 1):
        try:
            h = _hash(c.path)
            text, title = _read(c.path)
        except Exception as error:  # noqa: BLE001 - any unreadable file is skipped, not fatal
            report.skipped.append((_rel(c.path, report.root), _reason(error)))
            if not getattr(error, "excluded", False) and may_be_there(c.path):  # not deleted
                report.unread_paths.add(c.path_text)  # there, but not to be read now
            continue
        finally:
            reporter.progress(phase, n, len(found))
        old = stored.get(c.path_text)
        if old is None:
            report.added += 1
        elif old.hash != h:
            report.updated += 1
        else:
            report.unchanged += 1
        yield text, DocMeta(c.path_text, c.size, c.mtime_ns, h, title)


def _check_readable(documents: Sequence, root: Path) -> None:
    if not documents:
        raise NashError(f"{root}: nothing to index, no readable text documents")
    _check_enough(documents, root, "readable text document")


def _check_enough(documents: Sequence, root: Path, what: str) -> None:
    """A model is fitted on at least ``MIN_DOCUMENTS``: fewer is one line naming the folder."""
    if len(documents) < _min_documents():
        n = len(documents)
        raise _TooFewDocuments(
            f"{root}: only {n} {what}{'' if n == 1 else 's'}; nash learns its codes from at "
            f"least {_min_documents()}",
            n,
        )


def _batches(texts: Iterable[str]) -> Iterator[list[str]]:
    """``texts`` in lists of ``BATCH``."""
    texts = iter(texts)
    while batch := list(itertools.islice(texts, BATCH)):
        yield batch


def _codes_of_rows(hasher, rows, reporter: Reporter) -> np.ndarray:
    """Packed codes (n, n_words) of TF-IDF ``rows``, encoded in batches of :data:`BATCH` rows
    (as :func:`_encode` encodes texts), with progress."""
    n = rows.shape[0]
    words = []
    for start in range(0, n, BATCH):
        words.append(codes.pack_codes(hasher.encode_vectors(rows[start : start + BATCH])))
        reporter.progress("encoding", min(start + BATCH, n), n)
    if not words:
        return np.zeros((0, codes.n_words(hasher.n_bits)), dtype=np.uint64)
    return np.concatenate(words)


def _encode(hasher, batches: Iterable[Sequence[str]], reporter: Reporter | None, total: int):
    """Packed codes (n, n_words) and tf-idf rows of the texts in ``batches``, with progress
    (of ``total``) unless ``reporter`` is None."""
    import scipy.sparse as sp

    words, vectors, done = [], [], 0
    for batch in batches:
        x = hasher.vectorize(batch)
        words.append(codes.pack_codes(hasher.encode_vectors(x)))
        vectors.append(x)
        done += len(batch)
        if reporter is not None:
            reporter.progress("encoding", done, total)
    n_words = codes.n_words(hasher.n_bits)
    if not words:
        return np.zeros((0, n_words), dtype=np.uint64), sp.csr_matrix((0, 0))
    return np.concatenate(words), sp.vstack(vectors).tocsr()


def _reason(error: BaseException) -> str:
    from nashcli.documents import UnreadableFile

    if isinstance(error, UnreadableFile):
        return str(error) or "unreadable"
    if isinstance(error, FileNotFoundError):
        return "vanished while indexing"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, OSError):
        return f"unreadable ({error.strerror or error.__class__.__name__})"
    return f"unreadable ({error.__class__.__name__})"


def _apply(
    w: Writer,
    load_hasher,
    candidates: Sequence[_Candidate],
    stored: dict[str, DocRow],
    gone: Sequence[DocRow],
    report: IndexReport,
    reporter: Reporter,
    fitted: bool = False,
) -> None:
    """Encode new/changed candidates with the current model, re-path moves, drop ``gone``.

    Commits once per batch, so a killed run keeps its finished batches. ``load_hasher()`` is
    called only if something needs encoding (loading the model imports torch). ``fitted``: what
    is encoded counts as the fit's documents, not as changes since it (a first index's).
    """
    root = report.root
    hasher = None
    # A document at a candidate's path is that candidate's to keep or replace, not gone (a
    # watcher's batch can drop the origin of a move that is there again: `mv a.txt a.html;
    # cp a.html a.txt`).
    at_candidates = {c.path_text for c in candidates}
    gone = [doc for doc in gone if doc.path not in at_candidates]
    # Same bytes read the same way: a move (a .txt renamed .html is read again, as HTML).
    gone_by_hash: dict[tuple[str, str], list[DocRow]] = {}
    for doc in gone:
        gone_by_hash.setdefault((doc.hash, reader_of(doc.path)), []).append(doc)
    total = len(candidates)
    for start in range(0, total, BATCH):
        batch = candidates[start : start + BATCH]
        texts: list[str] = []
        metas: list[DocMeta] = []
        replaced: list[int] = []
        for c in batch:
            old = stored.get(c.path_text)
            try:
                h = _hash(c.path)
                if old is not None and old.hash == h:  # touched, same bytes: keep the code
                    meta = DocMeta(c.path_text, c.size, c.mtime_ns, h, old.title)
                    w.repath(old.row, meta)
                    report.unchanged += 1
                    continue
                same = gone_by_hash.get((h, reader_of(c.path)))
                if same:  # the bytes of a file gone, at a new path or over an indexed file: a move
                    moved = same.pop()
                    if old is not None:  # (`mv a b` over an indexed b: b's document goes)
                        w.tombstone([old.row])
                        report.note("-", old.path)
                    w.repath(moved.row, DocMeta(c.path_text, c.size, c.mtime_ns, h, moved.title))
                    report.note("→", moved.path, c.path)
                    continue
                text, title = _read(c.path)
            except Exception as error:  # noqa: BLE001 - skipped with its reason
                report.skipped.append((_rel(c.path, root), _reason(error)))
                if old is None:
                    continue
                if getattr(error, "excluded", False) or not may_be_there(c.path_text):
                    w.tombstone([old.row])  # emptied (no text), or deleted since the crawl
                    report.note("-", old.path)
                else:  # cannot be read now: its entry stays, and is counted
                    report.kept += 1
                continue
            meta = DocMeta(c.path_text, c.size, c.mtime_ns, h, title)
            if old is not None:
                replaced.append(old.row)
            report.note("+" if old is None else "~", c.path_text)
            texts.append(text)
            metas.append(meta)
        if texts:
            hasher = hasher or load_hasher()
            x = hasher.vectorize(texts)
            words = codes.pack_codes(hasher.encode_vectors(x))
            w.tombstone(replaced)
            w.append(words, x, metas)
            if fitted:
                w.count_as_fitted()
        w.commit()
        reporter.progress("encoding", min(start + BATCH, total), total)
    leftover = [doc for docs in gone_by_hash.values() for doc in docs]
    if leftover:
        w.tombstone([doc.row for doc in leftover])
        for doc in leftover:
            report.note("-", doc.path)
        report.ignored += ignored_now(root, (doc.path for doc in leftover))
    w.commit()


def _maybe_compact(w: Writer, report: IndexReport) -> None:
    counts = w.counts()
    if counts["rows"] and counts["dead"] > COMPACT_SHARE * counts["rows"]:
        w.compact()
        report.compacted = True


def apply_changes(
    name: str,
    *,
    upserts: Iterable[Path | str] = (),
    deletions: Iterable[Path | str] = (),
    moves: Iterable[tuple[Path | str, Path | str]] = (),
    reporter: Reporter | None = None,
    device: str = "auto",
    lock_timeout: float = LOCK_TIMEOUT,
    hashers: HasherCache | None = None,
) -> IndexReport:
    """Apply known file changes (a watcher's events) to collection ``name`` without a crawl.

    ``upserts`` are (re)read and encoded with the current model if their text changed;
    ``deletions`` leave the index; ``moves`` (old, new), renames made at once (in any order: a
    swap is two), re-path a document without re-encoding.
    Waits up to ``lock_timeout`` seconds for another writer. Never retrains (check
    ``report.retrain_due`` and run :func:`index_folder` for that). Pass the same ``hashers``
    (a :class:`HasherCache`) to every call to load the model once per generation, not per call.
    Paths (relative ones from the working directory) outside the collection's folder are left
    out: a move out of it is a deletion, one into it an upsert. The paths are taken as given:
    ignore rules (hidden names, ``.gitignore``, document types) are the caller's to apply, as
    a watcher does (:func:`nashcli.watching.ignore_rules`). Moves are committed before what is
    encoded: a batch retried after a failure must be looked at again on disk, not sent again
    (a move whose new file has gone since drops the document it re-pathed).
    """
    from nashcli import corpus

    for what, paths in (("upserts", upserts), ("deletions", deletions), ("moves", moves)):
        if isinstance(paths, (str, bytes, os.PathLike)):  # (iterated, one name per character)
            raise NashError(f"{what} must be a list of paths, not one path: [{paths!r}]")
    started = time.perf_counter()
    reporter = reporter or _Silent()
    collection = Collection.open(name)
    root = collection.root
    report = IndexReport(collection=name, root=root)
    # Absolute paths under the recorded folder from here on, each one the index can store.
    upserts, deletions, moves = _as_stored(root, upserts, deletions, moves)
    upserts, deletions, moves = _storable_only(report, upserts, deletions, moves)
    # Every path looked up below: the stored documents of these are all it reads.
    involved = [*upserts, *deletions, *(path for move in moves for path in move)]
    with collection.writer(timeout=lock_timeout) as w:
        if w.generation == 0:
            raise NashError(
                f"collection {name!r} has no model yet: run nash index {shell_quote(root)}"
            )
        stored = w.live_docs_at(str(path) for path in involved)
        drop: list[DocRow] = []
        for path in deletions:
            doc = stored.get(str(path))
            if doc is not None:
                drop.append(doc)
        pending = list(upserts)
        settled: set[int] = set()  # rows a move took away or re-pathed: no longer to drop
        # Moves are renames made at once, applied out of a name before onto it (a path is
        # one live document's). Those in a cycle (a swap) have no such order: their documents
        # are first put aside, at a hidden name no document has, then moved on as the others.
        moves, cyclic = moves_in_order(moves)
        aside: list[tuple[DocRow | None, Path, Path]] = []
        for old_path, new_path in cyclic:
            doc = stored.pop(str(old_path), None)
            if doc is not None:
                hidden = str(root / f".nash-moving-{doc.row}")
                w.repath(doc.row, DocMeta(hidden, doc.size, doc.mtime_ns, doc.hash, doc.title))
            aside.append((doc, old_path, new_path))
        put_aside = {doc.row for doc, _, _ in aside if doc is not None}

        def let_go(doc: DocRow) -> None:
            """A moved document not re-pathed: dropped at the end (its bytes may turn up at a
            new path), or at once if it is aside (it must never be committed at that name)."""
            if doc.row in put_aside:
                w.tombstone([doc.row])
                report.note("-", doc.path)
                settled.add(doc.row)
            else:
                drop.append(doc)

        in_order = ((stored.get(str(old_path)), old_path, new_path) for old_path, new_path in moves)
        for old, old_path, new_path in itertools.chain(in_order, aside):  # (looked up as it goes)
            st = corpus.regular_file_stat(new_path)
            if st is None:  # gone again, or no document (a folder, a symlink)
                if old is not None:
                    let_go(old)
                continue
            target = stored.get(str(new_path))
            if old is None or reader_of(old_path) != reader_of(new_path):  # (read anew)
                if old is not None:
                    let_go(old)
                pending.append(new_path)
                continue
            if target is not None and target.row != old.row:  # moved onto an indexed file
                w.tombstone([target.row])
                report.note("-", target.path)
                settled.add(target.row)
            settled.add(old.row)
            # The row moves with the stat its code was made from. A file whose size or mtime
            # differ from it was also written (an edit in the same instant as the rename): it
            # goes on as a candidate below, re-hashed and re-encoded if its bytes changed.
            w.repath(old.row, DocMeta(str(new_path), old.size, old.mtime_ns, old.hash, old.title))
            if (here := stored.get(old.path)) is not None and here.row == old.row:
                del stored[old.path]  # (one put aside is no longer there: another moved in)
            stored[str(new_path)] = DocRow(
                old.row, str(new_path), old.size, old.mtime_ns, old.hash, old.title
            )
            report.note("→", old.path, new_path)
            if (st.st_size, st.st_mtime_ns) != (old.size, old.mtime_ns):
                pending.append(new_path)
        # A file written with its old size and mtime kept (`cp -p`, `rsync -t`, `touch -r`)
        # is no longer told apart by its stat, as a crawl tells it: the write is known here, so
        # it goes on to be hashed (the same bytes keep their code).
        written = set(upserts)
        candidates: list[_Candidate] = []
        limit = collection.max_bytes or corpus.DEFAULT_MAX_BYTES  # (as the crawl's)
        for path in dict.fromkeys(pending):
            st = corpus.regular_file_stat(path)
            if st is None:  # gone, or no document now (a folder, a symlink, a pipe)
                if str(path) in stored:
                    drop.append(stored[str(path)])
                continue
            if st.st_size > limit:  # (a move's new file, or one grown, is looked at here only)
                report.skipped.append((_rel(path, root), corpus.too_large(limit)))
                if (doc := stored.get(str(path))) is not None:
                    w.tombstone([doc.row])  # (a moved one too: its row is settled, not dropped)
                    report.note("-", doc.path)
                    settled.add(doc.row)
                continue
            doc = stored.get(str(path))
            same_stat = doc is not None and (doc.size, doc.mtime_ns) == (st.st_size, st.st_mtime_ns)
            if same_stat and path not in written:
                report.unchanged += 1
                continue
            candidates.append(_Candidate(str(path), st.st_size, st.st_mtime_ns))
        dropped = [d for row, d in {d.row: d for d in drop}.items() if row not in settled]
        w.commit()  # (the moves' new paths first: encoding may take a while)
        # A dropped document's bytes at a new path are a move its events did not say (a rename
        # that a burst saw as a deletion and a new file): re-pathed, not encoded; the others
        # are dropped at the end (none: no transaction, no new "updated" time).
        loader = _model_loader(w, device, hashers)
        _apply(w, loader, candidates, stored, dropped, report, reporter)
        _maybe_compact(w, report)
        counts = w.counts()
        report.documents = counts["live"]
        report.retrain_due = due_for_retrain(counts["trained_docs"], counts["encoded_since"])
    report.seconds = time.perf_counter() - started
    return report
