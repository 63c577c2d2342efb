"""One collection's index on disk: SQLite metadata, memory-mapped code planes, model generations.

Layout of ``paths.data_dir()/collections/<name>/``::

    meta.sqlite        paths, sizes, mtimes, content hashes, row numbers, tombstones (WAL mode)
    writer.lock        the one-writer-at-a-time file lock
    gen-000001/        one generation: a model and the rows it encoded
        model/         SemanticHasher.save(): JSON config + npz weights, no pickle
        plane-0.u64    word 0 of every code, one uint64 per row, append-only
        plane-1.u64    ... one file per 64-bit word of the code
        tfidf.indptr   the rows' tf-idf vectors (CSR, append-only): int64 offsets,
        tfidf.indices  int32 term ids
        tfidf.data     float32 weights

and, in ``paths.state_dir()``, ``train-<name>.lock`` (+ ``.pid``, its holder): one model fit per
collection at a time (:func:`training_turn`).

Why it is crash-safe: plane and tf-idf bytes are written and fsynced *before* the SQLite
transaction that raises the generation's committed row count, and readers map only committed
rows, so bytes written by a writer that was killed are invisible (the next writer overwrites
them). A retrain or a compaction writes a whole new generation directory under a temporary name,
renames it into place and switches to it in one transaction; files a reader may have mapped are
never rewritten in place (that would kill the reader with SIGBUS), only unlinked later.

Damage (a truncated or missing file, a ``meta.sqlite`` that is no database, a model file that is
no JSON or npz) is found where the files are opened and raised as one
:class:`DamagedCollectionError` naming the file and the way out (``nash index --retrain``, which
rebuilds from the folder, or ``nash forget``). A collection removed while a command works on it
raises :class:`CollectionGoneError` instead of being re-created half-empty.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import mmap
import os
import re
import shlex
import shutil
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from nashcli import codes, paths
from nashcli.errors import IndexBusyError, IndexWriteError, NashError
from nashcli.model_files import model_problem
from nashcli.names import shell_quote
from nashcli.paths import collections_dir
from nashcli.vectors import CsrRows

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

SCHEMA_VERSION = 1
_NAME_RE = paths.COLLECTION_NAME
_META = "meta.sqlite"
#: How often a reader looks again when writers keep switching generations under it.
READ_ATTEMPTS = 20
_T = TypeVar("_T")
_LOCK = "writer.lock"
_HOLDER = "writer.pid"  # pid and command of the process holding the writer lock, for messages
#: SQLite messages that mean the file is damaged (not busy, locked or unreadable for a while).
_SQLITE_DAMAGE = ("not a database", "malformed", "no such table", "no such column", "corrupt")
#: SQLite's words for a write the disk refused (full, or failing to make its ``-shm`` file):
#: a failure that may pass, as :data:`_WRITE_ERRNOS` are, not damage.
_SQLITE_WRITE_FAILURES = ("database or disk is full", "disk i/o error")


def _write_failed(error: sqlite3.Error) -> bool:
    """Whether an SQLite error is a write the disk refused (full, failing), which may pass."""
    return isinstance(error, sqlite3.OperationalError) and any(
        w in str(error).lower() for w in _SQLITE_WRITE_FAILURES
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    gen INTEGER PRIMARY KEY,
    rows INTEGER NOT NULL,          -- committed rows: readers map exactly this many
    bits INTEGER NOT NULL,
    method TEXT NOT NULL,
    trained_docs INTEGER NOT NULL,  -- documents the model was fitted on
    n_features INTEGER NOT NULL,    -- width of the stored tf-idf vectors
    created_at REAL NOT NULL,
    version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS docs (
    gen INTEGER NOT NULL,
    row INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL,
    title TEXT NOT NULL,
    live INTEGER NOT NULL,          -- 0 = tombstone: the row stays in the planes, unlisted
    PRIMARY KEY (gen, row)
);
CREATE UNIQUE INDEX IF NOT EXISTS docs_live_path ON docs (gen, path) WHERE live = 1;
CREATE INDEX IF NOT EXISTS docs_hash ON docs (gen, hash) WHERE live = 1;
"""
#: The tombstoned rows, which every snapshot reads as it opens: without this index that read
#: visits every row of the generation (13 ms at 100,000 documents, in every `nash similar`).
#: A collection made before it gets it from its next writer; the schema stays compatible
#: (SQLite keeps the index current whichever nash writes).
_DEAD_ROWS_INDEX = "CREATE INDEX IF NOT EXISTS docs_dead ON docs (gen, row) WHERE live = 0"


def _keeps_changing(name: str) -> NashError:
    return NashError(f"collection {name!r} keeps changing under the reader; retry")


class GenerationReplaced(NashError):
    """The generation a reader was reading was switched out and removed meanwhile (a retrain,
    a compaction): what it still had to load is gone, so it looks again at the new one."""


class DamagedCollectionError(NashError):
    """A collection's file is missing, truncated or unreadable: rebuild it or forget it.

    ``what`` is the file relative to the collection's directory (``gen-000001/plane-0.u64``,
    ``meta.sqlite``), ``reason`` what is wrong with it.
    """

    def __init__(self, name: str, what: str, reason: str, root: Path | None = None) -> None:
        self.name, self.what, self.reason = name, what, reason
        folder = shell_quote(root) if root else "FOLDER"
        rebuild = f"nash index {folder} --name {name} --retrain"
        # Intact, perhaps, but not this user's to read: say so rather than "damaged".
        self.denied = _denied(reason)
        if self.denied:
            message = (
                f"cannot read collection {name!r}: permission denied on {what}; fix its "
                f"permissions, or rebuild it with: {rebuild} (if it is another user's, give "
                "yours another name with --name)"
            )
        else:
            message = (
                f"collection {name!r} is damaged ({what}: {reason}); rebuild it with: "
                f"{rebuild}, or remove it with: nash forget {name}"
            )
        super().__init__(message)


def _denied(reason: str) -> bool:
    """Whether ``reason`` (an OSError's text) says access was refused (EACCES, EPERM)."""
    return any(os.strerror(code) in reason for code in (errno.EACCES, errno.EPERM))


class IncompatibleCollectionError(NashError):
    """The collection was written by a nash whose index format this one cannot read."""


def _replaced_meanwhile(name: str) -> str:
    """Why a writer stopped: its collection's folder is another one now (forgotten and indexed
    again, or rebuilt from its folder) than the one it opened."""
    return (
        f"collection {name!r} was forgotten or rebuilt by another nash process while this one "
        "ran; nothing was written (run the command again to update the collection there now)"
    )


