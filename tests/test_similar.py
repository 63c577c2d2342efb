"""`find_similar`: neighbours by topic, never itself, from inside or outside the collection."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_indexing import FAST, bump, make_docs, run_fresh

from nashcli import codes, similar
from nashcli.errors import NashError
from nashcli.indexing import index_folder
from nashcli.similar import choose_collection, find_similar


@pytest.fixture
def notes(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    index_folder(folder, hasher_options=FAST)
    return folder, paths


def topic(path: Path) -> str:
    return path.parent.name


@pytest.mark.parametrize("ranking", similar.RANKINGS)
def test_indexed_file_neighbours(notes, ranking: str) -> None:
    folder, paths = notes
    query = paths[0]
    hits = find_similar(query, "notes", top=5, ranking=ranking)
    assert len(hits) == 5
    assert all(h.path != query for h in hits)  # never its own neighbour
    assert all(h.path.is_absolute() and h.path.exists() for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    if ranking != "hamming":
        assert all(topic(h.path) == topic(query) for h in hits)
    else:  # Hamming order; score = 1 - distance / bits
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert all(h.score == pytest.approx(1 - h.distance / 64) for h in hits)


def brute_force(snap, q: int, ranking: str) -> tuple[list[int], list[float]]:
    """Every other document scored from dense arrays, top 5 as README says: the fused and
    cosine scores by (score, weighted distance, row), the Hamming order by (distance, weighted
    distance, scrambled row); in the weighted distance a differing bit counts |2p − 1|, with
    p = σ(x·Wᵀ + b) of the query (the weighting itself: test_weighted_distance_*)."""
    bits = codes.unpack_codes(snap.codes_of(range(snap.rows)), snap.bits)
    dist = (bits != bits[q]).sum(axis=1).astype(float)
    x = snap.tfidf_of(range(snap.rows)).toarray().astype(float)
    with np.load(snap.model_dir / "model.npz") as model:
        logits = model["encoder.weight"].astype(float) @ x[q] + model["encoder.bias"]
    p = 1 / (1 + np.exp(-logits))
    weighted = similar.weighted_distances(bits, bits[q], p)
    cos = x @ x[q]
    rows = np.arange(snap.rows)
    if ranking == "hamming":
        score = 1 - dist / snap.bits
        scrambled = similar._scrambled(rows, snap.codes_of([q])[0])
        order = [r for r in np.lexsort((scrambled, weighted, dist)) if r != q][:5]
        return order, score[order].tolist()
    if ranking == "cosine":
        score = cos
    else:
        weight = similar.HAMMING_WEIGHT * min(1, snap.documents / similar.FULL_WEIGHT_FROM)
        first = cos - weight * weighted / snap.bits
        first[q] = -np.inf
        best = np.argsort(-first, kind="stable")[: similar.FEEDBACK_DOCS]
        best = best[(cos[best] > 0) & (cos[best] >= similar.FEEDBACK_SHARE * cos[best].max())]
        feedback = (x @ x[best].T).mean(axis=1)
        score = cos + similar.FEEDBACK_WEIGHT * feedback - weight * weighted / snap.bits
    order = [r for r in np.lexsort((rows, weighted, -score)) if r != q][:5]
    return order, score[order].tolist()


@pytest.mark.parametrize("ranking", similar.RANKINGS)
def test_each_ranking_is_exact(notes, ranking: str) -> None:
    """On a collection smaller than the pool every mode is exact over all documents."""
    from nashcli.index import Collection

    folder, paths = notes
    with Collection.open("notes").snapshot() as snap:
        assert similar.default_pool(snap.documents) >= snap.documents
        for query in paths[::7]:
            q = snap.doc_by_path(str(query)).row
            rows, scores = brute_force(snap, q, ranking)
            hits = find_similar(query, "notes", top=5, ranking=ranking)
            assert [h.row for h in hits] == rows
            assert [h.score for h in hits] == pytest.approx(scores, abs=1e-5)
            assert q not in [h.row for h in hits]


@pytest.mark.parametrize("bits", [7, 72])
def test_each_ranking_is_exact_at_other_code_lengths(tmp_path: Path, bits: int) -> None:
    """Codes of one partial word, and of two words (the weighting unpacks them)."""
    from nashcli.index import Collection

    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    index_folder(folder, bits=bits, hasher_options=FAST)
    with Collection.open("notes").snapshot() as snap:
        for query in paths[::9]:
            q = snap.doc_by_path(str(query)).row
            for ranking in similar.RANKINGS:
                rows, scores = brute_force(snap, q, ranking)
                hits = find_similar(query, "notes", top=5, ranking=ranking)
                assert [h.row for h in hits] == rows
                assert [h.score for h in hits] == pytest.approx(scores, abs=1e-5)


def test_default_ranking_is_the_documented_one() -> None:
    import inspect

    import typer.main

    from nashcli.cli import app

    assert similar.DEFAULT_RANKING == "fused"
    assert inspect.signature(find_similar).parameters["ranking"].default == "fused"
    command = typer.main.get_command(app).commands["similar"]
    (rank,) = [p for p in command.params if p.name == "rank"]
    assert rank.default is None and f"{similar.DEFAULT_RANKING} (the default" in rank.help
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "`--rank fused`, the default" in readme
    with pytest.raises(NashError, match="unknown ranking"):
        find_similar("words", "nowhere", ranking="best")


def test_an_indexed_file_is_not_encoded_again(notes, monkeypatch) -> None:
    """Its stored code and vector answer: no query encoder (nor torch model) is loaded to read
    and encode its text; only the linear encoder's arrays, for the weighted distance."""
    folder, paths = notes

    def no_model(_):
        raise AssertionError("the query encoder was loaded")

    monkeypatch.setattr(similar, "_load_hasher", no_model)
    assert len(find_similar(paths[3], "notes", top=3)) == 3


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_an_indexed_file_is_answered_even_with_a_damaged_model(notes, damage: str) -> None:
    """Its stored code and vector suffice (plain distances then); a text query needs the model
    and says the collection is damaged. (A missing model file gave the plain answer without
    the note.)"""
    from nashcli.index import Collection, DamagedCollectionError

    folder, paths = notes
    with Collection.open("notes").snapshot() as snap:
        model = snap.gen_dir / "model" / "model.npz"
    assert find_similar(paths[3], "notes", top=3, on_note=pytest.fail)  # no note when intact
    if damage == "truncated":
        model.write_bytes(model.read_bytes()[:100])
    else:
        model.unlink()
    notes_heard: list[str] = []
    hits = find_similar(paths[3], "notes", top=3, on_note=notes_heard.append)
    assert [topic(h.path) for h in hits] == [topic(paths[3])] * 3
    (note,) = notes_heard  # the user hears that this answer is not the usual one, and why
    assert "is damaged (gen-000001/model/model.npz" in note and "plain (unweighted) Hamming" in note
    with pytest.raises(DamagedCollectionError, match="model.npz"):
        find_similar("rocket orbit launch", "notes")


