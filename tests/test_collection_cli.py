"""`nash index / similar / status / forget` as a user runs them: output, JSON, one-line errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_indexing import FAST, make_docs
from typer.testing import CliRunner

from nashcli import indexing
from nashcli.cli import app


@pytest.fixture(autouse=True)
def fast_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few epochs: these tests check the commands, not the model."""
    real = indexing._new_hasher
    monkeypatch.setattr(
        indexing, "_new_hasher", lambda bits, device, seed, options: real(bits, device, seed, FAST)
    )


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nash: error: "), result.stderr
    return lines[0]


@pytest.fixture
def notes(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=6)
    result = run("index", str(folder))
    assert result.exit_code == 0, result.output
    return folder, paths


def test_index_summary_and_reindex(notes) -> None:
    folder, paths = notes
    (folder / "binary.txt").write_bytes(b"\x00" * 50)
    result = run("index", str(folder))
    assert result.exit_code == 0
    assert f"{len(paths)} documents in notes" in result.stdout
    assert f"{len(paths)} unchanged" in result.stdout
    assert "1 skipped" in result.stdout and "binary" in result.stdout
    assert run("index", str(folder), "--quiet").stdout == ""


def test_retrain_with_too_few_documents_still_removes_the_deleted_ones(notes) -> None:
    """--retrain on a folder left with one document cannot fit a model; it used to refuse and
    keep every deleted file in the index."""
    folder, paths = notes
    for path in paths[1:]:
        path.unlink()
    result = run("index", str(folder), "--retrain")
    assert result.exit_code == 0, result.output
    assert f"{len(paths) - 1} removed" in result.stdout
    assert "not retrained: 1 text document here" in result.stderr
    status = json.loads(run("status", "--json").stdout)
    assert [c["documents"] for c in status["collections"]] == [1]
    # --bits with it: the note said nothing of the code length it could not change.
    result = run("index", str(folder), "--retrain", "--bits", "32")
    assert result.exit_code == 0, result.output
    assert "(so its codes stay 64-bit, not the 32 asked for)" in result.stderr


def test_a_first_index_stopped_before_its_fit_says_so_of_other_bits(tmp_path: Path) -> None:
    """A first `nash index --bits 32` killed before its model was committed left a collection
    of no codes; `--bits 16` was told to "add --retrain to re-encode it", of nothing encoded."""
    from nashcli.index import Collection

    folder = tmp_path / "kb"
    make_docs(folder, per_topic=4)
    Collection.create("kb", folder, 32)  # (what the killed run left: no generation yet)
    line = one_error_line(run("index", str(folder), "--bits", "16"))
    assert "is being indexed with 32-bit codes by a first index that has not finished" in line
    assert "add --retrain to index it with 16 bits instead" in line
    result = run("index", str(folder), "--bits", "16", "--retrain")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(run("status", "--json").stdout)["collections"]
    assert entry["bits"] == 16


def test_files_left_out_by_ignore_rules_are_not_reported_as_deleted(notes) -> None:
    """A .nashignore that leaves out indexed files removes their entries; the summary said
    "N removed" as if the files were gone (a .nashignore of * emptied a collection so)."""
    folder, paths = notes
    paths[0].unlink()
    (folder / ".nashignore").write_text("\n".join(p.name for p in paths[1:3]) + "\n")
    result = run("index", str(folder))
    assert result.exit_code == 0, result.output
    assert "3 removed (2 of them still there, left out by .gitignore/.nashignore rules)" in (
        result.stdout
    )
    (folder / ".nashignore").write_text("\n".join(p.name for p in paths[1:5]) + "\n")
    result = run("index", str(folder), "--retrain")  # (the retrain counts what it drops)
    assert result.exit_code == 0, result.output
    assert "model trained (--retrain)" in result.stdout
    assert "2 removed (still there, left out by" in result.stdout
    (folder / ".nashignore").write_text("*\n")
    result = run("index", str(folder))
    assert f"{len(paths) - 5} removed (still there, left out by" in result.stdout
    (folder / ".nashignore").unlink()
    result = run("index", str(folder))
    assert "removed" not in result.stdout and f"{len(paths) - 1} added" in result.stdout


def test_retrain_with_too_few_readable_documents_updates_the_index(notes) -> None:
    """Two files found, one of them unreadable: the retrain cannot fit, the update still runs."""
    folder, paths = notes
    for path in paths[2:]:
        path.unlink()
    paths[1].write_text("From: ann@example.org\n\n \n")  # no text: skipped when read
    paths[1].rename(paths[1].with_suffix(".eml"))
    result = run("index", str(folder), "--retrain")
    assert result.exit_code == 0, result.output
    assert "not retrained: 1 readable text document here" in result.stderr
    assert f"{len(paths) - 1} removed" in result.stdout and "1 skipped" in result.stdout
    status = json.loads(run("status", "--json").stdout)
    assert [c["documents"] for c in status["collections"]] == [1]


