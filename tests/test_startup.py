"""``nash --help`` and shell completion must not import the heavy libraries (import hygiene).

Completion runs ``nash`` on every TAB; torch alone takes about two seconds to import. The check
runs in a fresh interpreter (this test process has imported who knows what) and inspects its
``sys.modules`` after each step. Timing is measured by ``benchmarks/startup.py``, not here.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest
import typer

from nashcli.cli import app

HEAVY = ("torch", "sklearn", "scipy", "faiss")

PROBE = r"""
import json, os, sys

WATCHED = {watched!r}
import typer
imported_by_typer = "pydantic" in sys.modules  # (a Typer that imports it on import)
loaded = {{}}

def note(step):
    loaded[step] = sorted(m for m in sys.modules if m.split(".")[0] in WATCHED)

import nashcli.cli
note("import nashcli.cli")
from nashcli.cli import main

def tab(words, cword):
    return {{"_NASH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}}

def run(step, argv, env=None):
    os.environ.update(env or {{}})
    sys.argv = ["nash", *argv]
    try:
        main()
    except SystemExit:
        pass
    for key in env or {{}}:
        del os.environ[key]
    note(step)

# The steps that must not import pydantic first: modules stay imported once they are.
run("nash --help", ["--help"])
for command in {commands!r}:
    run(f"nash {{command}} --help", [command, "--help"])
run("nash <TAB>", [], tab("nash ", 1))
for command in {commands!r}:
    run(f"nash {{command}} --<TAB>", [], tab(f"nash {{command}} --", 2))
run("nash forget <TAB>", [], tab("nash forget ", 2))  # collection names: a folder listing
# A command that parses values (--top's default too): no collection, so one error line.
run("nash similar --text words", ["similar", "--text", "words", "--top", "5"])
print("\nPROBE-RESULT " + json.dumps([imported_by_typer, loaded]))
"""


@functools.cache
def probe() -> tuple[str, bool, dict[str, list[str]]]:
    """Run the probe once: (its stdout, whether importing Typer imported pydantic, the heavy
    modules and pydantic loaded after each step)."""
    commands = sorted(typer.main.get_command(app).commands)
    assert commands, "no commands registered"
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=(*HEAVY, "pydantic"), commands=commands)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("PROBE-RESULT "))
    imported_by_typer, loaded = json.loads(line.removeprefix("PROBE-RESULT "))
    commands = sorted(typer.main.get_command(app).commands)
    assert len(loaded) == 5 + 2 * len(commands)
    # every step really ran: each help page and each completion answer was printed
    for command in commands:
        assert f"nash {command} [OPTIONS]" in result.stdout
    assert "--help" in result.stdout.split("Usage:")[-1]
    return result.stdout, imported_by_typer, loaded


def test_help_and_completion_do_not_import_heavy_libraries() -> None:
    _, _, loaded = probe()
    offenders = {
        step: heavy
        for step, modules in loaded.items()
        if (heavy := [m for m in modules if m.split(".")[0] in HEAVY])
    }
    assert offenders == {}, (
        f"heavy imports at startup (move them into the command body): {offenders}"
    )


def test_help_completion_and_commands_skip_pydantic() -> None:
    """Typer coerces every value it parses (defaults too) through pydantic, 0.07 s of imports,
    unless it is a flag whose value is already a bool. `nash`'s help flags default to False
    rather than None, and its str, int, float and bool parameters are coerced without it, so
    `nash COMMAND --help`, completion and a command itself stay as fast as `nash --help`."""
    stdout, imported_by_typer, loaded = probe()
    if imported_by_typer:
        pytest.skip("this Typer imports pydantic as it is imported")
    commands = list(typer.main.get_command(app).commands)
    assert "\n".join(commands) in stdout  # `nash <TAB>` answered with every command
    assert {step: modules for step, modules in loaded.items() if "pydantic" in modules} == {}


UPDATE_PROBE = r"""
import json, sys
from nashcli.cli import main

sys.argv = ["nash", "index", "--quiet", sys.argv[1]]
try:
    main()
except SystemExit as stop:
    assert not stop.code, stop.code
print("PROBE-RESULT " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def test_an_update_with_nothing_to_encode_imports_no_heavy_library(tmp_path) -> None:
    """Re-indexing a folder where nothing changed is a crawl and a comparison: the model, its
    trainer and scipy (a tenth of a second of the command) stay unloaded."""
    from test_indexing import FAST, make_docs

    from nashcli.indexing import index_folder

    folder = tmp_path / "notes"
    make_docs(folder, per_topic=10)
    index_folder(folder, hasher_options=FAST)
    result = subprocess.run(
        [sys.executable, "-c", UPDATE_PROBE.format(heavy=HEAVY), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("PROBE-RESULT "))
    assert json.loads(line.removeprefix("PROBE-RESULT ")) == []