class CollectionGoneError(NashError):
    """The collection was removed (``nash forget``) while a command was using it."""

    def __init__(self, name: str, *, reading: bool = False) -> None:
        self.name = name
        super().__init__(
            f"collection {name!r} was removed (nash forget) while this command was reading it"
            if reading
            else f"collection {name!r} was removed (nash forget) while this command was using "
            "it; nothing more was written"
        )


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable collection name, else raise :class:`NashError`."""
    if not _NAME_RE.match(name or ""):
        raise NashError(
            f"invalid collection name '{name}': use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


_LATIN_LETTERS = str.maketrans(
    {"ß": "ss", "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o", "Ł": "L",
     "ł": "l", "Đ": "D", "đ": "d", "Þ": "Th", "þ": "th", "Ð": "D", "ð": "d", "ı": "i"}
)  # fmt: skip


def name_for_folder(root: Path) -> str:
    """A valid collection name from a folder's name: ``~/My Notes`` -> ``My-Notes``, accents
    dropped (``~/Café`` -> ``Cafe``), no leading ``_`` (``~/_posts`` -> ``posts``). A name with
    no Latin letter or digit (``~/文件``) gives ``folder-`` and 8 hex digits of the folder's
    path, which differ from folder to folder; ``/`` gives ``root``."""
    spelled = root.name.translate(_LATIN_LETTERS)  # letters NFKD does not take apart
    latin = unicodedata.normalize("NFKD", spelled).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", latin).strip("-._")[:64].rstrip("-._")
    if cleaned or not root.name:
        return cleaned or "root"
    return "folder-" + hashlib.sha256(os.fsencode(str(root))).hexdigest()[:8]


def _collection_dirs() -> list[Path]:
    base = collections_dir()
    if not base.is_dir():
        blocker = paths.file_in_the_way(base)
        if blocker is not None:  # NASH_HOME names a file: say so, not "no collections yet"
            raise NashError(f"cannot read the collections in {base}: {blocker} is a file")
        return []
    # A collection's folder without its meta.sqlite is a damaged collection, not nothing:
    # finished collections are renamed into place whole, and forgotten ones renamed away first.
    _finish_installs(base)
    return paths.collection_folders()


def list_collections() -> list[Collection]:
    """Every readable collection under the data dir, sorted by name (damaged ones left out:
    :func:`survey_collections` lists them too)."""
    found = []
    for child in _collection_dirs():
        with contextlib.suppress(NashError, sqlite3.Error, OSError):
            found.append(Collection(child.name, child))
    return found


def _has_meta(name: str, directory: Path) -> bool:
    """Whether collection folder ``directory`` holds its ``meta.sqlite``; a
    :class:`DamagedCollectionError` (permission denied) where that cannot be looked at (a
    folder of another user's: one such folder must not stop ``nash status`` listing the rest)."""
    try:
        return (directory / _META).is_file()
    except OSError as error:
        raise DamagedCollectionError(name, _META, error.strerror or str(error)) from None


def same_folder(recorded: Path, root: Path) -> bool:
    """Whether a collection's folder as recorded is ``root`` (resolved): the same path, or a
    link there now (a folder moved to a bigger drive and linked back from where it was)."""
    if recorded == root:
        return True
    try:
        return os.path.samefile(recorded, root)
    except OSError:  # gone, or unreadable: not known to be it
        return False


def collection_of(root: Path) -> str | None:
    """The name of the collection that indexes folder ``root`` (resolved), if any: recorded at
    that path, else at one that leads there now (:func:`same_folder`)."""
    collections = list_collections()
    return next((c.name for c in collections if c.root == root), None) or next(
        (c.name for c in collections if same_folder(c.root, root)), None
    )


@dataclass(frozen=True)
class Listing:
    """One collection directory: the opened collection, or why it cannot be opened."""

    name: str
    collection: Collection | None
    problem: NashError | None


def survey_collections() -> list[Listing]:
    """Every collection under the data dir, sorted by name, damaged ones included (``nash status``
    shows them rather than hiding them)."""
    found = []
    for child in _collection_dirs():
        try:
            if not _has_meta(child.name, child):
                raise DamagedCollectionError(child.name, _META, "missing")
            found.append(Listing(child.name, Collection(child.name, child), None))
        except NashError as error:
            found.append(Listing(child.name, None, error))
    return found


def _connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode; never creates the file unless ``create``: a writer
    must not leave an empty database behind where a collection was removed."""
    uri = f"{Path(os.path.abspath(path)).as_uri()}?mode={'rwc' if create else 'rw'}"
    con = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error:
        con.close()
        raise
    return con


def _connect_reader(path: Path) -> sqlite3.Connection:
    """A connection for reading: :func:`_connect`, else, on a read-only or full disk, a
    read-only one.

    SQLite opens a WAL database read-only only while its ``-wal`` and ``-shm`` files exist (a
    writer has it open) or as *immutable*, which takes no locks and so is safe only where
    nothing can write the file: a read-only file system, or a full one (no writer can open the
    database there either: SQLite could not make the ``-shm`` file, which is why this reader
    is here), without a ``-wal`` left over (whose transactions an immutable reader would not
    see). A folder the user cannot write on a writable disk with room (another user's index)
    is refused: its owner's next commit could change the file under an immutable reader.
    """
    try:
        return _connect(path)
    except sqlite3.OperationalError:
        full = _no_room(path.parent)
        if not full and os.access(path.parent, os.W_OK) and os.access(path, os.W_OK):
            raise
        base = f"{Path(os.path.abspath(path)).as_uri()}?mode=ro"
        con = None
        try:
            con = sqlite3.connect(base, uri=True, isolation_level=None, timeout=30.0)
            con.execute("SELECT 1 FROM info LIMIT 1")
            return con
        except sqlite3.OperationalError:
            if con is not None:
                con.close()
            if not (full or _read_only_fs(path)) or _wal_holds_data(path):
                raise
        return sqlite3.connect(f"{base}&immutable=1", uri=True, isolation_level=None)


def _read_torn(text: str, path: Path) -> bool:
    """Whether SQLite's damage report ``text`` on ``path`` came from a read torn by a writer:
    an immutable reader (:func:`_connect_reader`, on a full disk) takes no lock, and a writer
    that starts once space is freed can change the file under it. Torn if a fresh read finds
    the database whole (``PRAGMA integrity_check``, which also checks each index against its
    table: a damaged index is "malformed" too); never on a read-only file system."""
    if not any(w in text.lower() for w in ("malformed", "corrupt", "not a database")):
        return False
    if _read_only_fs(path):
        return False
    try:
        con = _connect_reader(path)
        try:
            return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _wal_holds_data(path: Path) -> bool:
    """Whether the database ``path`` has a ``-wal`` file that is not empty (one left empty by
    a failed open holds no transaction)."""
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except FileNotFoundError:
        return False
    except OSError:
        return True


#: Free bytes under which a disk counts as full for :func:`_connect_reader`: SQLite's ``-shm``
#: file takes 32 KiB at first.
_ROOM_FOR_SHM = 1 << 20


def _no_room(directory: Path) -> bool:
    """Whether the disk of ``directory`` has no room left for a new file of SQLite's (too few
    free bytes, or no free inode), as this user sees it (root may use reserved blocks)."""
    free = _free_space(directory)
    if free is None:
        return False
    free_bytes, free_inodes, inodes = free
    no_inode = free_inodes == 0 and inodes > 0  # (0 inodes: a file system without a count)
    return free_bytes < _ROOM_FOR_SHM or no_inode


def _free_bytes(directory: Path) -> int | None:
    """Bytes this user may still write on the disk of ``directory`` (None: unknown)."""
    free = _free_space(directory)
    return None if free is None else free[0]


def _free_space(directory: Path) -> tuple[int, int, int] | None:
    """``(free bytes, free inodes, inodes)`` of the disk of ``directory`` as this user sees
    them (root may use reserved blocks), or None where that is unknown."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return None
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    blocks, inodes = (st.f_bfree, st.f_ffree) if root else (st.f_bavail, st.f_favail)
    return blocks * st.f_frsize, inodes, st.f_files


#: A generation's folder (``gen-000012``; not a ``.tmp`` one a killed switch left).
_GEN_DIR = re.compile(r"gen-\d{6}")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def _read_only_fs(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False


def _meta_error(
    name: str,
    directory: Path,
    error: sqlite3.Error,
    root: Path | None = None,
    *,
    reading: bool = True,
):
    """The :class:`NashError` for an SQLite failure on a collection's ``meta.sqlite`` (read by
    a command that writes nothing unless ``reading`` is False: then "nothing more was
    written" where it was forgotten meanwhile)."""
    if not (directory / _META).is_file():
        return CollectionGoneError(name, reading=reading)
    text = str(error)
    if isinstance(error, sqlite3.DatabaseError) and any(w in text.lower() for w in _SQLITE_DAMAGE):
        if _read_torn(text, directory / _META):
            return IndexWriteError(
                f"collection {name!r} changed while it was read; run the command again"
            )
        return DamagedCollectionError(name, _META, text, root)
    hint = ""
    if not os.access(directory, os.W_OK) and not _read_only_fs(directory):
        hint = f" (reading it needs write access to {directory}: SQLite keeps its locks there)"
    elif not os.access(directory / _META, os.R_OK):  # (chmod 000 meta.sqlite)
        hint = f" (permission denied: you may not read {directory / _META})"
    elif any(w in text.lower() for w in ("disk", "readonly", "read-only", "unable to open")):
        hint = " (is its disk full, read-only or gone?)"
    # A full disk (SQLite cannot make its -shm file) may clear: a watcher waits and tries again.
    kind = IndexWriteError if _write_failed(error) else NashError
    return kind(f"cannot read collection {name!r} ({_META}: {text}){hint}")


def _parse_info(info: dict[str, str]) -> dict:
    """The typed ``info`` table; ``ValueError`` (what is wrong) if a key is missing or invalid."""
    parsed: dict = {}
    for key, kind in (
        ("root", str),
        ("bits", int),
        ("generation", int),
        ("created_at", float),
        ("updated_at", float),
    ):
        try:
            parsed[key] = kind(info[key])
        except KeyError:
            raise ValueError(f"no {key!r} recorded") from None
        except ValueError:
            raise ValueError(f"invalid {key!r}: {info[key]!r}") from None
    for key in ("max_bytes", "root_device"):  # optional (collections before them have none)
        value = info.get(key, "")
        if value.isascii() and value.isdigit():
            parsed[key] = int(value)
    return parsed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one that is not ours to signal counts)."""
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        try:
            import psutil
        except ImportError:
            return True  # cannot tell: assume alive, so nothing of it is swept away
        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True


def _live_holder(holder_file: Path) -> str | None:
    """ "another nash process (pid 1234: nash index ~/notes)", as ``holder_file`` (a writer's
    ``writer.pid``) names it, or None where it names no other process that still runs."""
    try:
        info = json.loads(holder_file.read_text(encoding="utf-8"))
        pid = int(info["pid"])
        command = str(info.get("command") or "nash")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not pid_alive(pid):
        return None
    return f"another nash process (pid {pid}: {command})"


def _holder(holder_file: Path) -> str:
    """Who holds a lock, for messages: :func:`_live_holder`, else "another nash process"."""
    return _live_holder(holder_file) or "another nash process"


def _write_holder(holder_file: Path) -> None:
    """Record this process as the lock holder (best effort: only messages read it)."""
    argv = [os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "nash", *sys.argv[1:]]
    if argv[0] in ("-c", "__main__.py", ""):
        argv[0] = "nash"
    tmp = holder_file.with_name(f".{holder_file.name}.{os.getpid()}")
    try:
        tmp.write_text(
            json.dumps({"pid": os.getpid(), "command": shlex.join(argv)}), encoding="utf-8"
        )
        os.replace(tmp, holder_file)
    except OSError:  # a full disk: no holder named, and no temporary file left behind
        with contextlib.suppress(OSError):
            tmp.unlink()


def _clear_holder(holder_file: Path) -> None:
    with contextlib.suppress(OSError):
        holder_file.unlink()


def _training_files(name: str) -> tuple[Path, Path]:
    """The training lock of collection ``name`` and the file naming its holder."""
    base = paths.state_dir()
    return base / f"train-{name}.lock", base / f"train-{name}.pid"


def training_holder(name: str) -> str | None:
    """Who trains collection ``name``'s model right now, for messages ("another nash process
    (pid 1234: nash index ~/notes)"), or None. The holder file of a process killed mid-training
    stays behind, and its pid may run again as another program: it is believed only while the
    training lock is held."""
    from filelock import FileLock, Timeout

    lock_file, holder_file = _training_files(name)
    holder = _live_holder(holder_file)
    if holder is None or not lock_file.exists():
        return None
    try:
        with FileLock(str(lock_file), timeout=0):
            return None  # free: nobody trains
    except Timeout:
        return holder
    except OSError:  # cannot take it to see (a read-only state dir): the file's word
        return holder


@contextlib.contextmanager
def training_turn(name: str, on_wait: Callable[[str], None]) -> Iterator[bool]:
    """Hold collection ``name``'s training lock while this process fits a model for it.

    Two processes that would both fit one collection's model (two `nash index` of a new folder
    at once, a `nash index` beside a watcher's retrain) take turns rather than train twice and
    keep the later model. Yields whether it had to wait: then the caller decides again, with the
    other's model in place (a first index or a due retrain usually has nothing left to fit).
    ``on_wait`` gets one line naming the process waited for. Waits without a limit: a fit takes
    minutes, and Ctrl-C stops the wait. The lock lives in the state dir, not in the collection's
    folder, which a failed first index removes.
    """
    from filelock import FileLock, Timeout

    paths.ensure_dir(paths.state_dir())
    lock_file, holder_file = _training_files(name)
    lock = FileLock(str(lock_file))
    waited = False
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waited = True
            on_wait(
                f"{_holder(holder_file)} is training a model for collection {name!r}; "
                "waiting for it to finish (Ctrl-C to stop)"
            )
            lock.acquire()
    except OSError as error:  # a read-only disk: before the fit, not after it
        raise _unchangeable(name, str(error.strerror or error), lock_file.parent) from None
    try:
        _write_holder(holder_file)
        yield waited
    finally:
        _clear_holder(holder_file)
        lock.release()


@contextlib.contextmanager
def _locked(directory: Path, name: str, timeout: float) -> Iterator[None]:
    """Hold the writer lock of the collection in ``directory`` (which must exist).

    Raises :class:`IndexBusyError`, naming the process that holds it, after ``timeout`` seconds.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(directory / _LOCK))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexBusyError(
            f"index {name!r} is busy: {_holder(directory / _HOLDER)} is updating it; "
            "try again when it has finished"
        ) from None
    except FileNotFoundError:  # forgotten (renamed away) while we waited for the lock
        raise CollectionGoneError(name) from None
    except OSError as error:  # a read-only disk, another user's index, a full disk
        raise refused_write(name, error, directory) from None
    try:
        revived = set(os.listdir(directory)) <= {_LOCK}  # a filelock that re-created the folder
    except FileNotFoundError:  # renamed away after our open, before our flock
        lock.release()
        raise CollectionGoneError(name) from None
    if revived:  # tidied while still locked: a create may put a new collection here after
        _tidy_revived(directory)
        lock.release()
        raise CollectionGoneError(name)
    try:
        yield
    except OSError as error:  # a write's error ("File too large"; a full disk as a compaction
        # copies the model names its file, which would read as that file damaged): name the index
        named = error.filename and Path(os.path.abspath(os.fsdecode(error.filename)))
        if error.errno not in _WRITE_ERRNOS or (named and not named.is_relative_to(directory)):
            raise  # (not the index's: a document's read failed for its own reasons)
        reason = str(error.strerror or error)
        if named and named != directory:  # (the file of the copy or write that failed: a
            reason += f" ({named.relative_to(directory)})"  # source as often as not)
        raise _unchangeable(name, reason, directory, IndexWriteError) from error
    except sqlite3.OperationalError as error:  # SQLite's "database or disk is full"
        if not _write_failed(error):
            raise
        raise _unchangeable(name, f"{_META}: {error}", directory, IndexWriteError) from error
    finally:
        lock.release()