def test_similar_json(notes) -> None:
    folder, paths = notes
    result = run("similar", str(paths[0]), "--json", "--top", "3")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["query"] == str(paths[0]) and doc["collection"] == "notes"
    assert len(doc["results"]) == 3
    for hit in doc["results"]:
        assert set(hit) == {"path", "distance", "score", "title"}
        assert hit["title"] == Path(hit["path"]).read_text().splitlines()[0]  # make_docs' lines
        assert Path(hit["path"]).is_absolute() and hit["path"] != str(paths[0])
        assert isinstance(hit["distance"], int) and isinstance(hit["score"], float)
    plain = json.loads(run("similar", str(paths[0]), "--json", "--no-rerank").stdout)
    distances = [h["distance"] for h in plain["results"]]
    assert distances == sorted(distances)


def test_names_that_begin_with_a_tilde_here_are_those_files(tmp_path: Path, monkeypatch) -> None:
    """`./~draft.txt` was read as `~draft.txt` (pathlib drops the "./"), then as the home
    folder of a user "draft.txt": "cannot find the home folder", and `./~root/x.txt` was
    root's x.txt. `~draft.txt` of no such user, as the shell passes it, is the file here."""
    paths = make_docs(tmp_path / "~tilde", per_topic=6)
    draft = paths[0].with_name("~draft.txt")
    paths[0].rename(draft)
    monkeypatch.chdir(tmp_path)
    assert run("index", "./~tilde").exit_code == 0
    (entry,) = json.loads(run("status", "--json").stdout)["collections"]
    assert entry["root"] == str(tmp_path / "~tilde")
    for query in ("./~tilde/space/~draft.txt", "~tilde/space/~draft.txt"):
        result = run("similar", query, "--json", "-n", "1")
        assert result.exit_code == 0, result.output
        (hit,) = json.loads(result.stdout)["results"]
        assert Path(hit["path"]).parent == draft.parent  # (a space note: the query's neighbour)
    monkeypatch.chdir(draft.parent)
    result = run("similar", "~draft.txt", "--json", "-n", "1")
    assert result.exit_code == 0, result.output
    assert str(draft) not in result.stdout  # known as the indexed file: not its own answer


def test_a_collection_folder_nash_may_not_enter_leaves_the_others_listed(
    notes, tmp_path: Path, monkeypatch
) -> None:
    """One collection folder of another user's (mode 700) made `nash status` (and any command
    that lists the collections) stop with "meta.sqlite: Permission denied"."""
    other = tmp_path / "other"
    make_docs(other, per_topic=6)
    assert run("index", str(other)).exit_code == 0
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:  # what a folder of mode 700 of another user does
        if self.name == "meta.sqlite" and self.parent.name == "other":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    by_name = {c["name"]: c for c in json.loads(result.stdout)["collections"]}
    assert by_name["notes"]["documents"] == len(notes[1])
    assert "meta.sqlite" in by_name["other"]["damaged"]
    folder, paths = notes
    assert run("similar", str(paths[0]), "--json").exit_code == 0  # notes' own answers


def test_pool_default_is_documented() -> None:
    import typer.main

    from nashcli.similar import MAX_POOL, MIN_POOL, SMALL_COLLECTION, default_pool

    command = typer.main.get_command(app).commands["similar"]
    (pool,) = [p for p in command.params if p.name == "pool"]
    assert f"up to {SMALL_COLLECTION:,}" in pool.help
    assert f"{MIN_POOL} to {MAX_POOL:,}" in pool.help
    assert [default_pool(n) for n in (5, 1000, 1001, 5000, 10_000, 10**6)] == [
        5,
        1000,
        200,
        500,
        1000,
        1000,
    ]


def test_similar_table_and_text(notes) -> None:
    folder, paths = notes
    result = run("similar", str(paths[0]), "--top", "2")
    assert result.exit_code == 0
    assert "space/" in result.stdout and "dist" in result.stdout
    result = run("similar", "--text", "butter flour oven", "--json")
    assert json.loads(result.stdout)["query"] == "butter flour oven"


@pytest.mark.parametrize("columns", ["40", "10", "0", "abc"])
def test_a_narrow_terminal_gets_whole_paths_and_numbers(notes, monkeypatch, columns) -> None:
    """Too narrow for the tables: one record per line, never a number or a path cut short."""
    folder, paths = notes
    monkeypatch.setenv("COLUMNS", columns)  # (0, abc: no width, which counts as unset: a table)
    result = run("similar", str(paths[0]), "--top", "3")
    assert result.exit_code == 0
    assert result.stdout.startswith("similar to /")  # (its own line, not a folded title)
    assert result.stdout.splitlines()[0].endswith(" in collection notes")
    answers = json.loads(run("similar", str(paths[0]), "--top", "3", "--json").stdout)
    for answer in answers["results"]:
        path = str(Path(answer["path"]).relative_to(folder))
        numbers = f"{path}  (distance {answer['distance']}, score {answer['score']:.3f})"
        assert (numbers if columns.isdigit() and columns != "0" else f"│ {path} │") in result.stdout
    status = run("status").stdout
    assert status.splitlines()[0] == "collections"  # (a table's title was padded with spaces)
    if columns.isdigit() and columns != "0":
        assert f"notes: {len(paths)} documents, 64 bits" in status and f"  {folder}\n" in status
    else:
        assert f"│ {folder} │" in status and "│   64 │" in status


