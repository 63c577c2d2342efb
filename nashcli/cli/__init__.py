"""The ``nash`` command line. Importing this package registers every command on :data:`app`."""

from __future__ import annotations

# Each module registers its commands on `app` when imported.
from nashcli.cli import collection_cmds, eval_cmd, watch_cmd  # noqa: E402,F401
from nashcli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    _fit_completion_request()
    app()


def _fit_completion_request() -> None:
    """Mend two things a shell's TAB hands Typer's completion, when it is one.

    zsh and fish read one candidate per line, and Typer renders each candidate's help with Rich
    at the terminal's width: a long one was wrapped, and fish offered its other lines as
    candidates (``--methods list shows them.`` after ``nash eval --<TAB>``). They get a width
    no help reaches. bash splits ``--collection=be`` at the ``=``, which Click then took for the
    option's value, and ``be`` for a file: its words are joined again (Click completes the
    value of ``--collection=be``; bash puts the name after the ``=``).
    """
    import os

    request = os.environ.get("_NASH_COMPLETE", "")
    if request.startswith(("complete_zsh", "complete_fish")):
        os.environ["COLUMNS"] = "100000"
    elif request.startswith("complete_bash") and "COMP_WORDS" in os.environ:
        words = os.environ["COMP_WORDS"].split("\n")
        try:
            cword = int(os.environ.get("COMP_CWORD", ""))
        except ValueError:
            return
        if 2 <= cword < len(words) and words[cword - 1] == "=" and words[cword - 2][:2] == "--":
            words[cword - 2 : cword + 1] = ["".join(words[cword - 2 : cword + 1])]
            os.environ["COMP_WORDS"] = "\n".join(words)
            os.environ["COMP_CWORD"] = str(cword - 2)