#: Errors of a write that cannot go on (full disk or quota, file size limit, read-only, I/O).
_WRITE_ERRNOS = frozenset(
    getattr(errno, code)
    for code in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EIO")
    if hasattr(errno, code)
)


def refused_write(name: str, error: OSError, directory: Path, doing: str = "change") -> NashError:
    """:func:`_unchangeable` for the OS's ``error``: an ``IndexWriteError`` (a watcher tries
    again) where a full or read-only disk refused, a plain ``NashError`` (another user's
    folder) otherwise."""
    kind = IndexWriteError if error.errno in _WRITE_ERRNOS else NashError
    return _unchangeable(name, str(error.strerror or error), directory, kind, doing)


def _unchangeable(
    name: str,
    reason: str,
    directory: Path,
    kind: type[NashError] = NashError,
    doing: str = "change",
) -> NashError:
    """The one line for a collection whose folder cannot be written (``reason``: the OS's or
    SQLite's), as ``kind`` (``IndexWriteError`` for a write that may succeed later); a full
    disk says what to do. SQLite says "disk I/O error" where it has no room for its ``-shm``
    file: on a disk without room, that is said too."""
    if "disk i/o error" in reason.lower() and _no_room(directory):
        reason += ", the disk is full"
    full = any(w in reason.lower() for w in ("no space", "quota", "disk is full"))
    kept = " (what was committed is kept)" if doing != "create" else ""  # (none yet)
    todo = f"; free some space{kept}" if full else ""
    return kind(f"cannot {doing} collection {name!r}: {reason} ({directory}){todo}")


def _tidy_revived(directory: Path) -> None:
    """Under its lock, remove the folder of a removed collection that taking the lock made
    again: its lock files, then the folder if empty (a whole-tree removal after the lock was
    let go could take a collection created there meanwhile)."""
    for leftover in (_LOCK, _HOLDER):
        with contextlib.suppress(OSError):
            (directory / leftover).unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()


def _remove_directory(name: str, directory: Path, timeout: float) -> Path | None:
    """Delete a collection's directory under its writer lock: renamed away first (one atomic
    step that readers and writers notice), then removed. A directory that is a link is
    unlinked, and where it led (left as it is) returned."""
    if not directory.is_dir():
        return None
    linked = Path(os.path.realpath(directory)) if os.path.islink(directory) else None
    with _locked(directory, name, timeout):
        trash = directory.parent / f".forgotten-{name}-{os.getpid()}"
        _remove_tree(trash)
        os.rename(directory, trash)
    error = _remove_tree(trash)
    if error is not None:  # forgotten (nothing lists it), but its files are still on disk
        raise NashError(
            f"forgot {name}, but could not remove its index files in {trash} "
            f"({(error.strerror or str(error)).lower()}); remove that folder by hand"
        )
    return linked