@pytest.mark.parametrize("title", ["漢字 " * 20, "abc"])
@pytest.mark.parametrize("path_length", [10, 24, 36, 60])
def test_the_similar_table_is_drawn_whole_at_every_width(path_length: int, title: str) -> None:
    """Ten hits (a two-digit rank), negative scores, wide-character titles: a table, where one
    is drawn, never runs past the width or loses its right border; and where a path and its
    title fit side by side, neither is folded (a row is one line); a path of up to 48 columns
    is never folded: the answers are records instead."""
    import io
    from collections import namedtuple

    from rich.cells import cell_len
    from rich.console import Console

    from nashcli import render

    hit = namedtuple("hit", "path distance score title")
    name = "p" * (path_length - 7)
    hits = [hit(f"/r/{name}/{i:02d}.txt", 37, -1e-4 if i % 2 else 12.5, title) for i in range(10)]
    tables = 0
    whole = 2 + 4 + 6 + path_length + max(5, cell_len(title)) + 16  # the columns, the borders
    for width in range(30, 200):
        console = Console(width=width, file=io.StringIO(), highlight=False)
        results = render.similar_results(hits, "/r", "a query", width, "notes")
        render.show(console, results)
        if isinstance(results, render.Text):
            continue  # one record per line (terminals wrap them)
        tables += 1
        lines = console.file.getvalue().splitlines()[1:]
        assert all(cell_len(line) <= width and line[-1] in "┓┃┩│┘" for line in lines), width
        if path_length <= 48:  # a path is never folded where it could keep one line
            assert all(f"{name}/{i:02d}.txt" in console.file.getvalue() for i in range(10)), width
        if width >= whole:
            assert len(lines) == len(hits) + 4, width
    assert tables > 100


def test_a_long_path_keeps_one_line_where_titles_can_yield_it_room() -> None:
    """At 200 columns a 101-column path was folded so that titles kept all 80 of theirs: the
    path is what a reader copies; titles give up room down to 30 columns first."""
    import io
    from collections import namedtuple

    from rich.console import Console

    from nashcli import render

    hit = namedtuple("hit", "path distance score title")
    path = "/r/" + "deeply_nested_directory_name_here/" * 2 + "x" * 27 + ".txt"  # 101 columns
    hits = [hit(path, 3, 0.5, "t" * 80)]
    for width, whole in ((200, True), (160, True), (120, False)):
        console = Console(width=width, file=io.StringIO(), highlight=False)
        render.show(console, render.similar_results(hits, "/r", "q", width, "notes"))
        assert (path[3:] in console.file.getvalue()) is whole, width


def test_status_and_forget(notes) -> None:
    folder, paths = notes
    doc = json.loads(run("status", "--json").stdout)
    (entry,) = doc["collections"]
    assert entry["name"] == "notes" and entry["root"] == str(folder)
    assert entry["documents"] == len(paths) and entry["bits"] == 64
    assert entry["model"] and entry["watching"] is False and entry["updated_at"] > 0
    assert entry["state"] == "ok"
    assert set(entry) == {
        "name",
        "root",
        "documents",
        "bits",
        "model",
        "updated_at",
        "watching",
        "state",
        "folder_found",
        "complete",
        "note",
    }
    assert entry["folder_found"] is True and entry["note"] is None and entry["complete"] is True
    assert "notes" in run("status").stdout
    assert run("forget", "notes").exit_code == 0
    assert json.loads(run("status", "--json").stdout) == {"collections": []}
    assert all(p.exists() for p in paths)
    assert "no collection named 'notes'" in one_error_line(run("forget", "notes"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("index", "{tmp}/missing"), "no such folder"),
        (("index", "{tmp}/empty"), "nothing to index"),
        (("index", "{tmp}/empty", "--max-size", "lots"), "not a size"),
        (("index", "{tmp}/empty", "--max-size", "0"), "give at least 1 KB"),
        (("index", "{tmp}/empty", "--max-size", "50"), "is 50 bytes"),
        (("index", "{tmp}/empty", "--max-size", "1KB"), "nothing to index"),  # 1 KB is taken
        (("index", "{tmp}/empty", "--device", "tpu"), "--device"),
        (("index", "{tmp}/one"), "one: only 1 text document; nash learns its codes from at least"),
        (("index", "{tmp}/blank"), "blank: only 1 readable text document; nash learns its codes"),
        (("similar", "{tmp}/missing.txt"), "no such file"),
        (("similar", "{tmp}/dangling"), "dangling: dangling symlink"),
        (("similar", "--text", "orbit", "--top", "0"), "'--top' / '-n': Input should be greater"),
        (("similar", "--text", "orbit", "--pool", "0"), "'--pool': Input should be greater"),
        (("similar", "{tmp}/empty"), "is a folder"),
        (("similar", "{tmp}/one/note.txt/"), "note.txt/: not a folder (a trailing '/'"),
        (("index", "{tmp}/one/note.txt/"), "note.txt/: not a folder"),
        (("similar", "{tmp}/one/note.txt/."), "note.txt/.: not a folder"),
        (("similar",), "give a FILE or --text"),
        (("similar", "{tmp}/x.txt", "--text", "hi"), "give a FILE or --text"),
        (("similar", "--text", "hi", "--collection", "nope"), "no collection named 'nope'"),
    ],
)
def test_one_line_errors(notes, tmp_path: Path, args, message) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "missing.txt")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "note.txt").write_text("a lonely note about rockets")
    (tmp_path / "blank").mkdir()  # two files, one of them with no text to read
    (tmp_path / "blank" / "note.txt").write_text("a lonely note about rockets")
    (tmp_path / "blank" / "page.html").write_text("<html><script>var x = 1;</script></html>")
    result = run(*(a.format(tmp=tmp_path) for a in args))
    assert message in one_error_line(result)


