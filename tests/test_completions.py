"""Shell completion: the committed scripts are current, and TAB offers every command and option."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nashcli.cli import app

REPO = Path(__file__).resolve().parents[1]
SHELLS = ("bash", "zsh", "fish")


def visible_commands() -> dict[str, typer.core.TyperCommand]:
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items() if not cmd.hidden}


def long_options(command) -> set[str]:
    return {
        opt
        for param in command.params
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
        for opt in param.opts
        if opt.startswith("--")
    }


def complete_bash(words: list[str]) -> list[str]:
    """What ``nash`` answers a bash TAB after ``words`` (the last one being completed)."""
    env = {
        "_NASH_COMPLETE": "complete_bash",
        "COMP_WORDS": " ".join(["nash", *words]),
        "COMP_CWORD": str(len(words)),
    }
    result = CliRunner().invoke(app, [], env=env)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_committed_completion_scripts_are_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_completions.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for shell in SHELLS:
        fresh = (tmp_path / f"nash.{shell}").read_text(encoding="utf-8")
        committed = REPO / "completions" / f"nash.{shell}"
        assert committed.is_file(), f"{committed} missing: run python scripts/gen_completions.py"
        assert committed.read_text(encoding="utf-8") == fresh, (
            f"{committed} is stale: run python scripts/gen_completions.py"
        )
    assert (tmp_path / "nash.zsh").read_text().startswith("#compdef nash\n")


def test_every_command_completes() -> None:
    commands = visible_commands()
    assert {"index", "similar"} <= set(commands)
    assert set(complete_bash([""])) == set(commands)
    for name in commands:
        assert name in complete_bash([name[:2]])


def test_every_option_of_every_command_completes() -> None:
    for name, command in visible_commands().items():
        offered = set(complete_bash([name, "--"]))
        assert long_options(command) <= offered, name
        assert "--help" in offered


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_scripts_call_nash_back_for_candidates(shell: str) -> None:
    script = (REPO / "completions" / f"nash.{shell}").read_text(encoding="utf-8")
    assert f"_NASH_COMPLETE=complete_{shell}" in script
    assert "nash" in script


def tab_in_bash(words: str, cword: int, **env: str) -> list[str]:
    """What a real bash, with the committed script sourced, offers for ``COMP_WORDS=(words)``
    and ``COMP_CWORD=cword`` (``env`` added to the environment)."""
    if shutil.which("bash") is None:
        pytest.skip("bash not installed")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "nash").exists():
        pytest.skip("the nash console script is not installed beside this Python")
    probe = (
        f"source {REPO / 'completions' / 'nash.bash'}; "
        f"COMP_WORDS=({words}); COMP_CWORD={cword}; _nash_completion nash; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


def test_bash_completion_end_to_end() -> None:
    """Source the committed script in a real bash and press TAB after ``nash ``."""
    assert set(tab_in_bash('nash ""', 1)) == set(visible_commands())


@pytest.mark.parametrize("command", ["eval", "watch", "similar", "index"])
def test_fish_gets_one_candidate_a_line_whatever_the_width(command: str) -> None:
    """fish reads one candidate per line; help wrapped at the terminal's width gave it lines
    of help as candidates (``--methods list shows them.`` after ``nash eval --``)."""
    from nashcli.cli import main

    env = {
        **os.environ,
        "COLUMNS": "40",
        "_NASH_COMPLETE": "complete_fish",
        "_TYPER_COMPLETE_FISH_ACTION": "get-args",
        "_TYPER_COMPLETE_ARGS": f"nash {command} --",
    }
    code = f"import sys; sys.argv = ['nash']; from {main.__module__} import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    lines = result.stdout.splitlines()
    cmd = visible_commands()[command]
    negations = {o for p in cmd.params for o in getattr(p, "secondary_opts", ())}  # --no-rerank
    assert {line.split("\t")[0] for line in lines} == long_options(cmd) | negations | {"--help"}
    assert all("\t" in line for line in lines)


def test_bash_completes_a_collection_after_an_equals_sign(tmp_path: Path) -> None:
    """bash splits ``--collection=be`` at the ``=``: Click took the ``=`` for the option's value
    and ``be`` for the query file, and bash fell back to file names."""
    for name in ("alpha", "beta-docs"):
        (tmp_path / "collections" / name).mkdir(parents=True)
    words = "nash similar --collection = be"
    assert tab_in_bash(words, 4, NASH_HOME=str(tmp_path)) == ["beta-docs"]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (["index", "--device", ""], ["auto", "cpu", "cuda"]),
        (["watch", "--device", "c"], ["cpu", "cuda"]),
        (["similar", "--rank", ""], ["fused", "cosine", "hamming"]),
        (["eval", "--split", "r"], ["random"]),
    ],
)
def test_an_option_of_fixed_values_completes_them(words: list[str], offered: list[str]) -> None:
    """They offered file names."""
    assert complete_bash(words) == offered