def _remove_tree(path: Path) -> OSError | None:
    """Remove folder ``path`` whole, giving its owner write access to sub-folders made
    read-only (``chmod -R a-w``, a restored backup) on the way; the error that stopped it, or
    None. A link (a collection's folder linked to another place) is removed, not what it
    points to."""
    if os.path.islink(path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            return error
        return None
    try:
        shutil.rmtree(path)
        return None
    except FileNotFoundError:
        return None
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    for folder, subfolders, _ in os.walk(path):
        for sub in subfolders:
            sub_path = os.path.join(folder, sub)
            if not os.path.islink(sub_path):  # (a link's target is not the index's)
                with contextlib.suppress(OSError):
                    os.chmod(sub_path, 0o700)
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        return error
    return None


def forget_collection(
    name: str, timeout: float = 2.0, on_note: Callable[[str], None] | None = None
) -> Path | None:
    """Delete collection ``name``'s index, damaged or not; its folder if it could be read.
    ``on_note`` hears where index files were left (a collection directory linked elsewhere).

    Waits ``timeout`` seconds for the writer lock, then raises :class:`IndexBusyError` naming
    the process that holds it (a `nash index` or a watcher's update). A retrain holds no lock
    while it trains: it finds the collection gone when it comes to switch, and stops with one
    line. Your files are untouched.
    """
    directory = collections_dir() / name
    if not (_NAME_RE.match(name or "") and directory.is_dir()):  # damaged ones too
        # (a forget killed midway left its copy hidden: asked again, it is swept up now)
        with contextlib.suppress(OSError):
            _sweep_debris(collections_dir())
        known = ", ".join(d.name for d in _collection_dirs()) or "none yet"
        raise NashError(f"no collection named '{name}' (collections: {known})")
    root = None
    with contextlib.suppress(NashError, sqlite3.Error, OSError):
        root = Collection(name, directory).root
    try:
        linked = _remove_directory(name, directory, timeout)
        if linked is not None and on_note is not None:
            on_note(
                f"the index of {name!r} was a link to {linked}: the link is removed, the "
                "files there are left as they are (remove them by hand if nothing else uses them)"
            )
    except CollectionGoneError:
        pass  # gone: forgotten meanwhile, or a folder with no index in it (removed just now)
    except IndexBusyError:
        raise IndexBusyError(
            f"collection {name!r} is being updated by {_holder(directory / _HOLDER)}; stop it "
            f"(or let it finish), then run: nash forget {name}"
        ) from None
    _sweep_debris(collections_dir())  # what a killed rebuild (of any collection) left
    return root


def _finish_installs(base: Path) -> None:
    """Finish a rebuild's switch that a kill cut between its two renames (:meth:`Collection.
    install`, the damaged collection without its ``meta.sqlite``): the collection's folder
    renamed away to ``.forgotten-NAME-PID``, the finished rebuild still ``.new-NAME-PID``, no
    ``NAME``: the rebuild goes into place (as the dead process would have), so that there is
    never no collection. Also done by readers (as SQLite recovers a hot journal); a disk that
    cannot be written leaves it for a writer."""
    for trash in base.glob(".forgotten-*-*"):
        name, pid = trash.name.removeprefix(".forgotten-").rsplit("-", 1)
        rebuilt = base / f".new-{name}-{pid}"
        if (
            pid.isdigit()
            and int(pid) != os.getpid()
            and _NAME_RE.match(name)
            and (rebuilt / _META).is_file()
            and not (base / name).exists()
            and not pid_alive(int(pid))
        ):
            with contextlib.suppress(OSError):
                os.rename(rebuilt, base / name)


def _sweep_debris(base: Path) -> None:
    """Remove what a killed create, rebuild or forget left (``.new-NAME-PID``,
    ``.forgotten-NAME-PID``, whole copies of an index) once its process is gone (a rebuild
    cut in its switch is finished first: :func:`_finish_installs`)."""
    _finish_installs(base)
    for prefix in (".new-", ".forgotten-"):
        for child in base.glob(f"{prefix}*-*"):
            pid = child.name.rsplit("-", 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                _remove_tree(child)


def damage_error(path: Path, reason: str) -> NashError:
    """The error for a damaged file ``path``: a :class:`DamagedCollectionError` naming the
    collection and how to recover when the file belongs to one, else the file and the reason."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(collections_dir()))
    except ValueError:
        return NashError(f"cannot read {path}: {reason}")
    if len(rel.parts) < 2 or not _NAME_RE.match(rel.parts[0]):
        return NashError(f"cannot read {path}: {reason}")
    name = rel.parts[0]
    root = None
    with contextlib.suppress(NashError, sqlite3.Error, OSError):
        root = Collection(name, collections_dir() / name).root
    return DamagedCollectionError(name, "/".join(rel.parts[1:]), reason, root)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    """fsync every file under ``directory`` and every folder in it, itself included."""
    for folder, _folders, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _gen_dirname(gen: int) -> str:
    return f"gen-{gen:06d}"


def _write_at(path: Path, data: bytes, offset: int) -> None:
    """Write ``data`` at ``offset`` of ``path`` (past every committed byte) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written
        os.fsync(fd)
    finally:
        os.close(fd)


class _Damage(Exception):
    """Internal: ``(file relative to the collection, reason)``; callers add name and root."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(what, reason)
        self.what, self.reason = what, reason


def _check_size(path: Path, needed: int) -> None:
    """Raise :class:`_Damage` unless ``path`` holds at least ``needed`` bytes."""
    what = f"{path.parent.name}/{path.name}"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _Damage(what, "missing") from None
    except OSError as error:
        raise _Damage(what, f"unreadable ({error.strerror or error})") from None
    if size < needed:
        raise _Damage(what, f"truncated: {size:,} bytes where the index needs {needed:,}")


def _check_generation(gen_dir: Path, rows: int, bits: int) -> None:
    """Raise :class:`_Damage` if a generation's planes or tf-idf offsets cannot hold its ``rows``
    committed rows (a few stats: cheap enough for every writer and reader)."""
    if not gen_dir.is_dir():
        raise _Damage(gen_dir.name + "/", "missing")
    for w in range(codes.n_words(bits)):
        _check_size(gen_dir / f"plane-{w}.u64", rows * 8)
    _check_size(gen_dir / "tfidf.indptr", (rows + 1) * 8)


def _map(path: Path, dtype: str, length: int, *, scattered: bool = False) -> np.ndarray:
    """Read-only map of the first ``length`` items of ``path`` (an empty array for 0); raises
    :class:`_Damage` if the file is missing or shorter than that. ``scattered``: read a few
    places at a time (the kernel then reads no further ahead than the pages asked for)."""
    if length == 0:
        return np.zeros(0, dtype=dtype)
    _check_size(path, length * np.dtype(dtype).itemsize)
    try:
        mapped = np.memmap(path, dtype=dtype, mode="r", shape=(length,))
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise _Damage(f"{path.parent.name}/{path.name}", f"cannot be mapped ({reason})") from None
    if scattered:
        _advise(mapped, "MADV_RANDOM")
    return mapped


def _advise(mapped: np.ndarray, advice: str) -> None:
    """Tell the kernel how ``mapped`` (an ``np.memmap``) will be read: a hint, which a platform
    without ``madvise`` (or that advice) goes without."""
    handle, flag = getattr(mapped, "_mmap", None), getattr(mmap, advice, None)
    if handle is not None and flag is not None and hasattr(handle, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            handle.madvise(flag)


@dataclass(frozen=True)
class DocMeta:
    """One document as the index records it."""

    path: str
    size: int
    mtime_ns: int
    hash: str
    title: str


@dataclass(frozen=True)
class DocRow:
    """A live document and its row in the current generation."""

    row: int
    path: str
    size: int
    mtime_ns: int
    hash: str
    title: str


def _is_filling(info: dict[str, str], gen: int) -> bool:
    """Whether generation ``gen`` (the current one, by the ``info`` table) is marked as a first
    index's not encoded through yet (:attr:`Writer.filling`)."""
    return gen > 0 and info.get("filling") == str(gen)


def _file_states(con: sqlite3.Connection, gen: int) -> dict[str, tuple[int, int]]:
    """Path -> (size, mtime_ns) of each live document of generation ``gen``: a third of the
    memory of :func:`_docs_by_path`'s rows (their hashes and titles)."""
    select = "SELECT path, size, mtime_ns FROM docs WHERE gen=? AND live=1"
    return {path: (size, mtime_ns) for path, size, mtime_ns in con.execute(select, (gen,))}


def _docs_by_path(
    con: sqlite3.Connection, gen: int, paths: Iterable[str] | None = None
) -> dict[str, DocRow]:
    """Path -> live document of generation ``gen`` (a writer's view, or a rebuild's): every one,
    or those at ``paths`` (looked up in the path index)."""
    select = "SELECT row, path, size, mtime_ns, hash, title FROM docs WHERE gen=? AND live=1"
    if paths is None:
        return {found[1]: DocRow(*found) for found in con.execute(select, (gen,))}
    out = {}
    for marks, chunk in _in_chunks(list(dict.fromkeys(paths))):
        for found in con.execute(f"{select} AND path IN ({marks})", (gen, *chunk)):
            out[found[1]] = DocRow(*found)
    return out


def _tombstones(con: sqlite3.Connection, gen: int) -> int:
    """How many of generation ``gen``'s rows are tombstoned; its documents are its rows less
    these (every committed row is one or the other). Counted in the tombstone index, as the
    live rows, most of them, took 15 ms to count at 100,000 documents."""
    found = con.execute("SELECT count(*) FROM docs WHERE gen=? AND live=0", (gen,)).fetchone()
    return int(found[0])


def _in_chunks(values: list, size: int = 500) -> Iterator[tuple[str, list]]:
    """``values`` as chunks for ``IN (...)`` (SQLite bounds the parameters of a statement):
    ``("?,?,...", chunk)``."""
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield ",".join("?" * len(chunk)), chunk


class Snapshot:
    """A reader's consistent view of one collection: one generation, its committed rows.

    Holds an SQLite read transaction open (WAL: it never blocks, nor is blocked by, a writer) and
    read-only maps of the generation's planes; later commits are not seen until a new snapshot.
    """

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._model_checked = False
        for _attempt in range(READ_ATTEMPTS):
            try:
                con = _connect_reader(collection.directory / _META)
            except sqlite3.Error as error:
                raise collection._meta_error(error) from None
            try:
                con.execute("BEGIN")
                self._con = con
                self._load(con)
                return
            except sqlite3.Error as error:
                con.close()
                raise collection._meta_error(error) from None
            except _Damage as damage:
                con.close()
                # A writer may have switched generations and removed this one between our
                # reads: then retry; if this is still the current generation, it is damaged.
                if damage.what != _META and collection._generation_now() != self.generation:
                    time.sleep(0.05)
                    continue
                raise collection.damaged(damage.what, damage.reason) from None
        raise _keeps_changing(collection.name)

    def _load(self, con: sqlite3.Connection) -> None:
        """Read the generation's numbers and map its committed rows (raises :class:`_Damage`)."""
        info = self._collection._info(con)
        try:
            gen = int(info["generation"])
        except (KeyError, ValueError):
            raise _Damage(_META, "no valid 'generation' recorded") from None
        self.generation = gen
        self.filling = _is_filling(info, gen)  # (Writer.filling)
        self.gen_dir = self._collection.directory / _gen_dirname(gen)
        self.rows, self.bits, self.method = 0, self._collection.bits, ""
        self.trained_docs, self.n_features = 0, 0
        if gen:
            found = con.execute(
                "SELECT rows, bits, method, trained_docs, n_features FROM generations WHERE gen=?",
                (gen,),
            ).fetchone()
            if found is None:
                raise _Damage(_META, f"generation {gen} is not recorded")
            (self.rows, self.bits, self.method, self.trained_docs, self.n_features) = found
            if not (1 <= self.bits <= 1024 and self.rows >= 0 and self.n_features >= 0):
                raise _Damage(_META, f"generation {gen} has invalid numbers")
            _check_generation(self.gen_dir, self.rows, self.bits)
        self.planes = [
            _map(self.gen_dir / f"plane-{w}.u64", "<u8", self.rows)
            for w in range(codes.n_words(self.bits))
        ]
        self._indptr = (
            _map(self.gen_dir / "tfidf.indptr", "<i8", self.rows + 1)
            if self.rows
            else np.zeros(1, dtype="<i8")
        )
        nnz = int(self._indptr[-1]) if self.rows else 0
        if self.rows and (self._indptr[0] != 0 or np.any(np.diff(self._indptr) < 0)):
            raise _Damage(f"{self.gen_dir.name}/tfidf.indptr", "offsets out of order")
        # A query reads the stored vectors of its pool (up to 1,000 rows, anywhere in the
        # files): with the kernel's read-ahead around each, a cold query of a million
        # documents read both files whole (2 × 156 MB) for 5 MB of rows.
        self._indices = _map(self.gen_dir / "tfidf.indices", "<i4", nnz, scattered=True)
        self._data = _map(self.gen_dir / "tfidf.data", "<f4", nnz, scattered=True)
        dead = con.execute("SELECT row FROM docs WHERE gen=? AND live=0", (gen,)).fetchall()
        self.dead_rows = np.fromiter((r for (r,) in dead), dtype=np.int64)

    @property
    def root(self) -> Path:
        """The collection's folder, as recorded."""
        return self._collection.root

    @property
    def encoded_since(self) -> int:
        """Documents encoded with the model after it was fitted and still live: new and changed
        ones, each once however often it was saved since (its earlier rows are tombstones)."""
        appended_dead = int(np.count_nonzero(self.dead_rows >= self.trained_docs))
        return self.rows - self.trained_docs - appended_dead

    @property
    def documents(self) -> int:
        """Live documents in this view."""
        return self.rows - len(self.dead_rows)

    @property
    def max_bytes(self) -> int | None:
        """The collection's remembered ``--max-size`` (:attr:`Collection.max_bytes`)."""
        return self._collection.max_bytes

    @property
    def model_dir(self) -> Path:
        """The generation's saved model; its files that exist are checked on first use (what a
        loader indexes into must be there), so a damaged one raises :class:`DamagedCollectionError`
        before any loader trips over it."""
        directory = self.gen_dir / "model"
        if not self._model_checked:
            self.check_model(require_all=False)
        return directory

    def check_model(self, *, require_all: bool = True, checksums: bool = False) -> None:
        """Raise :class:`DamagedCollectionError` if the model's files are damaged (or missing,
        with ``require_all``)."""
        problem = model_problem(
            self.gen_dir / "model", require_all=require_all, checksums=checksums
        )
        if problem is not None:
            self.check_current()
            raise self._collection.damaged(f"{self.gen_dir.name}/model/{problem[0]}", problem[1])
        self._model_checked = True

    def load_model(self, loader: Callable[[Path], _T]) -> _T:
        """``loader(model_dir)``; raises :class:`GenerationReplaced` rather than an error of the
        loader's when a writer removed this generation after the snapshot was taken."""
        try:
            return loader(self.model_dir)
        except (OSError, ValueError, NashError) as error:
            if isinstance(error, GenerationReplaced):
                raise
            self.check_current()
            raise

    def check_current(self) -> None:
        """Raise :class:`GenerationReplaced` where a writer switched generations since the
        snapshot (what it found may be stale: :meth:`Collection.read` reads again),
        :class:`CollectionGoneError` where ``nash forget`` took the collection away (its first
        step renames the whole folder: the files read as missing, which is no damage)."""
        now = self._collection._generation_now()
        if now is None and not self._collection.directory.is_dir():
            raise CollectionGoneError(self._collection.name, reading=True)
        if now is not None and now != self.generation:
            raise GenerationReplaced(
                f"collection {self._collection.name!r} moved on to generation {now} "
                f"while generation {self.generation} was being read"
            )

    def _query(self, sql: str, args: Sequence) -> list[tuple]:
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.Error as error:
            raise self._collection._meta_error(error) from None

    def doc_by_path(self, path: str) -> DocRow | None:
        """The live document at ``path`` (absolute, as stored), if any."""
        if not path.isascii():
            try:
                path.encode("utf-8")
            except UnicodeEncodeError:  # not UTF-8: never indexed (the crawl skips it)
                return None
        found = self._query(
            "SELECT row, path, size, mtime_ns, hash, title FROM docs "
            "WHERE gen=? AND path=? AND live=1",
            (self.generation, path),
        )
        return DocRow(*found[0]) if found else None

    def docs_by_rows(self, rows: Iterable[int]) -> dict[int, DocRow]:
        """Row number -> document for the given rows (dead ones included)."""
        out: dict[int, DocRow] = {}
        for marks, chunk in _in_chunks([int(r) for r in rows]):
            for found in self._query(
                f"SELECT row, path, size, mtime_ns, hash, title FROM docs "
                f"WHERE gen=? AND row IN ({marks})",
                (self.generation, *chunk),
            ):
                out[found[0]] = DocRow(*found)
        return out

    def live_docs(self) -> list[DocRow]:
        """Every live document, in row order."""
        return [
            DocRow(*found)
            for found in self._query(
                "SELECT row, path, size, mtime_ns, hash, title FROM docs "
                "WHERE gen=? AND live=1 ORDER BY row",
                (self.generation,),
            )
        ]

    def codes_of(self, rows: Sequence[int]) -> np.ndarray:
        """(len(rows), n_words) packed codes of the given rows."""
        idx = np.asarray(rows, dtype=np.int64)
        return np.stack([plane[idx] for plane in self.planes], axis=1).astype(np.uint64)

    def tfidf_rows(self, rows: Sequence[int]) -> CsrRows:
        """The stored tf-idf vectors of ``rows``, in that order (plain arrays: no scipy import,
        which a query cannot afford; :meth:`tfidf_of` gives a scipy CSR matrix)."""
        stored = CsrRows(self._indptr, self._indices, self._data, self.n_features)
        picked = stored.take(rows)
        indices = np.asarray(picked.indices, dtype=np.int32)
        data = np.asarray(picked.data, dtype=np.float32)
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_features):
            # scipy does not check them, and sparse arithmetic on them crashes the process
            raise self._term_ids_damaged()
        if not _weights_in_range(data):  # NaN scores would rank nothing and break --json
            raise self._weights_damaged()
        return CsrRows(picked.indptr, indices, data, self.n_features)

    def tfidf_of(self, rows: Sequence[int]) -> sp.csr_matrix:
        """The stored tf-idf vectors of ``rows`` as a (len(rows), n_features) CSR matrix."""
        return self.tfidf_rows(rows).to_scipy()

    def _term_ids_damaged(self) -> DamagedCollectionError:
        return self._collection.damaged(
            f"{self.gen_dir.name}/tfidf.indices", f"term ids outside 0..{self.n_features - 1}"
        )

    def _weights_damaged(self) -> DamagedCollectionError:
        return self._collection.damaged(
            f"{self.gen_dir.name}/tfidf.data", "weights not finite or outside 0..1"
        )

    def check_values(self, chunk: int = 1 << 24) -> None:
        """Raise :class:`DamagedCollectionError` if a stored term id is out of range or a
        weight is not finite: a full read of ``tfidf.indices`` and ``tfidf.data`` (8 bytes per
        stored entry), which ``nash index`` and ``nash status`` afford and a query does not (it
        checks only the rows it reads)."""
        for mapped in (self._indices, self._data):
            _advise(mapped, "MADV_SEQUENTIAL")  # (read whole, in order: read ahead again)
        for start in range(0, len(self._indices), chunk):
            part = np.asarray(self._indices[start : start + chunk])
            if part.min() < 0 or part.max() >= self.n_features:
                raise self._term_ids_damaged()
            if not _weights_in_range(np.asarray(self._data[start : start + chunk])):
                raise self._weights_damaged()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._con.execute("COMMIT")
        self._con.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _weights_in_range(data: np.ndarray) -> bool:
    """Whether stored tf-idf weights can be what was stored: an L2-normalised row of
    non-negative weights has each within 0..1 (finite garbage, 1e38 say, scored 1e75)."""
    if not data.size:
        return True
    return bool(np.isfinite(data).all() and data.min() >= 0 and data.max() <= 1 + 1e-3)


class Collection:
    """A named collection's index directory. Reading never waits; writing takes :meth:`writer`.

    Opening reads ``meta.sqlite``: :class:`DamagedCollectionError` if it is no usable database.
    """

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.root: Path | None = None
        try:
            st = os.stat(directory)
            self._dir_id = (st.st_dev, st.st_ino)
            con = _connect_reader(directory / _META)
            try:
                info = self._info(con)
            finally:
                con.close()
        except FileNotFoundError:
            raise CollectionGoneError(name, reading=True) from None
        except sqlite3.Error as error:
            raise self._meta_error(error) from None
        if "schema" not in info:
            raise self.damaged(_META, "no 'schema' recorded")
        if info["schema"] != str(SCHEMA_VERSION):
            raise IncompatibleCollectionError(
                f"collection {name!r} was written by an incompatible nash version "
                f"(schema {info.get('schema')}, this nash reads {SCHEMA_VERSION}); "
                f"run: nash forget {name} && nash index <folder>"
            )
        try:
            parsed = _parse_info(info)
        except ValueError as error:
            raise self.damaged(_META, str(error)) from None
        self.root = Path(parsed["root"])
        self.bits = parsed["bits"]
        self.created_at = parsed["created_at"]
        #: The last ``--max-size`` given to ``nash index`` (bytes), which later runs and the
        #: watcher keep to; None: never given (the crawl's default).
        self.max_bytes: int | None = parsed.get("max_bytes")
        #: The device (``st_dev``) the folder was on when last indexed with documents in it: an
        #: empty folder on another device is a drive not mounted there (None: not recorded).
        self.root_device: int | None = parsed.get("root_device")

    @staticmethod
    def _info(con: sqlite3.Connection) -> dict[str, str]:
        return dict(con.execute("SELECT key, value FROM info").fetchall())

    def damaged(self, what: str, reason: str) -> DamagedCollectionError:
        """The error for damaged file ``what`` (relative to the collection's directory)."""
        return DamagedCollectionError(self.name, what, reason, self.root)

    def _meta_error(self, error: sqlite3.Error, *, reading: bool = True) -> NashError:
        return _meta_error(self.name, self.directory, error, self.root, reading=reading)

    def _generation_now(self) -> int | None:
        """The committed generation, read afresh (None if it cannot be read)."""
        try:
            con = _connect_reader(self.directory / _META)
        except sqlite3.Error:
            return None
        try:
            return int(self._info(con)["generation"])
        except (sqlite3.Error, KeyError, ValueError):
            return None
        finally:
            con.close()

    # -- opening and creating ------------------------------------------------------------
    @classmethod
    def open(cls, name: str) -> Collection:
        """The existing collection ``name``; :class:`NashError` (listing the known ones) if none,
        :class:`DamagedCollectionError` if its ``meta.sqlite`` is missing or unreadable."""
        _finish_installs(collections_dir())  # (a rebuild cut in its switch: there it is)
        directory = collections_dir() / name
        named = bool(_NAME_RE.match(name or ""))
        if named and directory.is_dir() and not _has_meta(name, directory):
            raise DamagedCollectionError(name, _META, "missing")  # as nash status lists it
        if not named or not (directory / _META).is_file():
            known = ", ".join(d.name for d in _collection_dirs()) or "none yet"
            raise NashError(f"no collection named '{name}' (collections: {known})")
        return cls(name, directory)

    @classmethod
    def exists(cls, name: str) -> bool:
        """Whether a collection ``name`` is there (an invalid name is none)."""
        return bool(_NAME_RE.match(name or "")) and _has_meta(name, collections_dir() / name)

    @classmethod
    def create(cls, name: str, root: Path, bits: int, *, staged: bool = False) -> Collection:
        """Create an empty collection (no model yet) for ``root``, atomically (temp dir, rename).

        ``staged=True`` leaves it in its hidden temporary directory, to be built there and then
        put in place of a damaged collection of the same name by :meth:`install`.
        """
        validate_name(name)
        if not 1 <= bits <= 1024:
            raise NashError(f"--bits must be between 1 and 1024, got {bits}")
        base = paths.ensure_dir(collections_dir())
        final = base / name
        if not staged and (final / _META).is_file():
            raise NashError(f"collection {name!r} already exists")
        _sweep_debris(base)
        tmp = base / f".new-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
        except OSError as error:  # a read-only or full disk: one line
            raise refused_write(name, error, base, "create") from None
        try:
            cls._write_new_meta(tmp, name, root, bits)
        except BaseException as error:  # a full disk: no half-made collection left behind
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(error, sqlite3.OperationalError) and _write_failed(error):
                raise _unchangeable(
                    name, f"{_META}: {error}", base, IndexWriteError, "create"
                ) from None
            raise
        if staged:
            return cls(name, tmp)
        try:
            if final.exists() and not (final / _META).is_file():
                shutil.rmtree(final)  # debris of an interrupted `forget`
            os.rename(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if (final / _META).is_file():
                return cls.open(name)
            raise
        _fsync_dir(base)
        return cls(name, final)

    @staticmethod
    def _write_new_meta(tmp: Path, name: str, root: Path, bits: int) -> None:
        """The ``meta.sqlite`` of a new, empty collection in folder ``tmp``."""
        con = _connect(tmp / _META, create=True)
        try:
            con.executescript(_SCHEMA)
            con.execute(_DEAD_ROWS_INDEX)
            now = time.time()
            con.execute("BEGIN IMMEDIATE")
            con.executemany(
                "INSERT INTO info (key, value) VALUES (?, ?)",
                [
                    ("schema", str(SCHEMA_VERSION)),
                    ("name", name),
                    ("root", str(Path(root).resolve())),
                    ("bits", str(bits)),
                    ("generation", "0"),
                    ("created_at", repr(now)),
                    ("updated_at", repr(now)),
                ],
            )
            con.execute("COMMIT")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()

    def install(self, timeout: float = 0.0) -> None:
        """Put this staged collection (``create(..., staged=True)``, now built) in place of the
        damaged collection of its name, under that one's writer lock.

        The new generation is renamed into the old directory under a number no file there uses,
        then the new ``meta.sqlite`` replaces the damaged one (after its stale WAL files are
        removed): each step is atomic, so a crash leaves either the damaged collection (and a
        stray generation the next writer removes) or the rebuilt one, never no collection.
        """
        base = collections_dir()
        final = base / self.name
        staged = self.directory
        if not final.exists():  # forgotten while it was rebuilt: do not bring it back
            raise CollectionGoneError(self.name)
        if not (final / _META).is_file():  # it had lost its meta.sqlite: nothing to keep
            trash = base / f".forgotten-{self.name}-{os.getpid()}"
            with _locked(final, self.name, timeout):  # a forget or another rebuild waits
                if (final / _META).is_file():  # another rebuild got there first
                    raise NashError(f"collection {self.name!r} was rebuilt meanwhile; run again")
                os.rename(final, trash)
                os.rename(staged, final)
                _fsync_dir(base)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            with _locked(final, self.name, timeout):
                con = _connect(staged / _META)
                try:
                    gen = int(self._info(con)["generation"])
                    used = [gen]
                    for child in final.glob("gen-*"):
                        with contextlib.suppress(ValueError):
                            used.append(int(child.name[4:10]))
                    target = max(used) + 1
                    con.execute("BEGIN IMMEDIATE")
                    con.execute("UPDATE generations SET gen=? WHERE gen=?", (target, gen))
                    con.execute("UPDATE docs SET gen=? WHERE gen=?", (target, gen))
                    con.execute("UPDATE info SET value=? WHERE key='generation'", (str(target),))
                    con.execute("COMMIT")
                    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                finally:
                    con.close()
                os.rename(staged / _gen_dirname(gen), final / _gen_dirname(target))
                _fsync_dir(final)
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(final / (_META + suffix))
                os.replace(staged / _META, final / _META)
                _fsync_dir(final)
                for child in final.glob("gen-*"):
                    if child.name != _gen_dirname(target):
                        shutil.rmtree(child, ignore_errors=True)
            shutil.rmtree(staged, ignore_errors=True)
        self.directory = final
        st = os.stat(final)
        self._dir_id = (st.st_dev, st.st_ino)

    def check_writable(self, room: int = 0) -> None:
        """Raise the writer lock's one-line error where this collection's folder cannot be
        written (a read-only disk, another user's index), or its disk has fewer than ``room``
        bytes free: before a retrain's minutes of training rather than after them."""
        free = _free_bytes(self.directory) if room else None
        if _read_only_fs(self.directory):
            reason = "Read-only file system"
        elif not os.access(self.directory, os.W_OK | os.X_OK):
            reason = "Permission denied"
        elif free is not None and free < room:
            reason = (
                f"No space left on device for a new model and codes ({_megabytes(free)} free, "
                f"about {_megabytes(room)} needed)"
            )
        else:
            return
        raise _unchangeable(self.name, reason, self.directory)

    def generation_bytes(self) -> int:
        """The bytes the newest generation's files take (what a retrain writes again)."""
        generations = sorted(p for p in self.directory.glob("gen-*") if _GEN_DIR.fullmatch(p.name))
        if not generations:
            return 0
        total = 0
        for path in generations[-1].rglob("*"):
            with contextlib.suppress(OSError):
                total += path.stat().st_size if path.is_file() else 0
        return total

    # -- reading -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """A consistent read-only view of the current generation (never waits for a writer)."""
        return Snapshot(self)

    def read(self, look: Callable[[Snapshot], _T]) -> _T:
        """``look(snapshot)``, taken again with a fresh snapshot when a writer switched
        generations and removed the one it was reading (:class:`GenerationReplaced`)."""
        for _attempt in range(READ_ATTEMPTS):
            with self.snapshot() as snap:
                try:
                    return look(snap)
                except GenerationReplaced:
                    continue
        raise _keeps_changing(self.name)

    def check(self) -> None:
        """Raise :class:`DamagedCollectionError` if a file the collection needs is missing or
        damaged (what `nash status` reports): metadata, planes, tf-idf vectors, model files."""

        def check(snap: Snapshot) -> None:
            if snap.generation:
                snap.check_model(require_all=True, checksums=True)
                snap.check_values()

        self.read(check)

    @contextlib.contextmanager
    def _read_meta(self) -> Iterator[tuple[sqlite3.Connection, dict[str, str], int]]:
        """A read transaction on ``meta.sqlite``, its info table and the current generation;
        SQLite errors and a missing generation become this collection's damage errors."""
        try:
            con = _connect_reader(self.directory / _META)
            try:
                con.execute("BEGIN")
                info = self._info(con)
                try:
                    generation = int(info["generation"])
                except (KeyError, ValueError):  # (only here: the caller's own errors are its)
                    raise self.damaged(_META, "no valid 'generation' recorded") from None
                yield con, info, generation
                con.execute("COMMIT")
            finally:
                con.close()
        except sqlite3.Error as error:
            raise self._meta_error(error) from None

    def recorded_docs(self) -> dict[str, DocRow]:
        """Path -> live document of the current generation, from ``meta.sqlite`` alone (what a
        rebuild of a collection with damaged generation files still knows)."""
        with self._read_meta() as (con, _info, gen):
            return _docs_by_path(con, gen)

    def file_states(self) -> dict[str, tuple[int, int]]:
        """Path -> (size, mtime_ns) of each live document, from ``meta.sqlite`` alone: what a
        crawl needs to tell the files it need not open (cheaper than :meth:`recorded_docs`)."""
        with self._read_meta() as (con, _info, gen):
            return _file_states(con, gen)

    def filling(self) -> bool:
        """Whether a first index committed this collection's model and has not encoded every
        file since (:attr:`Writer.filling`): one read of the info table."""
        with self._read_meta() as (_con, info, gen):
            return _is_filling(info, gen)

    def summary(self) -> dict:
        """What `nash status` shows: name, root, live documents, bits, model, last update."""
        with self._read_meta() as (con, info, gen):
            dead = _tombstones(con, gen)
            found = con.execute(
                "SELECT method, trained_docs, rows FROM generations WHERE gen=?", (gen,)
            ).fetchone()
        return {
            "name": self.name,
            "root": str(self.root),
            "documents": int(found[2]) - int(dead) if found else 0,
            "bits": self.bits,
            "model": found[0] if found else None,
            "trained_docs": int(found[1]) if found else 0,
            "generation": gen,
            "updated_at": float(info["updated_at"]),
            "filling": _is_filling(info, gen),
        }

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, timeout: float = 0.0) -> Iterator[Writer]:
        """Hold the collection's writer lock, waiting at most ``timeout`` seconds.

        Raises :class:`IndexBusyError` if another process keeps it (a `nash index` or a watcher),
        naming that process, and :class:`CollectionGoneError` if the collection was removed.
        """
        if not (self.directory / _META).is_file():
            raise CollectionGoneError(self.name)
        with _locked(self.directory, self.name, timeout):
            self._check_still_here()
            _write_holder(self.directory / _HOLDER)
            try:
                w = Writer(self)
                try:
                    yield w
                finally:
                    w.close()
            finally:
                _clear_holder(self.directory / _HOLDER)

    def _check_still_here(self) -> None:
        """Under the lock: is the directory still the collection this object opened? A `nash
        forget` (gone) or a rebuild of a damaged one (replaced) may have happened while we
        waited."""
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            raise CollectionGoneError(self.name) from None
        if not (self.directory / _META).is_file():
            _tidy_revived(self.directory)
            raise CollectionGoneError(self.name)
        if (st.st_dev, st.st_ino) != self._dir_id:
            raise IndexBusyError(_replaced_meanwhile(self.name))

    def remove(self, timeout: float = 2.0) -> None:
        """Delete this collection's index (waits briefly for a running writer)."""
        _remove_directory(self.name, self.directory, timeout)


class Writer:
    """Mutations of one collection; only ever exists while the writer lock is held.

    Appends, tombstones, re-paths and stat updates are staged in one SQLite transaction, which
    :meth:`commit` ends; the plane bytes of appended rows are on disk before it.
    """

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._in_tx = False
        self._commits_held = False
        try:
            self._con = _connect(collection.directory / _META)
        except sqlite3.Error as error:
            if not _write_failed(error):
                raise collection._meta_error(error, reading=False) from None
            raise _unchangeable(
                collection.name, f"{_META}: {error}", collection.directory, IndexWriteError
            ) from None
        try:
            info = Collection._info(self._con)
            if float(info["created_at"]) != collection.created_at:
                raise IndexBusyError(_replaced_meanwhile(collection.name))
            # What another writer changed since this process opened the collection (a retrain
            # with other --bits): a compaction here writes the current generation's length.
            try:
                parsed = _parse_info(info)
            except ValueError as error:
                raise collection.damaged(_META, str(error)) from None
            collection.bits, collection.max_bytes = parsed["bits"], parsed.get("max_bytes")
            collection.root_device = parsed.get("root_device")
            self._collect_garbage()
            # Only a speed-up: a full disk must not stop an update that has nothing to write.
            with contextlib.suppress(sqlite3.OperationalError):
                self._con.execute(_DEAD_ROWS_INDEX)
        except sqlite3.Error as error:
            self._con.close()
            raise collection._meta_error(error, reading=False) from None
        except (KeyError, ValueError):
            self._con.close()
            raise collection.damaged(_META, "no valid 'created_at' recorded") from None
        except BaseException:
            self._con.close()
            raise

    # -- state ---------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(Collection._info(self._con)["generation"])

    def _gen_row(self, gen: int) -> tuple[int, int, str, int]:
        return self._con.execute(
            "SELECT rows, bits, method, trained_docs FROM generations WHERE gen=?", (gen,)
        ).fetchone()

    @property
    def rows(self) -> int:
        gen = self.generation
        return int(self._gen_row(gen)[0]) if gen else 0

    def gen_dir(self, gen: int | None = None) -> Path:
        return self.collection.directory / _gen_dirname(self.generation if gen is None else gen)

    def live_docs(self) -> dict[str, DocRow]:
        """Path -> live document of the current generation."""
        return _docs_by_path(self._con, self.generation)

    def file_states(self) -> dict[str, tuple[int, int]]:
        """Path -> (size, mtime_ns) of each live document of the current generation: what
        tells an update which files changed, without every row's hash and title."""
        return _file_states(self._con, self.generation)

    def live_docs_at(self, paths: Iterable[str]) -> dict[str, DocRow]:
        """Path -> live document of the current generation, of ``paths`` only: a watcher's
        update of a few files reads their rows, not the whole collection's (0.48 s of every
        update at 100,000 documents)."""
        return _docs_by_path(self._con, self.generation, paths)

    def counts(self) -> dict[str, int]:
        """rows, live, dead, trained_docs and encoded_since of the current generation."""
        gen = self.generation
        if gen == 0:
            return {"rows": 0, "live": 0, "dead": 0, "trained_docs": 0, "encoded_since": 0}
        rows, _bits, _method, trained = self._gen_row(gen)
        dead = _tombstones(self._con, gen)
        appended_dead = self._con.execute(
            "SELECT count(*) FROM docs WHERE gen=? AND live=0 AND row>=?", (gen, trained)
        ).fetchone()[0]
        return {
            "rows": rows,
            "live": rows - dead,
            "dead": dead,
            "trained_docs": trained,
            "encoded_since": rows - trained - int(appended_dead),  # as Snapshot.encoded_since
        }

    # -- staged changes ------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_tx:
            self._con.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def remember_max_bytes(self, max_bytes: int | None) -> None:
        """Record the size limit later runs keep to (see :attr:`Collection.max_bytes`); None,
        none given: nothing to record."""
        if max_bytes is None:
            return
        self._remember_info("max_bytes", max_bytes)
        self.collection.max_bytes = max_bytes

    @property
    def filling(self) -> bool:
        """Whether the current generation is a first index's, not encoded through yet: its
        model was committed first (a large folder's first index encodes for minutes after the
        fit, and a stop then kept nothing), and the documents a later run adds belong to it,
        not to the changes since the fit (:meth:`count_as_fitted`)."""
        info = Collection._info(self._con)
        return _is_filling(info, int(info["generation"]))

    @property
    def filled_from_ns(self) -> int | None:
        """When the filling first index looked at its folder (ns since the epoch; None where
        not filling, or where the run that marked it did not record it): files made or changed
        after it are changes since the fit, not the fit's (:meth:`set_filling`)."""
        info = Collection._info(self._con)
        if not _is_filling(info, int(info["generation"])):
            return None
        try:
            return int(info["filled_from_ns"])
        except (KeyError, ValueError):
            return None

    def set_filling(self, filling: bool, *, crawled_ns: int | None = None) -> None:
        """Mark the current generation as being filled (:attr:`filling`), or done; commits.
        ``crawled_ns``: when the first index crawled the folder (:attr:`filled_from_ns`)."""
        if filling and crawled_ns is not None:
            self._remember_info("filled_from_ns", crawled_ns)
        self._remember_info("filling", self.generation if filling else 0)

    def count_as_fitted(self) -> None:
        """Count every row of the current generation as the fit's (staged, for :meth:`commit`):
        what a first index encodes after committing its model is no change since the fit, and
        must not make a retrain due."""
        self._begin()
        self._con.execute(
            "UPDATE generations SET trained_docs=rows WHERE gen=?", (self.generation,)
        )

    def tombstone(self, rows: Iterable[int]) -> None:
        """Mark rows deleted (their codes stay in the planes, unlisted, until a compaction)."""
        self._begin()
        self._con.executemany(
            "UPDATE docs SET live=0 WHERE gen=? AND row=?",
            [(self.generation, int(r)) for r in rows],
        )

    def repath(self, row: int, meta: DocMeta) -> None:
        """Point an existing row at a new path / stat (a move or a touched file), no re-encoding."""
        self._begin()
        self._con.execute(
            "UPDATE docs SET path=?, size=?, mtime_ns=?, hash=?, title=? WHERE gen=? AND row=?",
            (meta.path, meta.size, meta.mtime_ns, meta.hash, meta.title, self.generation, row),
        )

    def append(self, words: np.ndarray, tfidf, metas: Sequence[DocMeta]) -> None:
        """Append rows to the current generation: plane bytes written and fsynced now, the
        rows become visible at :meth:`commit`. ``words`` is (n, n_words) uint64, ``tfidf`` CSR."""
        n = len(metas)
        if n == 0:
            return
        gen = self.generation
        if gen == 0:
            raise NashError("internal: append before the collection has a model")
        words = np.asarray(words, dtype=np.uint64)
        base = self.rows
        gdir = self.gen_dir(gen)
        try:
            _check_generation(gdir, base, int(self._gen_row(gen)[1]))
        except _Damage as damage:
            raise self.collection.damaged(damage.what, damage.reason) from None
        _append_rows(gdir, base, words, tfidf)
        self._begin()
        self._con.executemany(
            "INSERT INTO docs (gen, row, path, size, mtime_ns, hash, title, live) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            [
                (gen, base + i, m.path, m.size, m.mtime_ns, m.hash, m.title)
                for i, m in enumerate(metas)
            ],
        )
        self._con.execute("UPDATE generations SET rows=? WHERE gen=?", (base + n, gen))

    def commit(self) -> None:
        """Make everything staged visible to readers, atomically (held back while a
        :meth:`new_generation`'s ``before_commit`` runs: the switch commits it)."""
        if self._in_tx and not self._commits_held:
            self._con.execute(
                "UPDATE info SET value=? WHERE key='updated_at'", (repr(time.time()),)
            )
            _failpoint("before-commit")
            self._con.execute("COMMIT")
            self._in_tx = False

    def remember_root_device(self, device: int) -> None:
        """Record the device the collection's folder is on (:attr:`Collection.root_device`)."""
        self._remember_info("root_device", device)
        self.collection.root_device = device

    def _remember_info(self, key: str, value: int) -> None:
        """Set ``key`` in the info table, writing only when it changed (as recorded now, not
        when the collection was opened: the writer lock holds it still)."""
        found = self._con.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        if found is None or found[0] != str(value):
            self._begin()
            self._con.execute(
                "INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)", (key, str(value))
            )
            self.commit()

    def move_root(self, old: Path, root: Path) -> None:
        """Record that the collection's folder moved from ``old`` to ``root``: the root and
        every stored path under ``old`` (all generations), in one transaction."""
        prefix = str(old).rstrip(os.sep) + os.sep
        self._begin()
        self._con.execute("UPDATE info SET value=? WHERE key='root'", (str(root),))
        self._con.execute(
            "UPDATE docs SET path = ? || substr(path, ?) WHERE substr(path, 1, ?) = ?",
            (str(root).rstrip(os.sep) + os.sep, len(prefix) + 1, len(prefix), prefix),
        )
        self.commit()
        self.collection.root = root

    def rollback(self) -> None:
        if self._in_tx:
            # A COMMIT that failed (disk full) may have rolled back already.
            if self._con.in_transaction:
                self._con.execute("ROLLBACK")
            self._in_tx = False

    # -- generations ---------------------------------------------------------------------
    def new_generation(
        self,
        save_model,
        words: np.ndarray,
        tfidf,
        metas: Sequence[DocMeta],
        *,
        method: str,
        trained_docs: int,
        bits: int | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> int:
        """Write a complete new generation and switch to it in one transaction.

        ``save_model(directory)`` writes the model (e.g. ``hasher.save``); the rows get numbers
        0..n-1. The old generation's files are removed after the switch (open maps stay valid).
        ``before_commit()`` runs inside the switch's transaction, on the new generation, with
        its commits held back: what it stages (a retrain's catch-up) becomes visible with the
        switch, or, if it fails or the process dies, neither does.
        """
        from nashcli import __version__

        self.rollback()
        old = self.generation
        gen = self._next_gen()
        final = self.gen_dir(gen)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            save_model(tmp / "model")
            n_bits = bits or self.collection.bits
            for w in range(codes.n_words(n_bits)):
                (tmp / f"plane-{w}.u64").touch()
            _write_at(tmp / "tfidf.indptr", np.zeros(1, dtype="<i8").tobytes(), 0)
            (tmp / "tfidf.indices").touch()
            (tmp / "tfidf.data").touch()
            _append_rows(tmp, 0, np.asarray(words, dtype=np.uint64), tfidf)
            _fsync_tree(tmp)  # the model too: on disk before the commit that makes it current
            _failpoint("generation-written")
            os.rename(tmp, final)
            _fsync_dir(final.parent)
            self._begin()
            self._con.execute(
                "INSERT INTO generations "
                "(gen, rows, bits, method, trained_docs, n_features, created_at, version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    gen,
                    len(metas),
                    n_bits,
                    method,
                    trained_docs,
                    int(tfidf.shape[1]),
                    time.time(),
                    __version__,
                ),
            )
            self._con.executemany(
                "INSERT INTO docs (gen, row, path, size, mtime_ns, hash, title, live) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                [
                    (gen, i, m.path, m.size, m.mtime_ns, m.hash, m.title)
                    for i, m in enumerate(metas)
                ],
            )
            self._con.execute("UPDATE info SET value=? WHERE key='generation'", (str(gen),))
            self._con.execute("UPDATE info SET value=? WHERE key='bits'", (str(n_bits),))
            self._con.execute("DELETE FROM docs WHERE gen=?", (old,))
            self._con.execute("DELETE FROM generations WHERE gen=?", (old,))
            if before_commit is not None:
                self._commits_held = True
                try:
                    before_commit()
                finally:
                    self._commits_held = False
            self.commit()
        except BaseException:  # disk full, Ctrl-C...: no half-written generation stays behind
            self.rollback()
            shutil.rmtree(tmp, ignore_errors=True)
            if self.collection._generation_now() not in (gen, None):  # not switched to it
                shutil.rmtree(final, ignore_errors=True)
            raise
        self.collection.bits = n_bits
        if old:
            shutil.rmtree(self.gen_dir(old), ignore_errors=True)
        return gen

    def compact(self) -> int:
        """Rewrite the current generation without its tombstoned rows (same model)."""
        snap = self.collection.snapshot()
        try:
            live = snap.live_docs()
            rows = [d.row for d in live]
            words = snap.codes_of(rows)
            tfidf = snap.tfidf_of(rows)
            method = snap.method
            # The model's training rows come first in a generation: those still live are what
            # it was fitted on now, so rows − trained_docs keeps counting what was encoded
            # since (with the old count, adding after many deletions never retrained).
            trained = sum(d.row < snap.trained_docs for d in live)
            old_model = snap.model_dir

            def copy_model(target: Path) -> None:
                # File by file (the model folder is flat): a full disk raises its own OSError,
                # where copytree gathers every failure into one shutil.Error of tuples.
                target.mkdir()
                for item in sorted(old_model.iterdir()):
                    shutil.copyfile(item, target / item.name)

            metas = [DocMeta(d.path, d.size, d.mtime_ns, d.hash, d.title) for d in live]
            return self.new_generation(
                copy_model, words, tfidf, metas, method=method, trained_docs=trained, bits=snap.bits
            )
        finally:
            snap.close()

    def _next_gen(self) -> int:
        gens = [self.generation]
        for child in self.collection.directory.glob("gen-*"):
            with contextlib.suppress(ValueError):
                gens.append(int(child.name[4:10]))
        return max(gens) + 1

    def _collect_garbage(self) -> None:
        """Remove generation directories no committed state refers to (left by a crash)."""
        current = _gen_dirname(self.generation)
        for child in self.collection.directory.glob("gen-*"):
            if child.name != current:
                shutil.rmtree(child, ignore_errors=True)

    def close(self) -> None:
        self.rollback()
        self._con.close()