def test_a_first_index_committed_while_the_query_looked_is_answered(tmp_path, monkeypatch):
    """A query that found no index yet, while a first `nash index` committed and let go of its
    training turn before the query asked who builds it, was told "run nash index"."""
    from nashcli.index import Collection

    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    Collection.create("notes", folder, 64)  # (as a first index makes it, before its commit)
    real = similar.no_index_yet

    def finished_meanwhile(collection):
        why = real(collection)
        index_folder(folder, hasher_options=FAST)
        return why

    monkeypatch.setattr(similar, "no_index_yet", finished_meanwhile)
    assert len(find_similar(paths[0], "notes", top=3)) == 3


def test_text_and_outside_file(notes, tmp_path: Path) -> None:
    folder, paths = notes
    hits = find_similar("butter flour oven sugar bake dough", "notes", top=5)
    assert all(topic(h.path) == "cooking" for h in hits)
    outside = tmp_path / "outside.txt"
    outside.write_text("engine brake tire clutch gearbox fuel sedan")
    hits = find_similar(outside, "notes", top=5)
    assert all(topic(h.path) == "cars" for h in hits)


def test_a_retrain_while_the_query_is_read_is_not_damage(notes, monkeypatch) -> None:
    """A retrain that switches generations (and removes the old one) after the query took its
    snapshot but before it loaded the model: the query looks again at the new generation
    instead of calling the collection damaged."""
    from nashcli import documents

    folder, paths = notes
    read_text = documents.read_text
    retrains = []

    def read_during_a_retrain(path, *args, **kwargs):
        text = read_text(path, *args, **kwargs)
        if not retrains:
            retrains.append(index_folder(folder, retrain=True, hasher_options=FAST))
        return text

    monkeypatch.setattr(documents, "read_text", read_during_a_retrain)
    query = paths[0]
    query.write_text("rocket orbit launch moon astronaut")  # changed: encoded by the model
    bump(query)
    hits = find_similar(query, "notes", top=3)
    assert retrains and retrains[0].retrained
    assert [topic(h.path) for h in hits] == ["space"] * 3


