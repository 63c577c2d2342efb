"""Mistyped commands and Ctrl-C: one stderr line and a non-zero exit, never Click's usage block."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nashcli.cli import app

runner = CliRunner()


def test_an_options_missing_value_points_at_its_commands_help() -> None:
    for command in ("similar", "watch", "index"):
        option = {"similar": "--text", "watch": "--name", "index": "--bits"}[command]
        result = runner.invoke(
            app, [command, "x", option] if command != "similar" else [command, option]
        )
        assert result.stderr.endswith(f"requires an argument (see 'nash {command} --help')\n")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["similar", "x", "-n", "abc"], "'--top'"),
        (["similar", "x", "-n", "0"], "'-n': Input should be greater than or equal to 1"),
        # (a folder that is not there: were the value taken, the command fails, never runs)
        (["index", "missing", "--bits", "2000"], "Input should be less than or equal to 1024"),
        (["watch", "missing", "--debounce", "inf"], "Input should be a finite number"),
        (["watch", "missing", "--debounce", "x"], "Input should be a valid number"),
        # -n is --top in `nash similar`; watch has no -n, so `-n 5` cannot name a collection "5"
        (["watch", ".", "-n", "5"], "No such option: -n"),
        (["watch", ".", "--batch-size", "0"], "'--batch-size'"),
        (["watch", ".", "--debounce", "-1"], "'--debounce'"),
        (["similar", "--text"], "'--text' requires an argument"),
        (["index"], "Missing argument"),
        (["index", ".", "--bits", "abc"], "'--bits'"),
        (["eval", "reuters", "--seed", "-1"], "'--seed'"),
        (["--bogus"], "No such option: --bogus"),
        (["bogus"], "No such command 'bogus'"),
        # an unset shell variable is no current folder
        (["eval", "reuters", "--save-codes", ""], "'--save-codes': the path is empty ('')"),
        # control characters escaped once, as every line of nash shows them (\n, not \\x0a)
        (["similar", "a", "x\ny\x1b", "b\\c"], "argument(s) (x\\ny\\x1b b\\\\c)"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], says: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nash: error: ") and says in lines[0]
    assert "--help" in lines[0]  # where to read more
    assert "Traceback" not in result.output


def test_ctrl_c_is_one_line_and_status_130(tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nashcli.indexing.index_folder", interrupted)
    result = runner.invoke(app, ["index", str(tmp_path)])
    assert result.exit_code == 130
    assert result.stderr.strip() == "nash: interrupted"


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    from test_indexing import FAST, make_docs

    from nashcli.indexing import index_folder

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    index_folder(folder, hasher_options=FAST)
    return folder


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nash: error: "), result.stderr
    return lines[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_similar_refuses_a_pipe_instead_of_blocking_on_it(indexed: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "query.txt"
    os.mkfifo(fifo)  # nobody writes to it: opening it to read would block forever
    line = _one_error_line(runner.invoke(app, ["similar", str(fifo)]))
    assert "not a regular file" in line


def test_similar_refuses_an_unindexed_file_too_large_to_read(indexed: Path, tmp_path: Path):
    from nashcli.corpus import DEFAULT_MAX_BYTES

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(DEFAULT_MAX_BYTES + 1)
    line = _one_error_line(runner.invoke(app, ["similar", str(big)]))
    assert "larger than" in line  # ... and what to do about it
    assert line.endswith(f"index too): nash index {indexed} --max-size SIZE")


def test_a_changed_indexed_file_is_read_up_to_the_collections_own_limit(
    tmp_path: Path, monkeypatch
) -> None:
    """A file indexed under a raised --max-size, then touched (its entry no longer matches),
    is read as a query up to that limit, not refused by the default one."""
    from test_indexing import FAST, make_docs

    from nashcli import corpus
    from nashcli.indexing import index_folder

    folder = tmp_path / "big"
    make_docs(folder, per_topic=4)
    long = folder / "long.txt"
    long.write_text("orbit rocket launch telescope galaxy planet " * 200)  # 9 KB
    index_folder(folder, hasher_options=FAST, max_bytes=1_000_000)
    monkeypatch.setattr(corpus, "DEFAULT_MAX_BYTES", 5_000)  # below the file, as 10 MB is
    os.utime(long, None)  # touched: the query reads the file again
    result = runner.invoke(app, ["similar", str(long), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["results"]
    piped = runner.invoke(app, ["similar", "-", "--json"], input=long.read_text())
    assert piped.exit_code == 0, piped.stderr  # the same limit for the same text piped
    assert json.loads(piped.stdout)["results"]
    too_long = runner.invoke(app, ["similar", "-"], input="orbit " * 200_000)  # 1.2 MB
    assert _one_error_line(too_long).endswith("stdin: more than 1 MB of query text")


def test_long_piped_text_needs_its_collection_known(indexed: Path, tmp_path: Path, monkeypatch):
    """Its limit is the collection's: with several collections and none chosen, that is what is
    wrong (not "more than 10 MB", which a larger --max-size may allow)."""
    from test_indexing import FAST, make_docs

    from nashcli import corpus
    from nashcli.indexing import index_folder

    make_docs(tmp_path / "other", per_topic=2)
    index_folder(tmp_path / "other", hasher_options=FAST)
    monkeypatch.setattr(corpus, "DEFAULT_MAX_BYTES", 1_000)
    text = "orbit rocket launch " * 100  # 2 KB
    several = runner.invoke(app, ["similar", "-"], input=text)
    assert "several collections" in _one_error_line(several)
    unknown = runner.invoke(app, ["similar", "-", "-c", "nope"], input=text)
    assert "no collection named 'nope'" in _one_error_line(unknown)
    chosen = runner.invoke(app, ["similar", "-", "-c", "other"], input=text)
    assert _one_error_line(chosen).endswith("stdin: more than 1 KB of query text")


def test_watch_argument_errors_come_before_watching(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a note")
    line = _one_error_line(runner.invoke(app, ["watch", str(tmp_path / "a.txt")]))
    assert "is a file" in line
    line = _one_error_line(runner.invoke(app, ["watch", "--stop", str(tmp_path / "a.txt")]))
    assert "is a file; give the watched folder or the collection's name" in line
    line = _one_error_line(runner.invoke(app, ["watch", "--stop", "--detach", str(tmp_path)]))
    assert "--stop stops a watcher; --detach starts one" in line
    line = _one_error_line(runner.invoke(app, ["watch", str(tmp_path), "--name", "../x"]))
    assert "invalid collection name" in line
    # A name's backslash and newline are shown once escaped, as file names are (not repr'd
    # and then escaped again: 'a\\\\b').
    line = _one_error_line(runner.invoke(app, ["watch", str(tmp_path), "--name", "a\\b\n"]))
    assert "invalid collection name 'a\\\\b\\n'" in line
    result = runner.invoke(app, ["watch", str(tmp_path), "--bits", "0"])
    assert "'--bits'" in _one_error_line(result)
    assert "watching" not in result.output  # nothing started


def test_similar_reads_a_piped_query_from_dash(indexed: Path) -> None:
    result = runner.invoke(app, ["similar", "-", "--json"], input="rocket orbit launch nasa moon\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["query"] == "-"  # (not the text back: it may be megabytes)
    hits = json.loads(result.stdout)["results"]
    assert hits and Path(hits[0]["path"]).parent.name == "space"
    empty = runner.invoke(app, ["similar", "-"], input="  \n")
    assert "no text" in _one_error_line(empty)


def test_index_again_without_name_updates_the_folders_collection(tmp_path: Path) -> None:
    from test_indexing import make_docs

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    first = runner.invoke(app, ["index", str(folder), "--name", "work", "--bits", "8", "-q"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["index", str(folder), "-q"])
    assert again.exit_code == 0, again.output
    from nashcli.index import list_collections

    assert [c.name for c in list_collections()] == ["work"]  # not a second "notes"


def test_index_bits_and_an_empty_collection_name_are_checked() -> None:
    assert "'--bits'" in _one_error_line(runner.invoke(app, ["index", ".", "--bits", "0"]))
    line = _one_error_line(runner.invoke(app, ["similar", "--text", "x", "-c", ""]))
    assert "collection" in line


def test_a_file_where_the_data_folder_should_be(tmp_path: Path, monkeypatch) -> None:
    from test_indexing import make_docs

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=2)
    home = tmp_path / "home"
    home.write_text("not a folder")
    monkeypatch.setenv("NASH_HOME", str(home))
    line = _one_error_line(runner.invoke(app, ["index", str(folder)]))
    assert f"{home} is a file" in line
    for argv in (["status"], ["similar", "--text", "rocket"]):  # not "no collections yet"
        assert f"{home} is a file" in _one_error_line(runner.invoke(app, argv))
    # A relative NASH_HOME is taken from the current folder, and said as the absolute path it
    # is (a watcher's "log: home/log/..." led nowhere from another folder).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASH_HOME", "home")
    line = _one_error_line(runner.invoke(app, ["index", str(folder)]))
    assert f" {home} is a file" in line


def test_similar_names_the_file_problem_before_the_collection_choice(tmp_path: Path) -> None:
    from test_indexing import make_docs

    from nashcli.indexing import index_folder

    for name in ("one", "two"):  # several collections: FILE alone would not say which
        make_docs(tmp_path / name, per_topic=2)
        index_folder(tmp_path / name, hasher_options={"max_epochs": 1})
    line = _one_error_line(runner.invoke(app, ["similar", str(tmp_path / "nope.txt")]))
    assert "no such file" in line
    line = _one_error_line(runner.invoke(app, ["similar", "--text", "x", "--rank", "foo"]))
    assert "unknown ranking 'foo'" in line


def test_similar_refuses_binary_stdin_and_shows_no_control_characters(indexed: Path) -> None:
    binary = runner.invoke(app, ["similar", "-"], input=b"\x00\x01\x02\xff" * 500)
    assert "binary" in _one_error_line(binary)
    shown = runner.invoke(app, ["similar", "--text", "rocket \x1b[31mred\x1b[0m orbit"])
    assert shown.exit_code == 0, shown.output
    assert "\x1b[31m" not in shown.stdout


def test_a_moved_folder_is_reindexed_into_its_collection_by_name(tmp_path: Path) -> None:
    from test_indexing import make_docs

    from nashcli.index import Collection

    old = tmp_path / "notes"
    make_docs(old, per_topic=3)
    first = runner.invoke(app, ["index", str(old), "--bits", "16", "-q"])  # "notes"
    assert first.exit_code == 0, first.output
    new = tmp_path / "moved" / "notes"
    new.parent.mkdir()
    old.rename(new)
    # Without --name a folder never takes over a collection whose folder is missing (a drive
    # unplugged, another folder of the same name)...
    line = _one_error_line(runner.invoke(app, ["index", str(new)]))
    assert "not there now" in line and "--name" in line
    # ...nor with it, when the folder holds none of the collection's documents or is empty.
    stranger = tmp_path / "stranger"
    make_docs(stranger, per_topic=1, seed=5)
    for doc in stranger.rglob("*.txt"):
        doc.rename(doc.with_name("x-" + doc.name))
    line = _one_error_line(runner.invoke(app, ["index", str(stranger), "--name", "notes"]))
    assert "holds none of the 9 documents of collection 'notes'" in line
    (stranger / "space" / "x-space-0.txt").rename(stranger / "space" / "space-0.txt")
    line = _one_error_line(runner.invoke(app, ["index", str(stranger), "--name", "notes"]))
    assert "holds only 1 of the 9 documents of collection 'notes'" in line  # one name is not enough
    again = runner.invoke(app, ["index", str(new), "--name", "notes"])
    assert again.exit_code == 0, again.output
    assert "9 unchanged" in again.stdout and "trained" not in again.stdout, again.stdout
    notes = Collection.open("notes")
    assert notes.root == new.resolve() and notes.bits == 16
    with notes.snapshot() as snap:
        assert all(d.path.startswith(str(new.resolve())) for d in snap.live_docs())
        assert snap.documents == 9
    # A folder that still exists is never taken over.
    other = tmp_path / "other"
    make_docs(other, per_topic=1)
    line = _one_error_line(runner.invoke(app, ["index", str(other), "--name", "notes"]))
    assert "indexes" in line


def test_files_in_the_way_of_a_watchers_folders(tmp_path: Path, nash_home: Path) -> None:
    from test_indexing import make_docs

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=2)
    (nash_home / "log").write_text("a file, not a folder")
    line = _one_error_line(runner.invoke(app, ["watch", str(folder), "-d"]))
    assert f"{nash_home / 'log'} is a file" in line


def test_ctrl_c_before_any_command_runs_is_one_line(monkeypatch, capsys) -> None:
    import nashcli.cli
    from nashcli import entry

    def interrupted() -> None:  # as if Ctrl-C came while the CLI was still being imported
        raise KeyboardInterrupt

    monkeypatch.setattr(nashcli.cli, "main", interrupted)
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "nash: interrupted\n"


@pytest.mark.parametrize("argv", [["index", ""], ["similar", ""], ["watch", ""]])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(
    argv: list[str], tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "a.txt").write_text("a note about rockets and orbits")
    monkeypatch.chdir(tmp_path)  # `nash index "$DIR"` with DIR unset must not index this
    assert "the path is empty" in _one_error_line(runner.invoke(app, argv))
    assert json.loads(runner.invoke(app, ["status", "--json"]).stdout) == {"collections": []}


@pytest.mark.skipif(os.name == "nt", reason="symbolic link loops")
@pytest.mark.parametrize("command", ["index", "similar", "watch"])
def test_a_path_through_a_link_loop_is_one_line(command: str, tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    line = _one_error_line(runner.invoke(app, [command, str(tmp_path / "loop" / "a.txt")]))
    assert "too many levels of symbolic links" in line


@pytest.mark.parametrize("command", ["index", "similar", "watch"])
def test_a_path_under_a_folder_without_permission_is_one_line(
    command: str, tmp_path: Path, monkeypatch
) -> None:
    """Python 3.11's Path.exists() raises on EACCES; the check says so in one line (the stat
    is made to fail as it does for a user without x on the folder: root would get through)."""
    locked = tmp_path / "locked"
    real_stat = Path.stat

    def stat(self, *args, **kwargs):
        if self == locked / "a.txt" or locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    line = _one_error_line(runner.invoke(app, [command, str(locked / "a.txt")]))
    assert line == f"nash: error: {locked / 'a.txt'}: permission denied"


def test_bare_nash_shows_the_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: nash") and "Commands:" in result.stdout
    assert "error" not in result.output


def test_a_query_without_a_known_word_is_refused(indexed: Path, tmp_path: Path) -> None:
    line = _one_error_line(runner.invoke(app, ["similar", "--text", "zzzqqq xxyyzz"]))
    assert "none of the query's words is in the collection's vocabulary" in line
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("qwxz vbnmk plokij")
    assert "vocabulary" in _one_error_line(runner.invoke(app, ["similar", str(foreign)]))
    # An indexed file without such a word, answered from its stored row, is refused the same
    # way (its neighbours were the other wordless files, at distance 0, then noise).
    from nashcli.indexing import index_folder

    (indexed / "punctuation.txt").write_text("!!! ??? ... ,,, ;;; 123 456\n")
    index_folder(indexed)
    line = _one_error_line(runner.invoke(app, ["similar", str(indexed / "punctuation.txt")]))
    assert "none of the query's words is in the collection's vocabulary" in line


def test_similar_checks_the_query_and_options_before_the_collection(
    indexed: Path, tmp_path: Path
) -> None:
    from test_indexing import make_docs

    from nashcli.indexing import index_folder

    make_docs(tmp_path / "other", per_topic=1)
    index_folder(tmp_path / "other", hasher_options={"max_epochs": 1})  # now two collections
    assert _one_error_line(runner.invoke(app, ["similar", "--text", "  "])).endswith(
        "the query has no text"
    )
    for rank in ("cosine", "fused"):  # fused too: given, it is a choice, not the default
        line = _one_error_line(
            runner.invoke(app, ["similar", "--text", "orbit", "--no-rerank", "--rank", rank])
        )
        assert "--no-rerank is --rank hamming" in line


def test_similar_says_when_there_is_nothing_else_to_show(tmp_path: Path) -> None:
    from test_indexing import make_docs

    from nashcli.indexing import index_folder

    paths = make_docs(tmp_path / "pair", per_topic=1)
    index_folder(tmp_path / "pair", hasher_options={"max_epochs": 1})
    for path in paths[1:]:
        path.unlink()
    index_folder(tmp_path / "pair", hasher_options={"max_epochs": 1})
    result = runner.invoke(app, ["similar", str(paths[0])])
    assert result.exit_code == 0, result.output
    assert "holds no other document" in result.stdout
    paths[0].unlink()
    index_folder(tmp_path / "pair", hasher_options={"max_epochs": 1})
    result = runner.invoke(app, ["similar", "--text", "rocket orbit"])  # no file: no "other"
    assert result.exit_code == 0, result.output
    assert "holds no document" in result.stdout
    outside = tmp_path / "query.txt"
    outside.write_text("rocket orbit")
    result = runner.invoke(app, ["similar", str(outside), "-c", "pair"])  # none: no "other"
    assert result.exit_code == 0, result.output
    assert "holds no document" in result.stdout


def test_a_score_that_rounds_to_zero_has_no_sign() -> None:
    from nashcli.render import score_text

    assert [score_text(s) for s in (-0.0, -0.0004, 0.0, 0.5, -0.25)] == [
        "0.000",
        "0.000",
        "0.000",
        "0.500",
        "-0.250",
    ]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["index", "~no-such-user-xyz/a.txt"], {}),
        (["similar", "~no-such-user-xyz/a.txt"], {}),
        (["watch", "~no-such-user-xyz/a.txt"], {}),
        (["watch", "--stop", "~no-such-user-xyz/a"], {}),
        (["eval", "~no-such-user-xyz/a.jsonl"], {}),
        (["eval", "reuters", "--data-dir", "~no-such-user-xyz"], {}),
        (["eval", "reuters"], {"NASH_DATA": "~no-such-user-xyz/d"}),
        (["status"], {"NASH_HOME": "~no-such-user-xyz/h"}),
    ],
)
def test_a_home_folder_of_no_user_is_one_line(args: list[str], env: dict[str, str]) -> None:
    """`~name` of no such user (`Path.expanduser`'s RuntimeError was a traceback from watch
    --stop, eval and the variables)."""
    line = _one_error_line(runner.invoke(app, args, env=env))
    assert "cannot find the home folder that ~ stands for" in line
    assert all(f"{variable}=" in line for variable in env)


def test_an_empty_dataset_is_no_current_folder() -> None:
    result = runner.invoke(app, ["eval", "", "--bits", "8"])
    assert result.exit_code == 2
    assert (
        result.stderr
        == "nash: error: the dataset is empty (''): give one of reuters, 20ng, tmc, reuters-vdsh, "
        "20ng-vdsh, or a path\n"
    )


def test_a_blank_name_is_a_path_like_any_other(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # " " is a valid folder name: only "" is refused
    line = _one_error_line(runner.invoke(app, ["index", " "]))
    assert "no such folder" in line and "empty" not in line


def test_a_reader_that_goes_away_is_not_an_error(monkeypatch) -> None:
    """`nash status | head`: no 'Broken pipe' error line, no traceback."""
    from nashcli import index

    def reader_gone():
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(index, "survey_collections", reader_gone)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and result.stderr == ""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["status"], ["similar", "--help"]])
def test_a_full_output_is_one_line_also_for_nash_itself(argv: list[str], tmp_path: Path) -> None:
    """`nash --help > /dev/full` as `nash status > /dev/full`: one line, exit 2, no traceback."""
    import subprocess
    import sys

    code = "import sys; from nashcli.entry import main; sys.argv[0] = 'nash'; main()"
    env = {**os.environ, "NASH_HOME": str(tmp_path)}
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], stdout=full, stderr=subprocess.PIPE, env=env
        )
    assert done.returncode == 2
    assert done.stderr.decode() == "nash: error: No space left on device\n"


def test_closed_standard_streams_are_an_error_line_not_lost_output(tmp_path: Path) -> None:
    """`nash ... >&-`: the output cannot be written, which is one line and exit 2 (it was
    dropped with exit 0), and the index opened meanwhile does not take descriptor 1; `nash
    similar - <&-` has no query text (it stopped with a traceback)."""
    import subprocess
    import sys

    code = "import sys; from nashcli.entry import main; sys.argv[0] = 'nash'; main()"
    env = {**os.environ, "NASH_HOME": str(tmp_path / "home")}
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, words in enumerate(["cats purr softly", "dogs bark loudly", "cats and dogs play"]):
        (docs / f"{i}.txt").write_text(words * 5)

    def nash(*argv: str, closed: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            env=env,
            text=True,
            preexec_fn=lambda: os.close(closed),  # noqa: PLW1509 - what `>&-` does
        )

    for argv in (["--version"], ["index", str(docs)]):
        done = nash(*argv, closed=1)
        assert (done.returncode, done.stderr) == (2, "nash: error: standard output is closed\n")
    done = nash("similar", "-", "--collection", "docs", closed=0)
    assert (done.returncode, done.stderr) == (2, "nash: error: the query has no text\n")
    result = runner.invoke(app, ["similar", str(docs / "0.txt")], env=env)
    assert result.exit_code == 0 and "2.txt" in result.stdout  # the index is whole
    # The /dev/null held there is handed on: a child nash starts (a refit) has it too.
    child = "import os; os.fstat(2)"
    handed = (
        "import subprocess, sys; from nashcli.entry import _hold_closed_streams; "
        f"_hold_closed_streams(); sys.exit(subprocess.run([sys.executable, '-c', {child!r}])"
        ".returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", handed],
        env=env,
        preexec_fn=lambda: os.close(2),  # noqa: PLW1509 - what `2>&-` does
    )
    assert done.returncode == 0


@pytest.mark.parametrize("kind", [int, float])
@pytest.mark.parametrize(
    "text",
    [
        "5",
        " 7 ",
        "+3",
        "-0",
        "1_0",
        "5.0",
        "5.00",
        "5.",
        ".5",
        "5.5",
        "1e3",
        "abc",
        "0x10",
        "",
        "1__0",
        "١٢",
        "٣.5",
    ],
)
def test_values_are_parsed_as_typers_pydantic_parses_them(kind: type, text: str) -> None:
    """nash parses option values itself (pydantic costs 0.07 s of imports): the same values,
    and the same refusals, as the pydantic adapter Typer would have used."""
    pydantic = pytest.importorskip("pydantic")
    from nashcli.cli.app import _parse

    try:
        expected = pydantic.TypeAdapter(kind).validate_python(text)
    except pydantic.ValidationError:
        with pytest.raises(ValueError):
            _parse(kind, text)
    else:
        assert _parse(kind, text) == expected and type(_parse(kind, text)) is kind


def test_non_finite_numbers_are_refused_where_pydantic_took_them() -> None:
    from nashcli.cli.app import _parse

    for text in ("inf", "-inf", "nan"):
        with pytest.raises(ValueError, match="finite number"):
            _parse(float, text)


def test_a_deleted_working_folder_is_one_line(tmp_path, monkeypatch) -> None:
    """Running in a folder that was deleted meanwhile: torch's import died in it with a
    'oneMKL FATAL ERROR' after a collection had been created."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("rocket orbit moon")
    result = runner.invoke(app, ["index", str(folder)])
    assert result.exit_code == 2
    assert _one_error_line(result) == (
        "nash: error: the current folder no longer exists (deleted or moved away): "
        "cd to one that does"
    )
    monkeypatch.chdir(tmp_path)
    assert "no collections yet" in runner.invoke(app, ["status"]).output
