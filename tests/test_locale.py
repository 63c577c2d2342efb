"""`nash` under a locale that is not UTF-8 (``LC_ALL=C`` with ``PYTHONUTF8=0``, a Latin-1 locale):
UTF-8 file names are indexed, accented titles print, and saved models read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NASH = Path(sys.executable).parent / "nash"
NOT_UTF8 = {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "", "COLUMNS": "200"}

pytestmark = pytest.mark.skipif(os.name != "posix", reason="Windows and macOS decode as UTF-8")


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, env={**os.environ, **NOT_UTF8}, capture_output=True, timeout=300, check=False
    )


@pytest.mark.skipif(not NASH.is_file(), reason="the nash console script is not installed here")
def test_the_console_script_indexes_and_shows_utf8_names_and_titles(tmp_path: Path) -> None:
    from test_indexing import make_docs

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    odd = folder / "space" / "café notes 文件.txt"
    odd.write_text("Café on the moon\nrocket orbit launch nasa shuttle moon " * 5, encoding="utf-8")
    indexed = run(str(NASH), "index", str(folder))
    assert indexed.returncode == 0, indexed.stderr.decode()
    assert b"not valid UTF-8" not in indexed.stdout + indexed.stderr
    shown = run(str(NASH), "similar", "--text", "café moon rocket", "--top", "30")
    assert shown.returncode == 0 and b"Traceback" not in shown.stderr, shown.stderr.decode()
    assert "Café on the moon" in shown.stdout.decode("utf-8")  # the title, in the table
    found = run(str(NASH), "similar", str(odd), "--json", "--top", "3")
    assert found.returncode == 0, found.stderr.decode()
    assert json.loads(found.stdout)["query"].endswith("café notes 文件.txt")


def test_saved_features_read_back_whatever_the_locale(tmp_path: Path) -> None:
    probe = (
        "import sys; from nashcli.features import TfidfFeatures\n"
        "texts = ['caf\\u00e9 cr\\u00e8me', 'na\\u00efve caf\\u00e9']\n"
        "f = TfidfFeatures(max_features=None).fit(texts)\n"
        "f.save(sys.argv[1]); g = TfidfFeatures.load(sys.argv[1])\n"
        "print(g.vocabulary_ == f.vocabulary_, 'caf\\u00e9' in f.vocabulary_)"
    )
    result = run(sys.executable, "-X", "utf8=0", "-c", probe, str(tmp_path / "features"))
    assert result.stdout.split() == [b"True", b"True"], result.stderr.decode()


@pytest.mark.skipif(not NASH.is_file(), reason="the nash console script is not installed here")
def test_processes_nash_starts_run_in_utf8_mode_too(tmp_path: Path) -> None:
    """A background watcher or a refit is started with ``sys.executable``: the environment, not
    the ``-X utf8`` flag, carries UTF-8 mode to it."""
    probe = tmp_path / "probe"  # a console script that says what a process it starts runs in
    probe.write_text(
        "import subprocess, sys\n"
        "if sys.flags.utf8_mode:  # started again by main(), in UTF-8 mode\n"
        "    flag = 'import sys; print(sys.flags.utf8_mode)'\n"
        "    child = subprocess.run([sys.executable, '-c', flag], capture_output=True, text=True)\n"
        "    print('child', child.stdout.strip())\n"
        "from nashcli.entry import main; main()\n"
    )
    result = run(sys.executable, str(probe), "--version")
    assert result.returncode == 0 and b"child 1" in result.stdout, result.stderr.decode()


@pytest.mark.skipif(not NASH.is_file(), reason="the nash console script is not installed here")
def test_output_in_an_encoding_without_a_titles_letters_replaces_them(tmp_path: Path) -> None:
    """A Latin-1 terminal (here: PYTHONIOENCODING) cannot show a Chinese title: the letters it
    cannot show are replaced, the command does not stop with a traceback."""
    from test_indexing import make_docs

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=4)
    (folder / "space" / "moon.txt").write_text("月球 moon notes\n" + "rocket orbit moon " * 9)
    (folder / "space" / "月.txt").write_text("moon 🚀 notes\n" + "rocket orbit moon " * 8)
    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "COLUMNS": "200"}
    assert subprocess.run([str(NASH), "index", str(folder)], env=env, check=False).returncode == 0
    shown = subprocess.run(
        [str(NASH), "similar", "--text", "moon rocket", "--top", "30"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert shown.returncode == 0 and b"Traceback" not in shown.stderr, shown.stderr.decode()
    assert b"?? moon notes" in shown.stdout
    # Replaced before the table is laid out: every row as wide as the others (a "?" for a
    # wide letter's two columns made its row one shorter); a path gets the escape that
    # $'...' reads back, not a "?" that names no file.
    assert b"| space/\\u6708.txt " in shown.stdout and b"moon ? notes" in shown.stdout
    rows = [line for line in shown.stdout.splitlines() if line.startswith((b"|", b"+"))]
    assert len(rows) > 5 and len({len(row) for row in rows}) == 1, shown.stdout.decode("latin-1")