def test_status_check_during_a_retrain_is_not_damage(notes, monkeypatch) -> None:
    from nashcli.index import Collection, Snapshot

    folder, _ = notes
    check_model = Snapshot.check_model
    retrains = []

    def check_during_a_retrain(self, **kwargs):
        if not retrains:  # (the retrain checks the model too)
            retrains.append(None)
            retrains[0] = index_folder(folder, retrain=True, hasher_options=FAST)
        return check_model(self, **kwargs)

    monkeypatch.setattr(Snapshot, "check_model", check_during_a_retrain)
    Collection.open("notes").check()
    assert retrains[0].retrained


def test_an_update_during_a_retrain_is_not_damage(notes, monkeypatch) -> None:
    """A plain `nash index` (or a watcher's catch-up) that looks at the index while a refit
    switches generations looks again; it neither fails nor rebuilds."""
    from nashcli.index import Snapshot

    folder, _ = notes
    check_model = Snapshot.check_model
    retrains = []

    def check_during_a_retrain(self, **kwargs):
        if not retrains:
            retrains.append(None)
            retrains[0] = index_folder(folder, retrain=True, hasher_options=FAST)
        return check_model(self, **kwargs)

    monkeypatch.setattr(Snapshot, "check_model", check_during_a_retrain)
    report = index_folder(folder, hasher_options=FAST)
    assert retrains[0].retrained and not report.retrained


def test_status_while_the_model_files_are_removed_is_not_a_traceback(notes, monkeypatch):
    from nashcli import model_files
    from nashcli.index import Collection

    folder, _ = notes
    features_problem = model_files._features_problem
    retrains = []

    def removed_meanwhile(directory):
        if not retrains:
            retrains.append(index_folder(folder, retrain=True, hasher_options=FAST))
        return features_problem(directory)

    monkeypatch.setattr(model_files, "_features_problem", removed_meanwhile)
    Collection.open("notes").check()
    assert retrains[0].retrained


def test_feedback_comes_only_from_documents_that_share_a_word(notes, tmp_path: Path) -> None:
    """A rare word (two documents hold it): the other feedback candidates would be random
    documents, and the default ranking used to lift them to the top beside those two."""
    folder, paths = notes
    rare = [folder / "cooking" / "sourdough.txt", folder / "cooking" / "sourdough-2.txt"]
    rare[0].write_text("banneton proofing basket for sourdough")
    rare[1].write_text("a banneton and a lame for the sourdough loaf")
    index_folder(folder, retrain=True, hasher_options=FAST)  # (new words: a new vocabulary)
    hits = find_similar("banneton", "notes", top=5)
    assert {h.path for h in hits[:2]} == set(rare)
    assert all(h.score <= 0 for h in hits[2:])  # nothing else shares a word with the query


