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


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completion_end_to_end() -> None:
    """Source the committed script in a real bash and press TAB after ``nash ``."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "nash").exists():
        pytest.skip("the nash console script is not installed beside this Python")
    probe = (
        f"source {REPO / 'completions' / 'nash.bash'}; "
        'COMP_WORDS=(nash ""); COMP_CWORD=1; _nash_completion nash; '
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert set(result.stdout.split()) == set(visible_commands())
