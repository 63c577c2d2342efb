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

Why it is crash-safe: plane and tf-idf bytes are written and fsynced *before* the SQLite
transaction that raises the generation's committed row count, and readers map only committed
rows, so bytes written by a writer that was killed are invisible (the next writer overwrites
them). A retrain or a compaction writes a whole new generation directory under a temporary name,
renames it into place and switches to it in one transaction; files a reader may have mapped are
never rewritten in place (that would kill the reader with SIGBUS), only unlinked later.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nashcli import codes, paths
from nashcli.errors import IndexBusyError, NashError

SCHEMA_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_META = "meta.sqlite"
_LOCK = "writer.lock"

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


def collections_dir() -> Path:
    """Where every collection's directory lives."""
    return paths.data_dir() / "collections"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a usable collection name, else raise :class:`NashError`."""
    if not _NAME_RE.match(name or ""):
        raise NashError(
            f"invalid collection name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64, not starting with a dot)"
        )
    return name


def name_for_folder(root: Path) -> str:
    """A collection name derived from a folder's name (``~/My Notes`` -> ``My-Notes``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.")[:64]
    return cleaned or "root"


def list_collections() -> list[Collection]:
    """Every collection under the data dir, sorted by name."""
    base = collections_dir()
    if not base.is_dir():
        return []
    found = []
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not (child / _META).is_file():
            continue
        with contextlib.suppress(NashError, sqlite3.Error):
            found.append(Collection(child.name, child))
    return found


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    return con


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _map(path: Path, dtype: str, length: int) -> np.ndarray:
    """Read-only map of the first ``length`` items of ``path`` (an empty array for 0)."""
    if length == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


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