def test_a_topic_with_one_document_keeps_it_first() -> None:
    """The query's one true match among a cluster of documents that share only a common word
    with it: feedback from that cluster (cosine ~0.01) used to lift the whole cluster above the
    match, which is best by cosine and by distance alike."""
    import scipy.sparse as sp

    match = [0.6, 0.6, 0.5, 0.0, 0.0, 0.05]  # words: three rare ones, two of the cluster's, "the"
    cluster = [[0.0, 0.0, 0.0, 0.7, 0.7, 0.05 + 0.01 * i] for i in range(6)]
    x = np.array([match, *cluster])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    query = np.array([[0.6, 0.5, 0.6, 0.0, 0.0, 0.05]])
    query /= np.linalg.norm(query)
    dists = np.full(len(x), 10.0)
    scores = similar.rank_pool(sp.csr_matrix(x), sp.csr_matrix(query), dists, 64)
    assert np.argmax(scores) == 0
    before = similar.rank_pool(sp.csr_matrix(x), sp.csr_matrix(query), dists, 64, feedback_share=0)
    assert np.argmax(before) != 0  # what any shared word let in


def test_changed_indexed_file_is_encoded_fresh(notes) -> None:
    folder, paths = notes
    query = paths[0]  # a space note, rewritten about cooking and not re-indexed
    query.write_text("butter flour oven sugar bake dough garlic onion simmer recipe")
    bump(query)
    hits = find_similar(query, "notes", top=5)
    assert all(h.path != query for h in hits)
    assert all(topic(h.path) == "cooking" for h in hits)


@pytest.mark.parametrize("pool", [None, 6])  # every document; fewer than there are
def test_files_deleted_since_the_last_update_are_left_out(notes, pool) -> None:
    """The answer is the one the index gives once updated: the next hits take the deleted
    files' places, and the deleted ones neither show nor steer the ranking. (A file replaced
    by a folder, which nash index drops as well, was listed.)"""
    folder, paths = notes
    query = paths[0]
    before = find_similar(query, "notes", top=5, pool=pool)
    for hit in before[:3]:  # deleted, the index not updated (no watcher)
        hit.path.unlink()
    before[0].path.mkdir()  # (empty: nothing in it to index)
    heard: list[str] = []
    hits = find_similar(query, "notes", top=5, pool=pool, on_note=heard.append)
    assert len(hits) == 5 and all(h.path.is_file() for h in hits)
    assert all(topic(h.path) == topic(query) for h in hits)
    assert heard == [
        "left out 3 files deleted since collection 'notes' was last updated; "
        f"nash index {folder} removes them from the index"
    ]
    index_folder(folder)  # as the note says: then nothing is left out, and the answer is the same
    heard.clear()
    assert find_similar(query, "notes", top=5, pool=pool, on_note=heard.append) == hits
    assert heard == []


@pytest.mark.parametrize("rounds", [similar.MAX_DELETED_ROUNDS, 1])  # (1: a larger folder)
def test_a_folder_emptied_as_an_unmounted_drive_leaves_it_is_no_empty_answer(
    notes, monkeypatch, rounds: int
) -> None:
    """Every near file missing (a drive not mounted at the folder: an empty folder) is not
    "no similar documents", nor a list of files that are not there (each search again also
    looks 4× further down for deleted files, so even one round reaches them all here): the
    error says what may be wrong."""
    folder, paths = notes
    monkeypatch.setattr(similar, "MAX_DELETED_ROUNDS", rounds)
    for path in paths:
        path.unlink()
    with pytest.raises(NashError) as caught:
        find_similar("rocket orbit", "notes")
    assert str(caught.value) == (
        f"the {len(paths)} files of collection 'notes' nearest to the query are missing from "
        f"{folder}: if it is a drive that is not mounted, mount it; if they were deleted, "
        f"run nash index {folder}"
    )


def test_many_files_deleted_near_the_query_leave_a_full_answer(notes, monkeypatch) -> None:
    """A search again without the deleted files it found dropped only those among its ``top``
    answers: with many deleted near the query and a short ``top``, the rounds ran out (a
    review's folder of 40 deleted files: ``-n 1`` said they were all missing, ``-n 2`` gave one
    answer). Each round looks further down for them, and the note counts those that the answer
    would have listed."""
    folder, paths = notes
    monkeypatch.setattr(similar, "MAX_DELETED_ROUNDS", 3)  # (fewer rounds than files: larger)
    query = paths[0]
    near = find_similar(query, "notes", top=len(paths))
    same = [h.path for h in near if topic(h.path) == topic(query)]
    for path in same:  # every other note of its topic: the nearest files, all deleted
        path.unlink()
    heard: list[str] = []
    for top in (1, 2):
        heard.clear()
        hits = find_similar(query, "notes", top=top, on_note=heard.append)
        assert len(hits) == top and all(h.path.exists() for h in hits)
        assert hits == find_similar(query, "notes", top=top + 3)[:top]
        assert heard == [
            f"left out {len(same)} files deleted since collection 'notes' was last updated; "
            f"nash index {folder} removes them from the index"
        ]


