"""`nash similar`: the nearest documents of a collection to a file or a piece of text.

The query's code is compared with every committed code by Hamming distance (an exact scan of the
memory-mapped planes). A pool of the nearest codes is then re-ranked using their stored tf-idf
vectors (README, "Asking for similar documents"), one of :data:`RANKINGS`:

- ``"fused"`` (the default): score = q' · d − λ · distance / bits, where q' is the query's
  vector plus β × the mean vector of its 5 best candidates by cosine − λ · distance / bits
  (pseudo-relevance feedback on the stored vectors, Rocchio style; q' is not normalised).
  The codes carry the topic/neighbourhood structure the model learnt, cosine the exact
  wording; together they beat either alone;
- ``"cosine"``: score = cosine(q, d), the plain re-rank;
- ``"hamming"``: the pure semantic-hashing order, score = 1 − distance / bits.

"distance" in the pool and in ``"fused"`` is a *weighted* Hamming distance: a bit in which a
document's code differs from the query's counts by how sure NASH's encoder was of the query's
bit, |2σ(g(x)) − 1| (:func:`weighted_distances`; the plain distance when the model has no linear
encoder, e.g. VDSH from Python). ``"hamming"`` orders by the plain distance, equal distances by
the weighted one, identical codes in a pseudo-random order fixed per query.

A file that is indexed and unchanged is answered from its stored code and vector; of the model
only the linear encoder's arrays are read (no torch import): that is what keeps
`nash similar FILE` fast.
"""

from __future__ import annotations

import errno
import numbers
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from nashcli.errors import NashError
from nashcli.index import (
    Collection,
    DamagedCollectionError,
    Snapshot,
    list_collections,
    survey_collections,
)
from nashcli.names import shell_quote
from nashcli.vectors import CsrRows

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

#: Re-ranking pool (Hamming candidates re-ordered by tf-idf cosine), measured on 20 Newsgroups
#: folders of 1k-10k documents (benchmarks/collections.py --pools, README "Re-ranking"): below
#: ~1,000 documents the model has too little to learn from and cosine over everything is best
#: (and cheap); above, the best pool is a few percent to a tenth of the collection, and pools
#: beyond it drift back towards plain cosine.
SMALL_COLLECTION = 1000
MIN_POOL, MAX_POOL = 200, 1000
#: Candidates are the ``TIE_FACTOR`` × pool nearest by plain Hamming distance: the pool is the
#: nearest of them by weighted distance plus every one tied with its last (:func:`candidate_pool`),
#: and ``"hamming"`` orders them. Ties used to be broken by row order, so a new document
#: (appended last) lost every tie and could be hidden in a tie group larger than the pool.
TIE_FACTOR = 4

#: Ranking modes of the pool; the default is the one measured best (README, "Re-ranking").
RANKINGS = ("fused", "cosine", "hamming")
DEFAULT_RANKING = "fused"
#: ``"fused"``: λ (weight of distance / bits against cosine), feedback documents and β. Chosen on
#: one half of the queries of 20 Newsgroups and Reuters folders, reported on the other half
#: (benchmarks/collections.py).
HAMMING_WEIGHT = 1.0
FEEDBACK_DOCS = 5
FEEDBACK_WEIGHT = 2.0
#: A feedback document's cosine with the query must reach this share of the best one's: a query
#: whose topic has one or two documents in the folder would otherwise take the rest of its
#: feedback from documents that share only a common word with it (cosine ~0.001), whose topic
#: then outranks its one true match.
FEEDBACK_SHARE = 0.1
#: Below this many documents λ shrinks in proportion (:func:`hamming_weight`): a model fitted on
#: a few hundred documents knows less than their words do (folders of 50-800 documents of 5
#: topics, benchmarks/small_collections.py: precision@10 best at λ 0-0.25 up to 400 documents,
#: 0.5-1 at 800, 1 at 1,600).
FULL_WEIGHT_FROM = 800


def hamming_weight(documents: int) -> float:
    """λ of the fused ranking in a collection of ``documents``."""
    return HAMMING_WEIGHT * min(1.0, documents / FULL_WEIGHT_FROM)