@pytest.mark.parametrize(
    ("words", "cword"),
    [
        ("nash forget ", 2),
        ("nash forget no", 2),
        ("nash similar -c ", 3),
        ("nash similar x -c no", 4),
    ],
)
def test_tab_completes_collection_names(notes, tmp_path: Path, words: str, cword: int) -> None:
    """`nash forget <TAB>` and `nash similar -c <TAB>` offer the collections (not the hidden
    folders of a collection being made or forgotten)."""
    folder, _ = notes
    other = tmp_path / "other"
    make_docs(other, per_topic=4)
    assert run("index", str(other), "--name", "news").exit_code == 0
    (indexing.collections_dir() / ".new-notes2-123").mkdir()
    env = {"_NASH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = CliRunner().invoke(app, [], env=env, prog_name="nash")
    offered = result.output.split()
    assert offered == (["news", "notes"] if words.endswith(" ") else ["news", "notes"][1:]), (
        result.output
    )


def test_no_collection_yet(tmp_path: Path) -> None:
    (tmp_path / "q.txt").write_text("words")
    assert "no collections yet" in one_error_line(run("similar", str(tmp_path / "q.txt")))
    assert "no collections yet" in run("status").stdout


def test_several_collections_need_a_choice(notes, tmp_path: Path) -> None:
    other = tmp_path / "other"
    make_docs(other, per_topic=2)
    assert run("index", str(other), "--quiet").exit_code == 0
    (tmp_path / "q.txt").write_text("rocket orbit")
    line = one_error_line(run("similar", str(tmp_path / "q.txt")))
    assert "notes" in line and "other" in line and "--collection" in line
    ok = run("similar", str(tmp_path / "q.txt"), "--collection", "other", "--json")
    assert json.loads(ok.stdout)["collection"] == "other"


def test_a_note_is_listed_by_its_front_matter_title(tmp_path: Path) -> None:
    """Not by its first line, ``---``, as every Obsidian or Jekyll note would be."""
    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    (folder / "space" / "launch.md").write_text(
        "---\ntitle: Launch checklist\ntags: [space]\n---\n" + "rocket orbit launch nasa " * 8
    )
    assert run("index", str(folder), "--quiet").exit_code == 0
    result = run("similar", "--text", "rocket orbit launch nasa", "--top", "13")
    row = next(line for line in result.stdout.splitlines() if "launch.md" in line)
    assert "Launch checklist" in row and "---" not in row
    result = run("similar", "--text", "rocket orbit launch nasa", "--top", "13", "--json")
    titles = {hit["path"]: hit["title"] for hit in json.loads(result.stdout)["results"]}
    assert titles[str(folder / "space" / "launch.md")] == "Launch checklist"


def test_brackets_and_escapes_in_names_titles_and_queries_are_shown_as_they_are(
    tmp_path: Path,
) -> None:
    """Rich reads ``[...]`` as markup: a title ``[/quote] ...`` crashed every query that found
    it, and ``[red]x.txt`` was shown as ``x.txt``. Terminal escapes in a title are not sent."""
    folder = tmp_path / "[red]notes"
    make_docs(folder, per_topic=4)
    (folder / "draft[").mkdir()  # the path "draft[/quote].txt" holds a closing tag
    (folder / "draft[" / "quote].txt").write_text(
        "[/quote] rocket orbit launch\n" + "rocket orbit launch nasa moon " * 8
    )
    (folder / "space" / "[bold]escape.txt").write_text(
        "\x1b[31mred title\x1b[0m\n" + "rocket orbit shuttle nasa moon " * 8
    )
    (folder / "empty.txt").write_text("")
    index = run("index", str(folder))
    assert index.exit_code == 0, index.output
    assert "14 documents in red-notes" in index.stdout
    assert "empty.txt" in index.stdout  # the skipped list
    similar = run("similar", "--text", "[/quote] rocket orbit launch nasa", "--top", "14")
    assert similar.exit_code == 0, similar.output
    assert "similar to [/quote] rocket orbit" in similar.stdout
    assert "draft[/quote].txt" in similar.stdout and "[bold]escape.txt" in similar.stdout
    assert "[/quote] rocket orbit launch" in similar.stdout  # its title
    assert "\x1b" not in similar.stdout and "red title" in similar.stdout
    status = run("status")
    assert status.exit_code == 0 and "[red]notes" in status.stdout


def test_one_document_is_one_document(tmp_path: Path) -> None:
    folder = tmp_path / "pair"
    make_docs(folder, per_topic=1)
    assert run("index", str(folder)).exit_code == 0
    (folder / "space" / "space-0.txt").unlink()
    (folder / "cars" / "cars-0.txt").unlink()
    result = run("index", str(folder))
    assert result.exit_code == 0, result.output
    assert "1 document in pair" in result.stdout


def test_a_collection_whose_folder_is_gone_says_so(notes, tmp_path: Path) -> None:
    folder, paths = notes
    folder.rename(tmp_path / "renamed")
    status = run("status")
    assert status.exit_code == 0 and f"{folder} (gone)" in status.stdout
    (entry,) = json.loads(run("status", "--json").stdout)["collections"]
    assert entry["root"] == str(folder) and entry["folder_found"] is False
    result = run("similar", "--text", "rocket orbit")
    assert result.exit_code == 0, result.output
    assert "is gone; if it moved, run: nash index NEW-PLACE --name notes" in result.stderr
    assert "gone" not in run("similar", "--text", "rocket orbit", "--json").stdout


def test_similar_leaves_out_a_file_deleted_since_the_last_update(notes) -> None:
    folder, paths = notes
    first = json.loads(run("similar", str(paths[0]), "--json", "-n", "3").stdout)["results"]
    Path(first[0]["path"]).unlink()
    result = run("similar", str(paths[0]), "--json", "-n", "3")
    assert result.exit_code == 0, result.output
    listed = [r["path"] for r in json.loads(result.stdout)["results"]]
    assert listed[:2] == [r["path"] for r in first[1:]] and len(listed) == 3
    assert result.stderr == (
        "nash: note: left out 1 file deleted since collection 'notes' was last updated; "
        f"nash index {folder} removes it from the index\n"
    )


def test_shown_names_keep_their_characters_but_not_controls() -> None:
    from nashcli.render import plain

    assert plain("a\u00a0b 👩\u200d💻 café") == "a\u00a0b 👩\u200d💻 café"  # as in the file name
    assert plain("x\x1b[31my\tz\r") == "x [31my z "
    assert plain("report\u202etxt.exe") == "report txt.exe"  # no right-to-left override


def test_invisible_characters_in_names_are_shown_as_escapes() -> None:
    """``zero<ZWSP>width.txt`` looked exactly like ``zerowidth.txt``; joiners, which emoji and
    scripts need, stay."""
    from nashcli.names import from_visible, shell_quote, visible

    for name, shown in [
        ("zero\u200bwidth.txt", "zero\\u200bwidth.txt"),
        ("soft\u00adhyphen", "soft\\u00adhyphen"),
        ("\ufeffbom \u200emark \u2028line", "\\ufeffbom \\u200emark \\u2028line"),
        ("tag\U000e0041\U000e0042.txt", "tag\\U000e0041\\U000e0042.txt"),  # (tag.txt to the eye)
        ("hangul\u3164filler \u034fcgj", "hangul\\u3164filler \\u034fcgj"),  # (a blank letter)
    ]:
        assert visible(name) == shown and from_visible(shown) == name
        assert shell_quote(name).startswith("$'")
    assert visible("👩\u200d💻 می\u200cخواهم") == "👩\u200d💻 می\u200cخواهم"
    assert visible("👍\ufe0f 葛\U000e0100城") == "👍\ufe0f 葛\U000e0100城"  # (variation selectors)
    assert visible("ᠠ\u180b") == "ᠠ\u180b"  # (traditional Mongolian's)
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert visible(f"{england}.txt") == f"{england}.txt"  # (an emoji flag's tags)
    assert from_visible("\\Uffffffff") == "\\Uffffffff"  # (no code point: left as it is)


def test_a_path_folded_in_the_table_keeps_its_spaces(tmp_path: Path) -> None:
    """Rich folded a path at a space and dropped it: "x…x z.txt" and "x…xz.txt" looked alike."""
    from rich.console import Console

    from nashcli.render import similar_table, status_table

    class Hit:
        def __init__(self, name: str) -> None:
            self.path, self.distance, self.score, self.title = tmp_path / name, 3, 0.5, "t" * 80

    names = ["x" * 46 + " z.txt", "x" * 46 + "z.txt"]  # (paths get 46 columns here)
    console = Console(width=80, file=io.StringIO())
    console.print(similar_table([Hit(n) for n in names], names, 80))
    lines = console.file.getvalue().splitlines()[3:-1]
    cells = [line.split("│")[4][1:].rstrip() for line in lines]  # (the padding's space cut)
    assert cells == ["x" * 46, " z.txt", "x" * 46, "z.txt"]  # (was: "z.txt" in both)
    console = Console(width=100, file=io.StringIO())
    root = "/r/" + "a" * 40 + " b" + "c" * 30  # (folded at 24 columns: "...a bc..." on line 2)
    console.print(status_table([("n", root, "1", "8", "m", "2026-12-07 14:21", "no")], 24))
    assert "a bccc" in console.file.getvalue()


def test_control_characters_in_names_are_shown_as_escapes(tmp_path: Path) -> None:
    """A file named "new<LF>line.txt" is not shown as "new line.txt" or "new\\nline.txt" (other
    files' names), and an escape in a name reaches neither the table nor an error line."""
    from nashcli.names import from_visible, visible

    assert visible("new\nline\t\x1b[31m\u202etxt.exe é") == "new\\nline\\t\\x1b[31m\\u202etxt.exe é"
    # A name that is not UTF-8 shows its bytes (raw, every such name looked alike: "caf�"),
    # and a watcher's log line reads back as that name.
    latin = os.fsdecode(b"caf\xe9 \x85")
    assert visible(latin) == "caf\\xe9 \\x85" and from_visible(visible(latin)) == latin
    assert from_visible(visible("c1\u0085 \x1b")) == "c1\u0085 \x1b"
    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    (folder / "space" / "new\nline.txt").write_text("rocket orbit launch nasa moon " * 8)
    (folder / "space" / "new line.txt").write_text("rocket orbit launch nasa shuttle " * 8)
    (folder / "space" / "new\\nline.txt").write_text("rocket orbit launch nasa station " * 8)
    assert run("index", str(folder)).exit_code == 0
    similar = run("similar", "--text", "rocket orbit launch nasa", "--top", "15").stdout
    assert "space/new\\nline.txt" in similar and "space/new line.txt" in similar
    assert "space/new\\\\nline.txt" in similar  # a backslash of the name's own is doubled
    missing = one_error_line(run("similar", str(folder / "gone\n\x1b[2Jx.txt")))
    assert missing.endswith("gone\\n\\x1b[2Jx.txt: no such file")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    "name",
    [
        "plain",
        "with space",
        "it's",
        "back\\slash",
        "new\nline",
        "esc\x1b[31m",
        "a\\n'b\tc",
        "c1\u0085x",
        "caf\udce9",  # the name b"caf\xe9" (Latin-1), as os.fsdecode gives it
    ],
)
def test_a_suggested_command_pastes_back_as_the_folder_it_names(name: str) -> None:
    """The folder in a command nash suggests ("run: nash index FOLDER --name ..."), as printed
    (every line goes through visible), is that folder again when a shell reads it."""
    from nashcli.names import shell_quote, visible

    shown = visible(f"/tmp/{name}")  # a plain path is shown as it is
    printed = visible(f"run: nash index {shell_quote(f'/tmp/{name}')} --name notes")
    argument = printed.removeprefix("run: nash index ").removesuffix(" --name notes")
    read = subprocess.run(["bash", "-c", f"printf %s {argument}"], capture_output=True)
    assert read.stdout == os.fsencode(f"/tmp/{name}")
    assert (argument == shown) == (name in ("plain",))