def test_files_nash_may_not_look_at_are_not_called_deleted(notes, monkeypatch) -> None:
    """A folder without permission (chmod 000, simulated: the suite may run as root) hides
    whether its files are there: they stay in the answers, as nash index keeps them."""
    folder, paths = notes
    before = find_similar(paths[0], "notes", top=5)
    real_stat = os.stat

    def denied(path, *args, **kwargs):
        if Path(path).parent == paths[0].parent and Path(path) != paths[0]:
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", denied)
    heard: list[str] = []
    hits = find_similar(paths[0], "notes", top=5, on_note=heard.append)
    assert [h.path for h in hits] == [h.path for h in before] and heard == []


def test_only_deleted_files_that_would_be_listed_are_counted(notes) -> None:
    folder, paths = notes
    gone = [p for p in paths if topic(p) != topic(paths[0])][-1]  # far from the query
    gone.unlink()
    heard: list[str] = []
    assert len(find_similar(paths[0], "notes", top=3, on_note=heard.append)) == 3
    assert heard == []
    hits = find_similar(paths[0], "notes", top=100, on_note=heard.append)
    assert len(hits) == len(paths) - 2  # neither the query nor the deleted file
    assert heard and heard[0].startswith("left out 1 file deleted since")


def test_a_pool_below_one_is_refused_as_the_cli_refuses_it(notes) -> None:
    for pool in (0, -3):
        with pytest.raises(
            NashError, match=f"--pool must be a whole number of at least 1, got {pool}"
        ):
            find_similar("rocket orbit", "notes", pool=pool)


def test_a_top_that_is_no_count_or_a_query_of_bytes_is_one_clear_error(notes) -> None:
    """From Python: ``top=True`` answered one hit, ``2.5`` and bytes were TypeErrors inside."""
    for top in (True, 2.5, "3", None):
        with pytest.raises(NashError, match="--top must be a whole number of at least 1"):
            find_similar("rocket orbit", "notes", top=top)
    with pytest.raises(NashError, match="must be a Path .* or a str"):
        find_similar(b"rocket orbit", "notes")
    assert len(find_similar("rocket orbit", "notes", top=np.int64(2))) == 2


def test_top_larger_than_collection(notes) -> None:
    folder, paths = notes
    hits = find_similar(paths[0], "notes", top=100)
    assert len(hits) == len(paths) - 1


def test_query_errors(notes, tmp_path: Path) -> None:
    folder, paths = notes
    with pytest.raises(NashError, match="no such file"):
        find_similar(tmp_path / "missing.txt", "notes")
    with pytest.raises(NashError, match="is a folder"):
        find_similar(folder, "notes")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(NashError, match="binary.txt"):
        find_similar(binary, "notes")
    with pytest.raises(NashError, match="no text"):
        find_similar("   ", "notes")
    with pytest.raises(NashError, match="--top"):
        find_similar("words", "notes", top=0)


