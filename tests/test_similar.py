"""`find_similar`: neighbours by topic, never itself, from inside or outside the collection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_indexing import FAST, bump, make_docs

from nashcli import similar
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


@pytest.mark.parametrize("rerank", [True, False])
def test_indexed_file_neighbours(notes, rerank: bool) -> None:
    folder, paths = notes
    query = paths[0]
    hits = find_similar(query, "notes", top=5, rerank=rerank)
    assert len(hits) == 5
    assert all(h.path != query for h in hits)  # never its own neighbour
    assert all(h.path.is_absolute() and h.path.exists() for h in hits)
    if rerank:  # scores are cosines, in decreasing order
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(topic(h.path) == topic(query) for h in hits)
    else:  # Hamming order; score = 1 - distance / bits
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        assert all(h.score == pytest.approx(1 - h.distance / 64) for h in hits)


def test_indexed_file_needs_no_model(notes, monkeypatch) -> None:
    folder, paths = notes

    def no_model(_):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(similar, "_load_hasher", no_model)
    assert len(find_similar(paths[3], "notes", top=3)) == 3


def test_text_and_outside_file(notes, tmp_path: Path) -> None:
    folder, paths = notes
    hits = find_similar("butter flour oven sugar bake dough", "notes", top=5)
    assert all(topic(h.path) == "cooking" for h in hits)
    outside = tmp_path / "outside.txt"
    outside.write_text("engine brake tire clutch gearbox fuel sedan")
    hits = find_similar(outside, "notes", top=5)
    assert all(topic(h.path) == "cars" for h in hits)


def test_changed_indexed_file_is_encoded_fresh(notes) -> None:
    folder, paths = notes
    query = paths[0]  # a space note, rewritten about cooking and not re-indexed
    query.write_text("butter flour oven sugar bake dough garlic onion simmer recipe")
    bump(query)
    hits = find_similar(query, "notes", top=5)
    assert all(h.path != query for h in hits)
    assert all(topic(h.path) == "cooking" for h in hits)


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


def test_torch_free_query_encoder_matches_the_hasher(notes) -> None:
    from nashcli.index import Collection
    from nashcli.pipeline import SemanticHasher
    from nashcli.similar import LinearQueryEncoder

    folder, paths = notes
    texts = [p.read_text() for p in paths] + ["Rocket, rocket! the MOON", "no known words", ""]
    with Collection.open("notes").snapshot() as snap:
        fast = LinearQueryEncoder.load(snap.model_dir)
        full = SemanticHasher.load(snap.model_dir, device="cpu")
    if fast is None:
        pytest.skip(f"the default model ({full.method}) has no linear encoder")
    x_fast, x_full = fast.vectorize(texts), full.vectorize(texts)
    assert x_fast.shape == x_full.shape
    np.testing.assert_allclose(x_fast.toarray(), x_full.toarray(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fast.encode_vectors(x_full), full.encode_vectors(x_full))


def test_text_query_does_not_import_torch(notes) -> None:
    import subprocess
    import sys

    folder, paths = notes
    code = (
        "import sys; from nashcli.similar import find_similar; "
        "hits = find_similar('rocket orbit moon', 'notes', top=3); "
        "print(len(hits), 'torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["3", "False", "False"]