class Snapshot:
    """A reader's consistent view of one collection: one generation, its committed rows.

    Holds an SQLite read transaction open (WAL: it never blocks, nor is blocked by, a writer) and
    read-only maps of the generation's planes; later commits are not seen until a new snapshot.
    """

    def __init__(self, collection: Collection) -> None:
        for _attempt in range(20):
            con = _connect(collection.directory / _META)
            try:
                con.execute("BEGIN")
                self._con = con
                gen = int(collection._info(con)["generation"])
                self.generation = gen
                self.gen_dir = collection.directory / _gen_dirname(gen)
                self.rows, self.bits, self.method = 0, collection.bits, ""
                self.trained_docs, self.n_features = 0, 0
                if gen:
                    (self.rows, self.bits, self.method, self.trained_docs, self.n_features) = (
                        con.execute(
                            "SELECT rows, bits, method, trained_docs, n_features "
                            "FROM generations WHERE gen=?",
                            (gen,),
                        ).fetchone()
                    )
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
                self._indices = _map(self.gen_dir / "tfidf.indices", "<i4", nnz)
                self._data = _map(self.gen_dir / "tfidf.data", "<f4", nnz)
                dead = con.execute("SELECT row FROM docs WHERE gen=? AND live=0", (gen,)).fetchall()
                self.dead_rows = np.fromiter((r for (r,) in dead), dtype=np.int64)
                return
            except FileNotFoundError:
                # A writer switched generations and removed this one between our reads: retry.
                con.close()
                time.sleep(0.05)
        raise NashError(f"collection {collection.name!r} keeps changing under the reader; retry")

    @property
    def documents(self) -> int:
        """Live documents in this view."""
        return self.rows - len(self.dead_rows)

    @property
    def model_dir(self) -> Path:
        return self.gen_dir / "model"

    def doc_by_path(self, path: str) -> DocRow | None:
        """The live document at ``path`` (absolute, as stored), if any."""
        found = self._con.execute(
            "SELECT row, path, size, mtime_ns, hash, title FROM docs "
            "WHERE gen=? AND path=? AND live=1",
            (self.generation, path),
        ).fetchone()
        return DocRow(*found) if found else None

    def docs_by_rows(self, rows: Iterable[int]) -> dict[int, DocRow]:
        """Row number -> document for the given rows (dead ones included)."""
        wanted = [int(r) for r in rows]
        out: dict[int, DocRow] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for found in self._con.execute(
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
            for found in self._con.execute(
                "SELECT row, path, size, mtime_ns, hash, title FROM docs "
                "WHERE gen=? AND live=1 ORDER BY row",
                (self.generation,),
            )
        ]

    def codes_of(self, rows: Sequence[int]) -> np.ndarray:
        """(len(rows), n_words) packed codes of the given rows."""
        idx = np.asarray(rows, dtype=np.int64)
        return np.stack([plane[idx] for plane in self.planes], axis=1).astype(np.uint64)

    def tfidf_of(self, rows: Sequence[int]):
        """The stored tf-idf vectors of ``rows`` as a (len(rows), n_features) CSR matrix."""
        import scipy.sparse as sp

        rows = np.asarray(rows, dtype=np.int64)
        starts = np.asarray(self._indptr[rows], dtype=np.int64)
        lengths = np.asarray(self._indptr[rows + 1], dtype=np.int64) - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Positions of every stored entry of the wanted rows, in row order (one gather).
        take = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        indices = np.asarray(self._indices[take], dtype=np.int32)
        data = np.asarray(self._data[take], dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), self.n_features))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._con.execute("COMMIT")
        self._con.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Collection:
    """A named collection's index directory. Reading never waits; writing takes :meth:`writer`."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        con = _connect(directory / _META)
        try:
            info = self._info(con)
        finally:
            con.close()
        if int(info.get("schema", -1)) != SCHEMA_VERSION:
            raise NashError(
                f"collection {name!r} was written by an incompatible nash version "
                f"(schema {info.get('schema')}, this nash reads {SCHEMA_VERSION}); "
                f"run: nash forget {name} && nash index <folder>"
            )
        self.root = Path(info["root"])
        self.bits = int(info["bits"])
        self.created_at = float(info["created_at"])

    @staticmethod
    def _info(con: sqlite3.Connection) -> dict[str, str]:
        return dict(con.execute("SELECT key, value FROM info").fetchall())

    # -- opening and creating ------------------------------------------------------------
    @classmethod
    def open(cls, name: str) -> Collection:
        """The existing collection ``name``; :class:`NashError` (listing the known ones) if none."""
        directory = collections_dir() / name
        if not _NAME_RE.match(name or "") or not (directory / _META).is_file():
            known = ", ".join(c.name for c in list_collections()) or "none yet"
            raise NashError(f"no collection named {name!r} (collections: {known})")
        return cls(name, directory)

    @classmethod
    def exists(cls, name: str) -> bool:
        return bool(_NAME_RE.match(name or "")) and (collections_dir() / name / _META).is_file()

    @classmethod
    def create(cls, name: str, root: Path, bits: int) -> Collection:
        """Create an empty collection (no model yet) for ``root``, atomically (temp dir, rename)."""
        validate_name(name)
        if not 1 <= bits <= 1024:
            raise NashError(f"--bits must be between 1 and 1024, got {bits}")
        base = collections_dir()
        base.mkdir(parents=True, exist_ok=True)
        final = base / name
        if (final / _META).is_file():
            raise NashError(f"collection {name!r} already exists")
        tmp = base / f".new-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        con = _connect(tmp / _META)
        try:
            con.executescript(_SCHEMA)
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

    # -- reading -------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """A consistent read-only view of the current generation (never waits for a writer)."""
        return Snapshot(self)

    def summary(self) -> dict:
        """What `nash status` shows: name, root, live documents, bits, model, last update."""
        con = _connect(self.directory / _META)
        try:
            con.execute("BEGIN")
            info = self._info(con)
            gen = int(info["generation"])
            documents = con.execute(
                "SELECT count(*) FROM docs WHERE gen=? AND live=1", (gen,)
            ).fetchone()[0]
            found = con.execute(
                "SELECT method, trained_docs FROM generations WHERE gen=?", (gen,)
            ).fetchone()
            con.execute("COMMIT")
        finally:
            con.close()
        return {
            "name": self.name,
            "root": str(self.root),
            "documents": int(documents),
            "bits": self.bits,
            "model": found[0] if found else None,
            "trained_docs": int(found[1]) if found else 0,
            "generation": gen,
            "updated_at": float(info["updated_at"]),
        }

    # -- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, timeout: float = 0.0) -> Iterator[Writer]:
        """Hold the collection's writer lock, waiting at most ``timeout`` seconds.

        Raises :class:`IndexBusyError` if another process keeps it (a `nash index` or a watcher).
        """
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.directory / _LOCK))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise IndexBusyError(
                f"index {self.name!r} is busy: another nash process is updating it; "
                "try again when it has finished"
            ) from None
        try:
            w = Writer(self)
            try:
                yield w
            finally:
                w.close()
        finally:
            lock.release()

    def remove(self, timeout: float = 2.0) -> None:
        """Delete this collection's index (waits briefly for a running writer)."""
        with self.writer(timeout=timeout):
            trash = self.directory.parent / f".forgotten-{self.name}-{os.getpid()}"
            os.rename(self.directory, trash)
        shutil.rmtree(trash, ignore_errors=True)