def test_a_collection_without_a_model_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    """Its first index was cut short (run nash index) or a watcher is building it (wait)."""
    from nashcli import watching
    from nashcli.index import Collection

    folder = tmp_path / "fresh"
    make_docs(folder, per_topic=2)
    Collection.create("fresh", folder, 64)
    result = run("similar", "--text", "rocket", "-c", "fresh")
    assert result.exit_code == 2
    assert f"has no index yet: run nash index {folder}" in result.stderr
    monkeypatch.setattr(watching, "is_watching", lambda name: name == "fresh")
    result = run("similar", "--text", "rocket", "-c", "fresh")
    assert result.exit_code == 2 and "its watcher (nash watch) is building it" in result.stderr


def _sqlite_cannot_open(patch: pytest.MonkeyPatch, inside, writer: str, reader: str) -> None:
    """Make SQLite refuse the databases ``inside`` says: a writer's open with the error
    ``writer``, a read-only one that is not immutable with ``reader``."""
    import sqlite3

    from nashcli import index

    real_connect, real_sqlite_connect = index._connect, sqlite3.connect

    def connect(path: Path, *, create: bool = False):
        if inside(path):
            raise sqlite3.OperationalError(writer)
        return real_connect(path, create=create)

    def sqlite_connect(database, *args, **kw):
        if inside(database) and "mode=ro" in database and "immutable=1" not in database:
            raise sqlite3.OperationalError(reader)
        return real_sqlite_connect(database, *args, **kw)

    patch.setattr(index, "_connect", connect)
    patch.setattr(sqlite3, "connect", sqlite_connect)