def test_choose_collection(tmp_path: Path) -> None:
    with pytest.raises(NashError, match="no collections yet"):
        choose_collection(None, tmp_path / "x.txt")
    a, b = tmp_path / "a", tmp_path / "b"
    make_docs(a, per_topic=2)
    index_folder(a, hasher_options=FAST)
    assert choose_collection(None, tmp_path / "anywhere.txt").name == "a"  # the only one
    make_docs(b, per_topic=2)
    index_folder(b, hasher_options=FAST)
    assert choose_collection(None, b / "space" / "space-0.txt").name == "b"  # root holds it
    assert choose_collection("a", b / "space" / "space-0.txt").name == "a"
    with pytest.raises(NashError, match=r"several collections \(a, b\).*--collection"):
        choose_collection(None, tmp_path / "elsewhere.txt")
    with pytest.raises(NashError, match="no collection named 'c'"):
        choose_collection("c")
    # b's metadata damaged: a file of b's folder was answered from a, the only readable one.
    from nashcli.index import Collection

    (Collection.open("b").directory / "meta.sqlite").write_bytes(b"junk" * 100)
    with pytest.raises(NashError, match="'b' cannot be read .* to ask a all the same, add --co"):
        choose_collection(None, b / "space" / "space-0.txt")
    assert choose_collection(None, a / "space" / "space-0.txt").name == "a"  # (a's own)


def test_torch_free_query_encoder_matches_the_hasher(notes) -> None:
    from nashcli.index import Collection
    from nashcli.pipeline import SemanticHasher
    from nashcli.similar import LinearQueryEncoder
    from nashcli.vectors import CsrRows

    folder, paths = notes
    texts = [p.read_text() for p in paths] + ["Rocket, rocket! the MOON", "no known words", ""]
    with Collection.open("notes").snapshot() as snap:
        fast = LinearQueryEncoder.load(snap.model_dir)
        full = SemanticHasher.load(snap.model_dir, device="cpu")
    if fast is None:
        pytest.skip(f"the default model ({full.method}) has no linear encoder")
    # What an update stores: the full hasher's rows and codes, to the bit.
    x_fast, x_full = fast.vectorize(texts), full.vectorize(texts)
    assert x_fast.shape == x_full.shape and x_fast.dtype == x_full.dtype
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(x_fast, part), getattr(x_full, part))
    np.testing.assert_array_equal(fast.encode_vectors(x_fast), full.encode_vectors(x_full))
    # A query's one row goes through CsrRows, not scipy: the same floats, hence the same code.
    for i in range(len(texts)):
        row = CsrRows.of(x_full[i])
        np.testing.assert_array_equal(fast.logits(row), fast.logits(x_full[i]))
        np.testing.assert_array_equal(fast.encode_vectors(row), full.encode_vectors(x_full[i]))
    # A query's rows, without scipy: the same to float rounding.
    rows = fast.vectorize_rows(texts).to_dense()
    np.testing.assert_allclose(rows, x_full.toarray(), rtol=1e-5, atol=1e-6)


def test_queries_import_neither_torch_nor_scipy(notes, tmp_path) -> None:
    """torch takes seconds to import and scipy.sparse about 0.18 s: a query by text, by an
    indexed file and by a file outside the collection needs neither (nor scikit-learn)."""
    folder, paths = notes
    outside = tmp_path / "outside.txt"
    outside.write_text("a rocket to the moon and its orbit")
    code = (
        "from pathlib import Path; from nashcli.similar import find_similar; "
        "print([len(find_similar(q, 'notes', top=3)) for q in "
        f"('rocket orbit moon', Path({str(paths[0])!r}), Path({str(outside)!r}))])"
    )
    assert run_fresh(code, {"torch", "sklearn", "scipy"}) == ("[3, 3, 3]", [])


def constant_codes(self, x) -> np.ndarray:
    """A model whose codes tell nothing apart: every document at Hamming distance 0."""
    return np.zeros((x.shape[0], self.n_bits), dtype=bool)


@pytest.fixture
def all_tied(tmp_path: Path, monkeypatch) -> tuple[Path, list[Path]]:
    from nashcli.pipeline import SemanticHasher

    monkeypatch.setattr(SemanticHasher, "encode_vectors", constant_codes)
    monkeypatch.setattr(similar.LinearQueryEncoder, "encode_vectors", constant_codes)
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    index_folder(folder, hasher_options=FAST)
    return folder, paths


