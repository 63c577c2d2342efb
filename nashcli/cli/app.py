"""The Typer application object and its error handling.

Commands live in sibling modules (one per area) and only parse arguments, call into the library
modules and render. Heavy libraries (torch, scikit-learn) are imported inside command bodies, so
``nash --help`` and shell completion stay instant.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys

import typer
from typer.core import TyperGroup

from nashcli.errors import NashError

try:  # Typer 0.2x carries its own copy of Click; older releases use Click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import UsageError

from nashcli.entry import INTERRUPTED


def _usage_error(error: UsageError) -> None:
    """A bad option or argument as one stderr line (Click's own form takes four).

    A bare ``nash`` (Click ≥ 8.2 raises its help as an error) shows the help, as ``nash --help``.
    """
    if type(error).__name__ == "NoArgsIsHelpError" and error.ctx is not None:
        typer.echo(error.ctx.get_help())
        raise SystemExit(0)
    where = error.ctx.command_path if error.ctx is not None else "nash"
    message = error.format_message().rstrip(".")
    typer.echo(f"nash: error: {message} (see '{where} --help')", err=True)
    raise SystemExit(error.exit_code)


#: Exit status when the reader of our output went away (`nash status | head`): quietly 1, as
#: Rich's console does for the tables it prints.
BROKEN_PIPE = 1


def _system_error(error: OSError | sqlite3.Error) -> str:
    """One line for an error of the system rather than of nash: what failed, on which file."""
    if isinstance(error, sqlite3.Error):
        return f"the index's database: {error}"
    reason = error.strerror or str(error) or type(error).__name__
    return f"{error.filename}: {reason}" if error.filename else reason


def _not_given_is_false(param) -> None:
    """Default a flag of ``nash`` itself to False where Typer leaves None (--help,
    --install-completion, --show-completion): its parser coerces None through pydantic, 0.1 s of
    imports on every TAB and every `nash COMMAND --help`, and leaves a bool alone. Both mean "not
    given"."""
    if getattr(param, "is_flag", False) and param.default is None:
        param.default = False


class _NashGroup(TyperGroup):
    """Turns a :class:`NashError` or a usage error from any command into one stderr line and a
    non-zero exit, and Ctrl-C into one line and exit status 130 (no traceback, no 'Aborted!')."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: D102
        for param in self.params:
            _not_given_is_false(param)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as error:  # e.g. an unknown option before the command
            _usage_error(error)

    def get_help_option(self, ctx: typer.Context):  # noqa: D102
        option = super().get_help_option(ctx)
        if option is not None:
            _not_given_is_false(option)
        return option

    def invoke(self, ctx: typer.Context):  # noqa: D102
        try:
            return super().invoke(ctx)
        except NashError as error:
            typer.echo(f"nash: error: {error}", err=True)
            ctx.exit(error.exit_code)
        except UsageError as error:
            _usage_error(error)
        except BrokenPipeError:  # `nash status | head`: the reader left, nothing to say
            with contextlib.suppress(OSError, ValueError, AttributeError):
                out = sys.stdout.fileno()
                os.dup2(os.open(os.devnull, os.O_WRONLY), out)  # no error at the exit's flush
            ctx.exit(BROKEN_PIPE)
        except (OSError, sqlite3.Error) as error:  # a full or read-only disk, a lost mount...
            typer.echo(f"nash: error: {_system_error(error)}", err=True)
            ctx.exit(NashError.exit_code)
        except KeyboardInterrupt:
            typer.echo("nash: interrupted", err=True)
            ctx.exit(INTERRUPTED)


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