def _read_only(monkeypatch: pytest.MonkeyPatch, directory: Path, disk: bool = True) -> None:
    """Make ``directory`` behave as a folder on a read-only disk (``disk``) or one the user
    cannot write on a writable disk (root ignores file modes, and tests cannot mount): SQLite
    cannot open its database for writing, nor read-only without its ``-shm`` file; locks cannot
    be created."""
    import errno
    import os

    import filelock

    from nashcli import index

    real_access, real_acquire = os.access, filelock.FileLock.acquire
    real_read_only_fs = index._read_only_fs

    def inside(path) -> bool:
        path = Path(str(path).removeprefix("file:").split("?")[0])
        return path == directory or path.parent == directory

    def access(path, mode, **kw):
        return False if inside(path) and mode & os.W_OK else real_access(path, mode, **kw)

    def acquire(self, *args, **kw):
        if inside(self.lock_file):
            strerror = "Read-only file system" if disk else "Permission denied"
            raise OSError(errno.EROFS if disk else errno.EACCES, strerror, self.lock_file)
        return real_acquire(self, *args, **kw)

    writer, reader = "attempt to write a readonly database", "unable to open database file"
    _sqlite_cannot_open(monkeypatch, inside, writer, reader)
    monkeypatch.setattr(os, "access", access)
    if disk:
        monkeypatch.setattr(index, "_read_only_fs", lambda p: inside(p) or real_read_only_fs(p))
    monkeypatch.setattr(filelock.FileLock, "acquire", acquire)