@pytest.mark.parametrize("ranking", ["fused", "cosine"])
def test_a_new_document_tied_with_the_pool_is_found(all_tied, ranking: str) -> None:
    """Ties at the pool's last distance used to be cut by row order, so a document added last
    (the highest row) was never a candidate however close its text."""
    from nashcli.indexing import apply_changes

    folder, paths = all_tied
    text = "clutch gearbox sedan dealer mileage brake clutch gearbox"
    new = folder / "cars" / "new.txt"
    new.write_text(text)
    assert apply_changes("notes", upserts=[new]).added == 1
    hits = find_similar(text, "notes", top=3, ranking=ranking, pool=10)
    assert new in [h.path for h in hits]  # fused: the feedback term may put a neighbour first
    assert all(h.distance == 0 for h in hits)
    assert find_similar(text, "notes", top=1, ranking="cosine", pool=10)[0].path == new


def test_weighted_distance_orders_as_the_expected_distance() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=16)
    codes_ = rng.integers(0, 2, size=(200, 16)).astype(bool)
    query = p > 0.5
    weighted = similar.weighted_distances(codes_, query, p)
    expected = (p * ~codes_ + (1 - p) * codes_).sum(axis=1)
    assert np.allclose(weighted, (expected - np.minimum(p, 1 - p).sum()) / np.abs(2 * p - 1).mean())
    assert np.array_equal(np.argsort(weighted, kind="stable"), np.argsort(expected, kind="stable"))
    # equally sure of every bit: the plain distance
    plain = (codes_ != query).sum(axis=1)
    assert np.allclose(similar.weighted_distances(codes_, query, np.where(query, 0.9, 0.1)), plain)


def test_identical_codes_get_identical_weighted_distances() -> None:
    """However the sum is ordered: a pool's "every row tied with the last" counts on it."""
    rng = np.random.default_rng(1)
    for n, bits in ((7, 64), (75, 64), (30, 130)):
        p = rng.uniform(size=bits)
        row = rng.integers(0, 2, size=bits).astype(bool)
        weighted = similar.weighted_distances(np.tile(row, (n, 1)), p > 0.5, p)
        assert len(set(weighted.tolist())) == 1


def test_the_pool_is_the_nearest_by_weighted_distance(notes) -> None:
    """Out of the 4 x pool nearest by plain distance, the pool nearest by weighted distance."""
    from nashcli.index import Collection

    folder, paths = notes
    differs = 0
    with Collection.open("notes").snapshot() as snap:
        encoder = similar.LinearQueryEncoder.load(snap.model_dir)
        bits = codes.unpack_codes(snap.codes_of(range(snap.rows)), snap.bits)
        for q in range(0, snap.rows, 3):
            query = similar.stored_query(snap, q, encoder)
            rows, dists, weighted = similar.candidate_pool(snap, query, 4, np.array([q]))
            plain = (bits != bits[q]).sum(axis=1)
            plain[q] = snap.bits + 1
            shortlist = np.lexsort((np.arange(snap.rows), plain))[: similar.TIE_FACTOR * 4]
            w = similar.weighted_distances(bits[shortlist], bits[q], query.probabilities)
            expected = shortlist[np.lexsort((shortlist, w))]
            last = np.sort(w)[3]
            assert rows.tolist() == expected[: int((w <= last).sum())].tolist()
            assert dists.tolist() == plain[rows].tolist()
            differs += set(rows.tolist()) != set(shortlist[:4].tolist())
    assert differs  # the weighting changed some pool, or this test shows nothing


def test_the_scrambled_order_differs_from_query_to_query() -> None:
    """Many orders of one tie group, each row first about equally often (a multiplication by
    a constant only rotated one fixed circle of rows: 10 orders of 10 rows)."""
    rows = np.arange(100, 110)
    rng = np.random.default_rng(0)
    firsts, orders = np.zeros(10, dtype=int), set()
    for _ in range(2000):
        code = rng.integers(0, 2**63, size=1, dtype=np.uint64)
        order = np.argsort(similar._scrambled(rows, code))
        orders.add(tuple(order))
        firsts[order[0]] += 1
    assert len(orders) > 1500
    assert firsts.min() > 140 and firsts.max() < 260  # 200 each, give or take