def default_pool(documents: int) -> int:
    """How many Hamming candidates to re-rank in a collection of ``documents``."""
    if documents <= SMALL_COLLECTION:
        return max(documents, 1)
    return int(min(MAX_POOL, max(MIN_POOL, documents // 10)))


@dataclass(frozen=True)
class Hit:
    """One similar document: absolute path, Hamming distance, score (higher is closer)."""

    path: Path
    distance: int
    score: float
    title: str
    row: int


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def choose_collection(name: str | None = None, path: Path | None = None) -> Collection:
    """``name`` if given; else the collection whose root holds ``path`` (the deepest), else the
    only collection; else a :class:`NashError` listing the names to choose from."""
    if name is not None:  # even "": an empty name is no collection, not "choose for me"
        return Collection.open(name)
    collections = list_collections()
    if not collections:
        damaged = _unreadable_collections()
        if len(damaged) == 1:  # say what is wrong with it, not that there is none
            raise next(iter(damaged.values()))
        if damaged:
            raise NashError(
                f"all {len(damaged)} collections are damaged or unreadable: see nash status"
            )
        raise NashError("no collections yet: index a folder first with: nash index FOLDER")
    if path is not None:
        places = {Path(os.path.abspath(path)), Path(path).resolve()}
        # (a collection's recorded folder may be a link now: its real place holds the file too)
        holders = [
            c
            for c in collections
            if any(_within(p, root) for p in places for root in {c.root, c.root.resolve()})
        ]
        if holders:
            return max(holders, key=lambda c: len(c.root.parts))
        # In no readable collection's folder: it may be in a damaged one's (whose folder is not
        # known), and another collection's answer would look like the usual one.
        damaged = _unreadable_collections()
        if damaged:
            names = ", ".join(map(repr, damaged))
            readable = ", ".join(c.name for c in collections)
            raise NashError(
                f"{path} is in the folder of no collection that can be read, and {names} "
                f"cannot be read (its folder is not known; see nash status): to ask "
                f"{readable} all the same, add --collection NAME"
            )
    if len(collections) == 1:
        return collections[0]
    names = ", ".join(c.name for c in collections)
    raise NashError(f"several collections ({names}): choose one with --collection NAME")


def _unreadable_collections() -> dict[str, NashError]:
    """Why each collection that cannot be opened cannot be (damaged, not this user's), by name."""
    return {item.name: item.problem for item in survey_collections() if item.problem}


def query_size_limit(collection: Collection) -> int:
    """The most bytes of query text nash similar reads for ``collection``: 10 MB, or its own
    limit where `nash index --max-size` raised it."""
    return collection.read(_size_limit)


def read_piped_query(stream: BinaryIO, collection: str | None = None) -> str:
    """The query text piped to ``nash similar -``: at most what a query file may hold, 10 MB
    or the collection's own ``--max-size`` where larger (asked only of longer text: then the
    collection must be known, and not knowing it is the error)."""
    from nashcli import corpus

    data = stream.read(corpus.DEFAULT_MAX_BYTES + 1)
    limit = corpus.DEFAULT_MAX_BYTES
    if len(data) > limit:
        limit = query_size_limit(choose_collection(collection))
        data += stream.read(limit + 1 - len(data))
    if len(data) > limit:
        raise NashError(f"stdin: more than {corpus.format_size(limit)} of query text")
    from nashcli import documents

    try:
        return documents.decode_text(data)
    except documents.UnreadableFile as error:  # what nash index would skip is no query either
        raise NashError(f"stdin: {error.reason}") from None


def _size_limit(snap: Snapshot) -> int:
    from nashcli import corpus

    return max(corpus.DEFAULT_MAX_BYTES, snap.max_bytes or 0)


def _load_hasher(model_dir: Path):
    """The query encoder: the torch-free one when the model allows it, else the full hasher."""
    fast = LinearQueryEncoder.load(model_dir)
    if fast is not None:
        return fast
    from nashcli.pipeline import SemanticHasher

    return SemanticHasher.load(model_dir, device="cpu")


class LinearQueryEncoder:
    """Encodes queries, and the files of an update, without torch or scikit-learn when the
    model's encoder is linear.

    A NASH code with a linear encoder is ``1[x·Wᵀ + b > 0]`` (σ(g) > 0.5), and the TF-IDF of a
    text over a fixed vocabulary is counts → 1 + log → × idf → L2-normalised: both are a few
    numpy operations on the saved arrays. Importing torch alone costs more than the whole rest
    of `nash similar --text`, so this is what keeps it under a second. A query's row
    (:meth:`vectorize_rows`, no scipy) matches ``SemanticHasher.vectorize`` to float rounding;
    :meth:`vectorize` and :meth:`encode_vectors`, what an update stores, match it to the bit
    (tests/test_similar.py checks both).
    """

    def __init__(self, vocabulary, idf, sublinear_tf, weight, bias, params=None) -> None:
        self.vocabulary = vocabulary
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.idf = idf
        self.sublinear_tf = sublinear_tf
        self.weight = weight
        self.bias = bias
        self.n_bits = int(weight.shape[0])
        self.params = params if params is not None else {"sublinear_tf": sublinear_tf}
        #: The ``TfidfFeatures`` that :meth:`vectorize` uses: made from the saved settings when
        #: first needed, unless set (an update sets the one ``TfidfFeatures.load`` checked).
        self.features = None

    @classmethod
    def load(cls, model_dir: Path) -> LinearQueryEncoder | None:
        """None if the model is not a NASH model with a linear encoder (or is unreadable)."""
        import json

        try:
            config = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
            features = json.loads((model_dir / "features.json").read_text(encoding="utf-8"))
            if config.get("kind") != "nash" or config["model"].get("encoder") != "linear":
                return None
            with np.load(model_dir / "model.npz", allow_pickle=False) as arrays:
                weight = np.asarray(arrays["encoder.weight"], dtype=np.float32)
                bias = np.asarray(arrays["encoder.bias"], dtype=np.float32)
            with np.load(model_dir / "features.npz", allow_pickle=False) as arrays:
                idf = np.asarray(arrays["idf"], dtype=np.float32)
            vocabulary = features["vocabulary"]
            params = dict(features["params"])
            sublinear = bool(params.get("sublinear_tf", True))
            if weight.shape != (config["n_bits"], len(vocabulary)) or len(idf) != len(vocabulary):
                return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return cls(vocabulary, idf, sublinear, weight, bias, params)

    def vectorize_rows(self, texts: Sequence[str]) -> CsrRows:
        """L2-normalised TF-IDF rows, as ``TfidfFeatures.transform`` (without scipy)."""
        from nashcli.tokens import tokenize

        indptr, indices, data = [0], [], []
        for text in texts:
            ids = [self.index[t] for t in tokenize(text) if t in self.index]
            terms, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
            values = counts.astype(np.float32)
            if self.sublinear_tf:
                values = np.log(values) + np.float32(1.0)
            values = values * self.idf[terms]
            norm = np.sqrt(np.sum(values * values, dtype=np.float32))
            if norm > 0:
                values = values / norm
            indices.append(terms.astype(np.int32))
            data.append(values.astype(np.float32))
            indptr.append(indptr[-1] + len(terms))
        return CsrRows(
            np.asarray(indptr, dtype=np.int64),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
            np.concatenate(data) if data else np.zeros(0, dtype=np.float32),
            len(self.idf),
        )

    def vectorize(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows (CSR): ``TfidfFeatures.transform`` itself, so the rows an
        update stores are those the full hasher would have made."""
        if self.features is None:
            from nashcli.features import TfidfFeatures

            features = TfidfFeatures(**self.params)
            features.vocabulary_, features.idf_ = list(self.vocabulary), self.idf
            self.features = features
        return self.features.transform(texts)

    def logits(self, x: CsrRows | sp.csr_matrix) -> np.ndarray:
        """float32 (n, bits): g(x) = x·Wᵀ + b of TF-IDF rows (CsrRows, or CSR for batches)."""
        if isinstance(x, CsrRows):
            return x.times_transposed(self.weight) + self.bias
        return np.asarray(x @ self.weight.T) + self.bias

    def encode_vectors(self, x: CsrRows | sp.csr_matrix) -> np.ndarray:
        """bool (n, bits) codes of TF-IDF rows."""
        return self.logits(x) > 0

    def bit_probabilities(self, x: CsrRows | sp.csr_matrix) -> np.ndarray:
        """float64 (n, bits): σ(g(x)), the encoder's probability that each bit is 1 (from the
        same logits as :meth:`encode_vectors`, so the two agree on every bit whose weight
        |2p − 1| is not 0)."""
        logits = self.logits(x).astype(np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # σ, without exp overflow warnings


def find_similar(
    query: Path | str,
    collection: Collection | str,
    top: int = 10,
    ranking: str = DEFAULT_RANKING,
    pool: int | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[Hit]:
    """The ``top`` documents of ``collection`` nearest to ``query``.

    ``query`` is a :class:`~pathlib.Path` (a file, inside the collection or not; an indexed file
    is never its own neighbour) or a ``str`` of text. ``ranking`` (one of :data:`RANKINGS`)
    says how the ``pool`` nearest codes by weighted distance, and every code tied with the last
    of them (:func:`candidate_pool`), are re-ordered (default pool: :func:`default_pool` of the
    collection's size; ``"hamming"`` orders by plain distance). Raises
    :class:`NashError` for a missing file, a folder, a file without text, or a collection
    without an index yet. A file deleted since the collection's last update is left out (the
    next hits take its place). ``on_note`` hears what the user should know about an answer
    that is not the usual one (files left out as deleted; an indexed file answered with plain
    distances: the model is damaged).
    """
    for option, value in (("--top", top), ("--pool", 1 if pool is None else pool)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            # (a pool of 0 is not "the default"; True is no count)
            raise NashError(f"{option} must be a whole number of at least 1, got {value!r}")
    if not isinstance(query, (str, os.PathLike)):  # (bytes: which encoding?)
        raise NashError(f"the query must be a Path (a file) or a str (text), not {query!r:.80}")
    if ranking not in RANKINGS:
        raise NashError(f"unknown ranking {ranking!r}: choose one of {', '.join(RANKINGS)}")
    if isinstance(collection, str):
        collection = Collection.open(collection)

    heard: list[str] = []  # told once the answer stands (a retried snapshot says it again)
    # Indexed files found deleted since the last update (no watcher running): searched again
    # without them, so that the next hits take their places, as once the index is updated
    # (not to the last place with --rank fused: a deleted file not found yet may still be in
    # its pool and feedback).
    missing: set[str] = set()
    listed: set[str] = set()  # of them, those the answer would have listed (for the note)
    encoded: dict[int, Query] = {}  # the query read and encoded once per generation

    def search(snap: Snapshot, count: int = top) -> list[Hit]:
        if snap.generation == 0:
            why = no_index_yet(collection)
            # A first index that committed after the snapshot, then let go of its training
            # turn before no_index_yet looked, would be told "run nash index": read again.
            snap.check_current()
            raise NashError(why)
        if snap.generation not in encoded:
            heard.clear()
            encoded.clear()
            encoded[snap.generation] = _query(query, snap, heard.append)
        left_out = [doc.row for doc in map(snap.doc_by_path, sorted(missing)) if doc is not None]
        return search_snapshot(snap, encoded[snap.generation], count, ranking, pool, left_out)

    hits = collection.read(search)  # again, if a retrain removes the model it is loading
    if os.path.isdir(collection.root):  # (a folder gone whole: the CLI says so)
        # Each round also looks further down the list (4× more each time) for deleted files,
        # which then stay out of the next search of ``top``: where many were deleted near the
        # query, one round per ``top`` of them left too few answers, or none (a folder of 40
        # deleted files: "-n 1" said they were all missing).
        further, furthest = top, max(top, MAX_LOOKED_FURTHER)
        for round_ in range(MAX_DELETED_ROUNDS + 1):
            deleted = {str(hit.path) for hit in hits if _deleted(hit.path)}
            missing |= deleted
            listed |= deleted
            if not deleted:
                break
            if round_ == MAX_DELETED_ROUNDS:  # no more searching: what is left, of what is there
                hits = [hit for hit in hits if str(hit.path) not in deleted]
                break
            further = min(4 * further, furthest)
            farther = collection.read(lambda snap, n=further: search(snap, n))
            live = 0
            for hit in farther:
                if not _deleted(hit.path):
                    live += 1
                    continue
                missing.add(str(hit.path))
                if live < top:  # where the answer would have listed it
                    listed.add(str(hit.path))
            if live == 0 and len(farther) == furthest:  # (an unmounted drive, say)
                hits = []
                break
            hits = collection.read(search)
    if missing and not hits:
        raise NashError(_all_missing(len(missing), collection))
    if listed:
        heard.append(_deleted_note(len(listed), collection))
    for note in heard if on_note is not None else ():
        on_note(note)
    return hits


#: How many times :func:`find_similar` searches again without files it found deleted.
MAX_DELETED_ROUNDS = 20
#: The most hits a round of :func:`find_similar` looks at for deleted files: all of them
#: deleted, the answer is that the files nearest to the query are missing.
MAX_LOOKED_FURTHER = 4096


def _deleted(path: Path) -> bool:
    """Whether ``path`` is known to be gone, as ``nash index`` would drop its entry: nothing
    there, a folder in its place (the crawl goes into it) or a link loop. A file nash may not
    look at (a folder without permission) is not: ``nash index`` keeps its entry too."""
    try:  # (a folder nash may not list keeps the entries nash index found there: not gone)
        return stat.S_ISDIR(os.stat(path).st_mode) and os.access(path, os.R_OK | os.X_OK)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError as error:
        return error.errno == errno.ELOOP


def _deleted_note(gone: int, collection: Collection) -> str:
    files, them = ("1 file", "it") if gone == 1 else (f"{gone:,} files", "them")
    return (
        f"left out {files} deleted since collection {collection.name!r} was last updated; "
        f"nash index {shell_quote(str(collection.root))} removes {them} from the index"
    )


def _all_missing(gone: int, collection: Collection) -> str:
    """Why there is no answer: every near document's file is missing (a drive not mounted at
    the collection's folder looks like that: an empty folder)."""
    root = shell_quote(str(collection.root))
    files, are, they = (
        ("file", "is", "it was") if gone == 1 else (f"{gone:,} files", "are", "they were")
    )
    return (
        f"the {files} of collection {collection.name!r} nearest to the query {are} missing from "
        f"{root}: if it is a drive that is not mounted, mount it; if {they} deleted, "
        f"run nash index {root}"
    )


def no_index_yet(collection: Collection) -> str:
    """Why a collection without a model cannot answer, and what to do about it."""
    from nashcli.index import training_holder
    from nashcli.watching import is_watching  # (it probes the lock; OSError is handled there)

    trainer = training_holder(collection.name)
    if trainer is not None:  # a first `nash index` is under way
        return (
            f"collection {collection.name!r} has no index yet: {trainer} is building it; "
            "ask again when it is done"
        )
    if is_watching(collection.name):  # a watcher's first index is under way
        return (
            f"collection {collection.name!r} has no index yet: its watcher (nash watch) is "
            "building it; ask again when it is done"
        )
    return (
        f"collection {collection.name!r} has no index yet: "
        f"run nash index {shell_quote(collection.root)}"
    )


def first_index_unfinished(collection: Collection, documents: int) -> str:
    """What `nash status` says of a collection whose first index committed its model and then
    stopped, or is still encoding (:attr:`~nashcli.index.Writer.filling`)."""
    from nashcli.index import training_holder
    from nashcli.watching import is_watching

    so_far = f"collection {collection.name!r} holds {documents:,} documents so far"
    trainer = training_holder(collection.name)
    if trainer is not None:
        return f"{so_far}: {trainer} is encoding the rest of its first index"
    if is_watching(collection.name):
        return f"{so_far}: its watcher (nash watch) is encoding the rest of its first index"
    return (
        f"{so_far}: its first index stopped before it was done; "
        f"nash index {shell_quote(collection.root)} goes on from there"
    )


def check_query_file(query: Path | str) -> os.stat_result:
    """``query``'s stat if ``nash similar`` can read it as a query, else one-line NashError."""
    from nashcli.paths import look_at

    _, st = look_at(query)
    if st is None:
        what = "dangling symlink" if os.path.islink(query) else "no such file"
        raise NashError(f"{query}: {what}")
    if stat.S_ISDIR(st.st_mode):
        raise NashError(f"{query}: is a folder; nash similar takes a file (or --text)")
    if not stat.S_ISREG(st.st_mode):  # a pipe with no writer blocks, /dev/zero never ends
        raise NashError(
            f"{query}: not a regular file (a pipe, a socket or a device); "
            "to search with piped text: ... | nash similar -"
        )
    return st


@dataclass(frozen=True)
class Query:
    """What the search needs of a query: its packed code (n_words,) uint64, its tf-idf row (one
    row of V features), its own row when it is an indexed document (never its own neighbour),
    and the encoder's bit probabilities σ(g(x)) (bits,), or None when the model has no linear
    encoder."""

    code: np.ndarray
    vector: CsrRows
    own_row: int | None = None
    probabilities: np.ndarray | None = None


def stored_query(snap: Snapshot, row: int, encoder: LinearQueryEncoder | None) -> Query:
    """The query of an indexed document, from its stored code and vector (and σ(g(x)) from the
    ``encoder``, ``LinearQueryEncoder.load(snap.model_dir)``; None: plain distances)."""
    vector = snap.tfidf_rows([row])
    probabilities = None if encoder is None else encoder.bit_probabilities(vector)[0]
    return Query(snap.codes_of([row])[0], vector, row, probabilities)


def _stored_encoder(snap: Snapshot, on_note: Callable[[str], None]) -> LinearQueryEncoder | None:
    """The encoder for an indexed file's σ(g(x)), or None. Its stored code and vector answer
    even when the model is damaged (then with plain distances, which ``on_note`` is told)."""
    try:
        encoder = snap.load_model(LinearQueryEncoder.load)
        if encoder is None:  # another model, or one whose files are missing: which?
            snap.check_model()
        return encoder
    except DamagedCollectionError as error:
        on_note(
            f"{error}; the file's stored code still answers, its candidates chosen by plain "
            "(unweighted) Hamming distance"
        )
        return None


def _query(query: Path | str, snap: Snapshot, on_note: Callable[[str], None]) -> Query:
    from nashcli import codes, corpus, documents

    own = None
    if isinstance(query, Path):
        path = query.expanduser()
        st = check_query_file(query)
        real, root = path.resolve(), snap.root
        forms = [Path(os.path.abspath(path)), real]
        if _within(real, root.resolve()):  # the stored name, under a folder that is a link now
            forms.append(root / real.relative_to(root.resolve()))
        for candidate in dict.fromkeys(map(str, forms)):
            own = snap.doc_by_path(candidate)
            if own is not None:
                break
        if own is not None and (own.size, own.mtime_ns) == (st.st_size, st.st_mtime_ns):
            stored = stored_query(snap, own.row, _stored_encoder(snap, on_note))
            if not len(stored.vector.data):  # (punctuation, numbers: indexed, yet no words)
                raise NashError(_NO_WORDS)
            return stored
        limit = _size_limit(snap)
        if st.st_size > limit:
            raise NashError(
                f"{query}: larger than {corpus.format_size(limit)}, which is as much as nash "
                "similar reads of a file that is not indexed as it is now; to raise the limit "
                "(larger files then enter the index too): nash index "
                f"{shell_quote(snap.root)} --max-size SIZE"
            )
        try:
            text = documents.read_text(path)
        except documents.UnreadableFile as error:
            raise NashError(f"{query}: {error.reason}") from None
    else:
        text = query
    if not text.strip():
        raise NashError("the query has no text")
    hasher = snap.load_model(_load_hasher)
    fast = isinstance(hasher, LinearQueryEncoder)
    # (the full hasher has loaded torch and scipy anyway: its CSR rows are fine)
    x = hasher.vectorize_rows([text]) if fast else hasher.vectorize([text])
    if x.nnz == 0:  # its code would be the model's code of nothing: any ranking is noise
        raise NashError(_NO_WORDS)
    probabilities = hasher.bit_probabilities(x)[0] if fast else None
    code = codes.pack_codes(hasher.encode_vectors(x))[0]
    return Query(code, CsrRows.of(x), own.row if own is not None else None, probabilities)


_NO_WORDS = (
    "none of the query's words is in the collection's vocabulary (the words its documents "
    "share): nothing to compare it with"
)


def _nearest(snap: Snapshot, qwords: np.ndarray, k: int, exclude: np.ndarray):
    """The k nearest rows (and distances) not in ``exclude``, by (distance, row)."""
    from nashcli import search

    n = snap.rows
    want = min(n, k + len(exclude))
    if want <= max(4096, n // 20):
        idx, dist = search.hamming_topk(snap.planes, qwords, want)
        idx, dist = idx[0], dist[0]
        keep = ~np.isin(idx, exclude)
        return idx[keep][:k], dist[keep][:k]
    dist = search.hamming_distances(snap.planes, qwords)[0].astype(np.int64)
    dist[exclude] = np.iinfo(np.int64).max
    order = np.lexsort((np.arange(n), dist))[: min(k, n - len(exclude))]
    return order.astype(np.int64), dist[order].astype(np.int32)


def weighted_distances(
    code_bits: np.ndarray, query_bits: np.ndarray, probabilities: np.ndarray
) -> np.ndarray:
    """Hamming distances from each code (rows of 0/1 ``code_bits``) to ``query_bits`` in which a
    differing bit b counts |2 p_b − 1|: how sure the encoder was of the query's bit, with
    ``probabilities`` its σ(g(x)) and ``query_bits`` = 1[p > 0.5]. The weights average 1 over
    the query's bits (so a random code is as far as by plain distance; near neighbours, which
    differ mostly in unsure bits, are nearer than by it).

    It orders codes as the expected distance to the query's random code z ~ Bernoulli(p),
    NASH's own q(z|x), does (Σ_b p_b (1 − c_b) + (1 − p_b) c_b = Σ_b min(p_b, 1 − p_b) + Σ over
    differing b of |2 p_b − 1|), and so splits the many codes at one Hamming distance by which
    bits they differ in. The weights are rounded to multiples of 2⁻²⁰, so every sum is exact:
    identical codes get identical distances whatever order the sum takes."""
    weight = np.abs(2.0 * np.asarray(probabilities, dtype=np.float64) - 1.0)
    mean = weight.mean()
    weight = weight / mean if mean > 0 else np.ones_like(weight)
    weight = np.round(weight * _GRID) / _GRID
    differ = np.asarray(code_bits, dtype=bool) != np.asarray(query_bits, dtype=bool)
    return differ @ weight


#: Weights on a grid of 2⁻²⁰: a sum of up to 1,024 of them (each at most 1,024) needs 40 bits.
_GRID = float(1 << 20)


def _scrambled(rows: np.ndarray, code: np.ndarray) -> np.ndarray:
    """A pseudo-random order of row numbers, fixed for one query ``code`` (SplitMix64's mixer
    of the row offset by a hash of the code): the last tie-break of identical codes, which row
    order would give to whichever folder was crawled first. A full mixer, not a multiplication,
    so different queries get unrelated orders, not rotations of one."""
    with np.errstate(over="ignore"):
        salt = np.zeros(1, dtype=np.uint64)
        for word in np.asarray(code, dtype=np.uint64):  # one word per 64 bits
            salt = _mix(salt ^ word)
        return _mix(np.asarray(rows, dtype=np.uint64) ^ salt)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _candidates(
    snap: Snapshot, query: Query, k: int, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, distances, weighted distances)`` of the ``k`` rows not in ``exclude`` nearest
    the query by plain distance, in (distance, row) order; the weighted distances are the plain
    ones when ``query.probabilities`` is None."""
    rows, dists = _nearest(snap, query.code, k, exclude)
    if query.probabilities is None or not len(rows):
        return rows, dists, dists.astype(np.float64)
    from nashcli import codes

    bits = codes.unpack_codes(snap.codes_of(rows), snap.bits)
    query_bits = codes.unpack_codes(query.code[None, :], snap.bits)[0]
    return rows, dists, weighted_distances(bits, query_bits, query.probabilities)


def candidate_pool(
    snap: Snapshot, query: Query, pool: int, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The re-ranking pool: ``(rows, Hamming distances, weighted distances)`` of the ``pool``
    rows not in ``exclude`` nearest the query by weighted distance (:func:`weighted_distances`;
    the plain distance when ``query.probabilities`` is None) *and every row tied with the last
    of them*, nearest first, out of the ``TIE_FACTOR * pool`` nearest by plain distance.

    Which of several equally distant codes make the cut should be up to the re-ranking, not to
    row order (a new document, appended last, lost every tie). Past the bound — a tie group
    several times the pool, i.e. codes that hardly tell the documents apart — the group is cut
    by row order again, so the re-ranking's cost stays bounded.
    """
    rows, dists, weighted = _candidates(snap, query, TIE_FACTOR * pool, exclude)
    order = np.lexsort((rows, weighted))
    rows, dists, weighted = rows[order], dists[order], weighted[order]
    if len(rows) > pool:
        end = int(np.searchsorted(weighted, weighted[pool - 1], side="right"))
        rows, dists, weighted = rows[:end], dists[:end], weighted[:end]
    return rows, dists, weighted


def search_snapshot(
    snap: Snapshot,
    query: Query,
    top: int,
    ranking: str = DEFAULT_RANKING,
    pool: int | None = None,
    left_out: Sequence[int] = (),
) -> list[Hit]:
    """The ``top`` hits of ``query`` in ``snap``: the ``ranking`` of its candidate pool (of
    ``pool`` documents; None: :func:`default_pool` of the collection's size), the rows
    ``left_out`` searched as if they were not there (files found deleted)."""
    documents = snap.documents - len(left_out)  # as the index will count them once updated
    pool = pool or default_pool(documents)
    exclude = snap.dead_rows
    if query.own_row is not None or len(left_out):
        own = [] if query.own_row is None else [query.own_row]
        exclude = np.union1d(exclude, [*own, *left_out]).astype(np.int64)
    if ranking == "hamming":
        # Plain distance first; equal distances by the weighted one, identical codes scrambled
        # (the candidates hold the whole tie group at the top-th distance, up to the bound).
        rows, dists, weighted = _candidates(snap, query, TIE_FACTOR * max(top, pool), exclude)
        order = np.lexsort((_scrambled(rows, query.code), weighted, dists))[:top]
        rows, dists = rows[order], dists[order]
        scores = 1.0 - dists / snap.bits
    else:
        rows, dists, weighted = candidate_pool(snap, query, max(top, pool), exclude)
        scores = rank_pool(
            snap.tfidf_rows(rows),
            query.vector,
            weighted,
            snap.bits,
            ranking,
            weight=hamming_weight(documents),
        )
        order = np.lexsort((rows, weighted, -scores))[:top]
        rows, dists, scores = rows[order], dists[order], scores[order]
    docs = snap.docs_by_rows(rows)
    return [
        Hit(Path(docs[r].path), int(d), round(float(s), 6) + 0.0, docs[r].title, int(r))  # no -0.0
        for r, d, s in zip(rows.tolist(), dists.tolist(), scores.tolist(), strict=True)
    ]


def rank_pool(
    x: CsrRows | sp.csr_matrix,
    qvec: CsrRows | sp.csr_matrix,
    dists: np.ndarray,
    bits: int,
    ranking: str = DEFAULT_RANKING,
    *,
    weight: float = HAMMING_WEIGHT,
    feedback_docs: int = FEEDBACK_DOCS,
    feedback_weight: float = FEEDBACK_WEIGHT,
    feedback_share: float = FEEDBACK_SHARE,
) -> np.ndarray:
    """Scores (higher is closer) of a pool of candidates: tf-idf rows ``x`` (L2-normalised), the
    query's tf-idf row ``qvec`` (1, V) and the candidates' (weighted) Hamming distances
    ``dists``. ``x`` and ``qvec`` are :class:`CsrRows` or scipy CSR matrices.
    The keyword parameters of ``"fused"`` are there for the benchmark's sweep."""
    x = CsrRows.of(x)
    cos = x.dot(CsrRows.of(qvec).to_dense()[0])
    if ranking == "cosine":
        return cos
    if ranking != "fused":
        raise ValueError(f"unknown ranking {ranking!r}")
    penalty = weight * np.asarray(dists, dtype=np.float64) / bits
    first = cos - penalty
    m = min(feedback_docs, len(first))
    if m == 0 or feedback_weight == 0:
        return first
    best = np.lexsort((np.arange(len(first)), -first))[:m]
    # Feedback only from those of the m whose cosine with the query is at least a tenth of the
    # highest among them: in a small folder a rare topic has fewer than m documents, and the
    # rest of the m would be documents that share only a common word with the query.
    best = best[(cos[best] > 0) & (cos[best] >= feedback_share * cos[best].max())]
    if len(best) == 0:
        return first
    feedback = x.dot(x.mean_row(best))  # the mean of x · x[b] over the feedback rows b
    return cos + feedback_weight * feedback - penalty