def test_an_index_on_a_read_only_disk_answers_and_refuses_changes_in_one_line(
    notes, nash_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nashcli import indexing

    folder, paths = notes
    before = run("similar", str(paths[0]), "--json").stdout
    with monkeypatch.context() as patch:
        _read_only(patch, nash_home / "collections" / "notes")
        assert run("similar", str(paths[0]), "--json").stdout == before  # immutable, read-only
        (entry,) = json.loads(run("status", "--json").stdout)["collections"]
        assert entry["state"] == "ok" and entry["documents"] == len(paths)
        patch.setattr(indexing, "_retrain", lambda *a, **k: pytest.fail("trained in vain"))
        for args in (
            ("index", str(folder)),
            ("index", str(folder), "--retrain"),
            ("forget", "notes"),
        ):
            line = one_error_line(run(*args))
            assert "cannot change collection 'notes': Read-only file system" in line
        _read_only(patch, nash_home / "state")  # the state dir on the same read-only drive
        assert "cannot watch collection 'notes'" in one_error_line(run("watch", str(folder)))
        line = one_error_line(run("index", str(folder), "--retrain"))
        assert "cannot change collection 'notes': Read-only file system" in line
    assert run("similar", str(paths[0]), "--json").stdout == before  # nothing was lost
    assert run("index", str(folder)).exit_code == 0


def test_cuda_without_a_gpu_is_refused_even_with_nothing_to_train(
    notes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index already up to date needs no device, so `--device cuda` on a machine without a
    GPU passed unnoticed (a cron job carrying the wrong flag) until a retrain failed on it."""
    import torch

    folder, _ = notes
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = one_error_line(run("index", str(folder), "--device", "cuda"))
    assert "CUDA was asked for but no GPU is available (use --device cpu)" in line


def test_a_large_first_index_stopped_says_what_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the training cap a stop after the model's commit keeps it and the batches done:
    the stop's lines say so, and the command that goes on (a bare 'interrupted' did not)."""
    monkeypatch.setitem(FAST, "max_documents", 8)  # (the hasher options fast_training gives)
    monkeypatch.setattr(indexing, "BATCH", 5)
    folder = tmp_path / "big"
    make_docs(folder, per_topic=8)  # 24 files
    real_read, reads = indexing._read, []

    def stopping_read(path: Path):
        reads.append(path)
        if len(reads) == 8 + 12:  # the sample, then into the third batch
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(indexing, "_read", stopping_read)
    result = run("index", str(folder))
    assert result.exit_code == 130
    assert result.stderr.splitlines() == [
        f"nash: note: collection 'big' holds 10 documents so far: its first index stopped "
        f"before it was done; nash index {folder} goes on from there",
        "nash: interrupted",
    ]


def test_a_new_folder_on_a_read_only_disk_is_refused_in_one_line(
    notes, nash_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    folder, paths = notes
    other = tmp_path / "other"
    make_docs(other, per_topic=2)
    before = run("similar", str(paths[0]), "--json").stdout
    with monkeypatch.context() as patch:
        _read_only(patch, nash_home / "state")  # the lock every new collection is made under
        line = one_error_line(run("index", str(other)))
        assert "cannot create collection 'other': Read-only file system" in line
        assert str(nash_home / "state") in line
    with monkeypatch.context() as patch:  # only the collections' folder read-only
        real_mkdir = Path.mkdir

        def mkdir(self, *args, **kw):
            if self.parent == nash_home / "collections":
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return real_mkdir(self, *args, **kw)

        patch.setattr(Path, "mkdir", mkdir)
        line = one_error_line(run("index", str(other)))
        assert "cannot create collection 'other': Read-only file system" in line

        def full(self, *args, **kw):
            if self.parent == nash_home / "collections":
                raise OSError(errno.ENOSPC, "No space left on device", str(self))
            return real_mkdir(self, *args, **kw)

        patch.setattr(Path, "mkdir", full)
        line = one_error_line(run("index", str(other)))  # (nothing was committed to keep)
        assert line.endswith(
            f"No space left on device ({nash_home / 'collections'}); free some space"
        )
    assert sorted(p.name for p in (nash_home / "collections").iterdir()) == ["notes"]
    assert run("similar", str(paths[0]), "--json").stdout == before
    assert run("index", str(other)).exit_code == 0


def test_an_index_on_a_full_disk_still_answers(
    notes, nash_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no room for SQLite's ``-shm`` file no reader could open the database: `nash
    similar` and `nash status` said the collection was unreadable while it was intact. No
    writer can open it there either, so it is read as it stands (immutable)."""

    from nashcli import index

    folder, paths = notes
    directory = nash_home / "collections" / "notes"
    before = run("similar", str(paths[0]), "--json").stdout

    def inside(path) -> bool:
        return Path(str(path).removeprefix("file:").split("?")[0]).parent == directory

    with monkeypatch.context() as patch:
        _sqlite_cannot_open(patch, inside, "disk I/O error", "disk I/O error")
        line = one_error_line(run("similar", str(paths[0])))
        assert "cannot read collection 'notes' (meta.sqlite: disk I/O error)" in line  # room left
        patch.setattr(index, "_no_room", lambda d: d == directory)
        assert run("similar", str(paths[0]), "--json").stdout == before
        (entry,) = json.loads(run("status", "--json").stdout)["collections"]
        assert entry["state"] == "ok" and entry["documents"] == len(paths)
        line = one_error_line(run("index", str(folder)))  # (it did say "cannot read")
        assert "cannot change collection 'notes': meta.sqlite: disk I/O error, the disk" in line
        assert line.endswith("; free some space (what was committed is kept)")
        (directory / "meta.sqlite-wal").write_bytes(b"\0" * 64)  # transactions it cannot see
        line = one_error_line(run("similar", str(paths[0])))
        assert "cannot read collection 'notes' (meta.sqlite: disk I/O error)" in line
        (directory / "meta.sqlite-wal").unlink()
    assert run("similar", str(paths[0]), "--json").stdout == before


def test_a_database_the_user_may_not_read_says_so(
    notes, nash_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod 000 meta.sqlite: SQLite's "unable to open database file" came with "is its disk
    full, read-only or gone?", none of which it was."""
    folder, paths = notes
    directory = nash_home / "collections" / "notes"
    real_access = os.access

    def inside(path) -> bool:
        return Path(str(path).removeprefix("file:").split("?")[0]).parent == directory

    def access(path, mode, **kw) -> bool:  # what chmod 000 does to anyone but root
        return Path(path) != directory / "meta.sqlite" and real_access(path, mode, **kw)

    opening = "unable to open database file"
    with monkeypatch.context() as patch:
        _sqlite_cannot_open(patch, inside, opening, opening)
        patch.setattr(os, "access", access)
        line = one_error_line(run("similar", str(paths[0])))
    assert line.endswith(
        f"(meta.sqlite: {opening}) (permission denied: you may not read {directory}/meta.sqlite)"
    )


def test_a_read_torn_by_a_writer_is_not_called_damage(notes, nash_home: Path) -> None:
    """A reader without locks (a full disk) can see a writer's half-done change once space is
    freed: SQLite then says "malformed", and the collection was called damaged, with advice
    to rebuild or forget it. A fresh read that finds it whole says to run it again."""
    import sqlite3

    from nashcli import index
    from nashcli.errors import IndexWriteError

    directory = nash_home / "collections" / "notes"
    torn = sqlite3.DatabaseError("database disk image is malformed")
    error = index._meta_error("notes", directory, torn)
    assert isinstance(error, IndexWriteError)
    assert str(error) == "collection 'notes' changed while it was read; run the command again"
    meta = directory / "meta.sqlite"
    data = bytearray(meta.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a damaged page: what a fresh read finds too
    meta.write_bytes(bytes(data))
    error = index._meta_error("notes", directory, torn)
    assert isinstance(error, index.DamagedCollectionError)


def test_another_users_index_on_a_writable_disk_is_refused_not_read_unlocked(
    notes, nash_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without write access SQLite can only read it with no locks (immutable), which its
    owner's next commit could change under the reader: one line says what is needed."""
    folder, paths = notes
    directory = nash_home / "collections" / "notes"
    _read_only(monkeypatch, directory, disk=False)
    line = one_error_line(run("similar", str(paths[0])))
    assert f"reading it needs write access to {directory}" in line


def test_a_piped_table_keeps_a_long_path_on_one_line(tmp_path: Path, monkeypatch) -> None:
    """Output to a pipe is as wide as it needs: a 1,200-character path was folded at 1,000."""
    import sys

    from nashcli import render

    class Hit:
        def __init__(self, name: str) -> None:
            self.path, self.distance, self.score, self.title = tmp_path / name, 3, 0.5, "t"

    name = "/".join(["d" * 200] * 6) + "/copy.txt"
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    console = render.output_console()
    render.show(console, render.similar_results([Hit(name)], tmp_path, "q", console.width))
    assert any(
        line.split("│")[4].strip() == name for line in sys.stdout.getvalue().splitlines()[4:5]
    )