def test_identical_codes_are_not_listed_in_folder_order(all_tied) -> None:
    """The Hamming order once listed equally distant documents by row, i.e. crawl order: the
    first folder's documents won every tie, whatever the query was about."""
    from nashcli.index import Collection

    folder, paths = all_tied
    hits = find_similar(paths[-1], "notes", top=10, ranking="hamming")
    assert all(h.distance == 0 for h in hits)
    assert len({topic(h.path) for h in hits}) > 1
    with Collection.open("notes").snapshot() as snap:
        own = snap.doc_by_path(str(paths[-1])).row
        rows = np.array([r for r in range(snap.rows) if r != own])
        scrambled = rows[np.argsort(similar._scrambled(rows, snap.codes_of([own])[0]))]
    assert [h.row for h in hits] == scrambled[:10].tolist()


def test_the_tie_group_is_bounded(all_tied) -> None:
    from nashcli.index import Collection

    folder, paths = all_tied
    with Collection.open("notes").snapshot() as snap:
        query = similar.Query(snap.codes_of([0])[0], snap.tfidf_of([0]))  # plain distances
        none = np.zeros(0, dtype=np.int64)
        rows, dists, _ = similar.candidate_pool(snap, query, 5, none)
        assert len(rows) == similar.TIE_FACTOR * 5 < snap.rows  # everything ties: cut at 4x
        rows, dists, _ = similar.candidate_pool(snap, query, 10, np.array([0, 3]))
        assert len(rows) == snap.rows - 2 and not {0, 3} & set(rows.tolist())
        assert list(rows) == sorted(rows)  # (distance, row) order


def test_a_query_file_whose_name_is_not_utf8(notes, tmp_path: Path) -> None:
    """Such a file is never indexed, but it can still be a query (read, encoded)."""
    import os

    name = os.fsdecode(b"space-\xff.txt")
    query = tmp_path / name
    query.write_text("rocket orbit launch moon astronaut")
    hits = find_similar(query, "notes", top=3)
    assert [topic(h.path) for h in hits] == ["space"] * 3


def test_json_output_is_valid_utf8_whatever_the_file_names() -> None:
    """A file name's undecodable bytes went out raw in --json (invalid UTF-8 for strict
    parsers); now escaped so that they come back, and a non-UTF-8 stream gets ASCII."""
    import json

    from nashcli.render import json_document

    document = {"query": "r\udce9sum\udce9.txt", "title": "café 東京"}
    text = json_document(document, "utf-8")
    assert text == '{"query": "r\\udce9sum\\udce9.txt", "title": "café 東京"}'
    text.encode("utf-8")  # strict: no lone surrogate left
    assert os.fsencode(json.loads(text)["query"]) == os.fsencode(document["query"])
    assert json_document(document, "latin-1").isascii()
    assert json.loads(json_document(document, "latin-1")) == document


def test_json_output_carries_no_raw_terminal_controls() -> None:
    """JSON escapes U+0000-U+001F only: a C1 control (U+009B starts a terminal command: a name
    with "\x9b2J" cleared the screen), DEL and bidirectional overrides went out raw."""
    import json

    from nashcli.render import json_document

    document = {"path": "c1\x9b2J\x9b31mX \x7f \u202eexe.txt \u2028", "title": "café"}
    text = json_document(document, "utf-8")
    assert text.isprintable() and "café" in text
    assert "\\u009b2J" in text and "\\u202e" in text and "\\u2028" in text
    assert json.loads(text) == document


def test_a_file_of_a_folder_moved_and_linked_back_is_found_by_its_real_path(
    notes, tmp_path: Path
) -> None:
    """The collection's recorded folder is a link now: the file's real path still chooses the
    collection (among several) and is the indexed document, never its own neighbour."""
    folder, paths = notes
    other = tmp_path / "other"
    make_docs(other, per_topic=3, seed=9)
    index_folder(other, hasher_options=FAST)
    moved = tmp_path / "big" / "notes"
    moved.parent.mkdir()
    folder.rename(moved)
    folder.symlink_to(moved)
    real = moved / paths[0].relative_to(folder)
    assert choose_collection(None, real).name == "notes"
    hits = find_similar(real, "notes", top=5)
    assert paths[0] not in [h.path for h in hits] and len(hits) == 5