def _append_rows(gdir: Path, base: int, words: np.ndarray, tfidf) -> None:
    """Write rows ``base..base+n-1`` (codes and tf-idf) past the committed end, fsynced."""
    n = words.shape[0]
    if n == 0:
        return
    for w in range(words.shape[1]):
        plane = np.ascontiguousarray(words[:, w]).astype("<u8")
        _write_at(gdir / f"plane-{w}.u64", plane.tobytes(), base * 8)
    tfidf = tfidf.tocsr()
    indptr_path = gdir / "tfidf.indptr"
    with open(indptr_path, "rb") as f:
        f.seek(base * 8)
        nnz0 = int(np.frombuffer(f.read(8), dtype="<i8")[0])
    _write_at(gdir / "tfidf.indices", tfidf.indices.astype("<i4").tobytes(), nnz0 * 4)
    _write_at(gdir / "tfidf.data", tfidf.data.astype("<f4").tobytes(), nnz0 * 4)
    ends = (nnz0 + tfidf.indptr[1:].astype(np.int64)).astype("<i8")
    _write_at(indptr_path, ends.tobytes(), (base + 1) * 8)
    _failpoint("rows-written")


def _failpoint(name: str) -> None:
    """Test hook: with ``NASH_TEST_PAUSE_AT=name``, announce and stop here (to be SIGKILLed).

    Makes crash tests deterministic: the test waits for ``$NASH_TEST_PAUSE_FILE`` to appear,
    then kills the process at exactly this point. Does nothing otherwise.
    """
    if os.environ.get("NASH_TEST_PAUSE_AT") != name:
        return
    flag = os.environ.get("NASH_TEST_PAUSE_FILE")
    if flag:  # written, then renamed: the test may read the file as soon as it exists
        written = Path(f"{flag}.tmp")
        written.write_text(str(os.getpid()))
        os.replace(written, flag)
    while True:
        time.sleep(1)