class Writer:
    """Mutations of one collection; only ever exists while the writer lock is held.

    Appends, tombstones, re-paths and stat updates are staged in one SQLite transaction, which
    :meth:`commit` ends; the plane bytes of appended rows are on disk before it.
    """

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._con = _connect(collection.directory / _META)
        self._in_tx = False
        self._collect_garbage()

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
        return {
            found[1]: DocRow(*found)
            for found in self._con.execute(
                "SELECT row, path, size, mtime_ns, hash, title FROM docs WHERE gen=? AND live=1",
                (self.generation,),
            )
        }

    def counts(self) -> dict[str, int]:
        """rows, live, dead and trained_docs of the current generation."""
        gen = self.generation
        if gen == 0:
            return {"rows": 0, "live": 0, "dead": 0, "trained_docs": 0}
        rows, _bits, _method, trained = self._gen_row(gen)
        live = self._con.execute(
            "SELECT count(*) FROM docs WHERE gen=? AND live=1", (gen,)
        ).fetchone()[0]
        return {"rows": rows, "live": live, "dead": rows - live, "trained_docs": trained}

    # -- staged changes ------------------------------------------------------------------
    def _begin(self) -> None:
        if not self._in_tx:
            self._con.execute("BEGIN IMMEDIATE")
            self._in_tx = True

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
        """Make everything staged visible to readers, atomically."""
        if self._in_tx:
            self._con.execute(
                "UPDATE info SET value=? WHERE key='updated_at'", (repr(time.time()),)
            )
            _failpoint("before-commit")
            self._con.execute("COMMIT")
            self._in_tx = False

    def rollback(self) -> None:
        if self._in_tx:
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
    ) -> int:
        """Write a complete new generation and switch to it in one transaction.

        ``save_model(directory)`` writes the model (e.g. ``hasher.save``); the rows get numbers
        0..n-1. The old generation's files are removed after the switch (open maps stay valid).
        """
        from nashcli import __version__

        self.rollback()
        old = self.generation
        gen = self._next_gen()
        final = self.gen_dir(gen)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(tmp / "model")
        n_bits = bits or self.collection.bits
        for w in range(codes.n_words(n_bits)):
            (tmp / f"plane-{w}.u64").touch()
        _write_at(tmp / "tfidf.indptr", np.zeros(1, dtype="<i8").tobytes(), 0)
        (tmp / "tfidf.indices").touch()
        (tmp / "tfidf.data").touch()
        _append_rows(tmp, 0, np.asarray(words, dtype=np.uint64), tfidf)
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
            [(gen, i, m.path, m.size, m.mtime_ns, m.hash, m.title) for i, m in enumerate(metas)],
        )
        self._con.execute("UPDATE info SET value=? WHERE key='generation'", (str(gen),))
        self._con.execute("UPDATE info SET value=? WHERE key='bits'", (str(n_bits),))
        self._con.execute("DELETE FROM docs WHERE gen=?", (old,))
        self._con.execute("DELETE FROM generations WHERE gen=?", (old,))
        self.commit()
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
            method, trained = snap.method, snap.trained_docs
            old_model = snap.model_dir

            def copy_model(target: Path) -> None:
                shutil.copytree(old_model, target)

            metas = [DocMeta(d.path, d.size, d.mtime_ns, d.hash, d.title) for d in live]
            return self.new_generation(
                copy_model, words, tfidf, metas, method=method, trained_docs=trained
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
    if flag:
        Path(flag).write_text(str(os.getpid()))
    while True:
        time.sleep(1)
