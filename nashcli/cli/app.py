"""The Typer application object and its error handling.

Commands live in sibling modules (one per area) and only parse arguments, call into the library
modules and render. Heavy libraries (torch, scikit-learn) are imported inside command bodies, so
``nash --help`` and shell completion stay instant.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from nashcli.errors import NashError


class _NashGroup(TyperGroup):
    """Turns a :class:`NashError` from any command into one stderr line and its exit code."""

    def invoke(self, ctx: typer.Context):  # noqa: D102
        try:
            return super().invoke(ctx)
        except NashError as error:
            typer.echo(f"nash: error: {error}", err=True)
            ctx.exit(error.exit_code)


app = typer.Typer(
    cls=_NashGroup,
    name="nash",
    help="Find similar documents in your own files by semantic hashing (NASH binary codes).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: Rich-rendered help costs ~55 ms of imports on every
    # `nash --help` and TAB (benchmarks/startup.py), and usage errors stay one line, not a panel.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from nashcli import __version__

        typer.echo(f"nash {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Find similar documents in your own files by semantic hashing (NASH binary codes)."""
