"""The Typer application object and its error handling.

Commands live in sibling modules (one per area) and only parse arguments, call into the library
modules and render. Heavy libraries (torch, scikit-learn) are imported inside command bodies, so
``nash --help`` and shell completion stay instant.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import typer
from typer.core import TyperGroup

from nashcli.errors import NashError
from nashcli.names import visible

try:  # Typer 0.2x carries its own copy of Click; older releases use Click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import UsageError

from nashcli.entry import INTERRUPTED

#: Click's escape of a control character in an argument it names (``\x0a``).
_CLICK_ESCAPE = re.compile(r"\\x([01][0-9a-f]|7f|[89][0-9a-f])")


def _usage_error(error: UsageError, command_path: str = "nash") -> None:
    """A bad option or argument as one stderr line (Click's own form takes four).

    A bare ``nash`` (Click ≥ 8.2 raises its help as an error) shows the help, as ``nash --help``.
    """
    if type(error).__name__ == "NoArgsIsHelpError" and error.ctx is not None:
        typer.echo(error.ctx.get_help())
        raise SystemExit(0)
    where = error.ctx.command_path if error.ctx is not None else command_path
    # Click writes a control character of an argument as \xNN itself; nash's error line
    # escapes the raw character (as \n, like every other line), not Click's backslash again.
    message = _CLICK_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), error.format_message())
    _error_line(f"{message.rstrip('.')} (see '{where} --help')")
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


def _error_line(message: str) -> None:
    """``nash: error: MESSAGE`` on stderr, one line whatever file names it holds (a newline or
    a terminal escape in one is shown as an escape)."""
    typer.echo(f"nash: error: {visible(message)}", err=True)


def one_of(*values: str) -> Callable[[str], list[str]]:
    """Shell completion for an option that takes one of ``values`` (``--device <TAB>``)."""

    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


#: The values of ``--device``, and their completion.
DEVICE_NAMES = ("auto", "cpu", "cuda")
DEVICES = one_of(*DEVICE_NAMES)


def check_device(device: str) -> None:
    """One line (:class:`NashError`) for a ``--device`` that is none of :data:`DEVICE_NAMES`,
    or ``cuda`` where torch sees no GPU: said at once, not once something needs training (or
    in a watcher's log at the first change)."""
    if device not in DEVICE_NAMES:
        raise NashError(f"--device must be auto, cpu or cuda, not {device!r}")
    if device == "cuda":
        from nashcli.methods import resolve_device

        resolve_device(device)


def _output_failed(error: OSError | sqlite3.Error) -> NoReturn:
    """Exit on a system error: quietly with :data:`BROKEN_PIPE` when the reader of the output
    went away (`nash status | head`), else with its one line on stderr and exit status 2."""
    if isinstance(error, BrokenPipeError):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            out = sys.stdout.fileno()
            os.dup2(os.open(os.devnull, os.O_WRONLY), out)  # no error at the exit's flush
        raise SystemExit(BROKEN_PIPE)
    _error_line(_system_error(error))
    raise SystemExit(NashError.exit_code)


def _not_given_is_false(param) -> None:
    """Default a flag of ``nash`` itself to False where Typer leaves None (--help,
    --install-completion, --show-completion): its parser coerces None through pydantic, 0.1 s of
    imports on every TAB and every `nash COMMAND --help`, and leaves a bool alone. Both mean "not
    given"."""
    if getattr(param, "is_flag", False) and param.default is None:
        param.default = False


try:  # Typer 0.2x coerces values through pydantic adapters built per parameter (RuntimeParam)
    from typer._coercion import RuntimeParam
except ImportError:  # pragma: no cover - an older Typer coerces with Click's types
    RuntimeParam = None

_KIND_NAMES = {str: "string", bool: "boolean"}
_INVALID = {
    int: "Input should be a valid integer, unable to parse string as an integer",
    float: "Input should be a valid number, unable to parse string as a number",
}
#: Typer's path options at their defaults: a path Typer only turns into a ``Path`` (after
#: checking that it can be read where it exists).
_BARE_PATH = {
    "exists": False,
    "file_okay": True,
    "dir_okay": True,
    "writable": False,
    "readable": True,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
}


def _parse(kind: type, value):
    """``value`` (a command-line string or a default) as ``kind``, as pydantic's lax mode
    parses it; ValueError says why not. Non-finite floats are refused (``--debounce inf``
    would never flush)."""
    if kind in (str, bool):  # a flag's value is a bool already
        if not isinstance(value, kind):
            raise ValueError(f"Input should be a valid {_KIND_NAMES[kind]}")
        return value
    if kind is Path:
        if not isinstance(value, (str, Path)):
            raise ValueError("Input is not a valid path")
        if value == "":  # (`--save-codes "$DIR"` with DIR unset: not the current folder)
            raise ValueError("the path is empty ('')")
        path = Path(value)
        if path.exists() and not os.access(path, os.R_OK):
            raise ValueError(f"Path {str(value)!r} is not readable.")
        return path
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(_INVALID[kind])
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii():  # float() and int() read other scripts' digits; pydantic not
            raise ValueError(_INVALID[kind])
        if kind is int:  # "1_000" and "5.0" too, not "1e3"
            whole = re.fullmatch(r"([+-]?\d+(?:_\d+)*)(?:\.0+)?", text)
            if whole is None:
                raise ValueError(_INVALID[int])
            return int(whole.group(1))
        try:
            value = float(text)  # "1e3", ".5"
        except ValueError:
            raise ValueError(_INVALID[kind]) from None
    if not math.isfinite(value):
        raise ValueError("Input should be a finite number")
    if kind is int:
        if not float(value).is_integer():
            raise ValueError(_INVALID[int])
        return int(value)
    return float(value)


def _bound(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class _PlainValue(RuntimeParam):
        """Typer's coercion of a str, int, float, bool or plain path parameter (with its min and
        max), without the pydantic TypeAdapter Typer builds for it: importing pydantic costs
        about 0.07 s of every command that parses a value (a default counts), a fifth of a
        whole `nash similar`. The same values and messages as pydantic's (:func:`_parse`)."""

        def _coerce_value(self, value, param, ctx):
            try:
                value = _parse(self.annotation, value)
            except ValueError as error:
                raise typer.BadParameter(str(error), ctx=ctx, param=param) from None
            low, high = self.parameter_info.min, self.parameter_info.max
            if low is not None and value < low:
                message = f"Input should be greater than or equal to {_bound(low)}"
                raise typer.BadParameter(message, ctx=ctx, param=param)
            if high is not None and value > high:
                message = f"Input should be less than or equal to {_bound(high)}"
                raise typer.BadParameter(message, ctx=ctx, param=param)
            return value


def _coerce_without_pydantic(param) -> None:
    """Give a str, int, float, bool or plain path parameter :class:`_PlainValue` before Typer
    builds its pydantic adapter (only where Typer coerces that way; others are left alone)."""
    descriptor = getattr(param, "type_descriptor", None)
    if RuntimeParam is None or descriptor is None:
        return
    if getattr(param, "_runtime_param", False) is not None:
        return
    info, kind = descriptor.parameter_info, descriptor.annotation
    plain = kind in (str, int, float, bool, Path) and param.nargs == 1 and not param.multiple
    plain = plain and not descriptor.is_choice and getattr(info, "parser", None) is None
    plain = plain and not getattr(info, "clamp", False)
    if kind is Path:  # a bare path: no checks asked of Typer (exists=..., resolve_path=...)
        plain = plain and all(getattr(info, k, v) == v for k, v in _BARE_PATH.items())
    if plain:
        with contextlib.suppress(TypeError):  # a RuntimeParam of another shape: Typer's own
            param._runtime_param = _PlainValue(parameter_info=info, annotation=kind)


def _check_working_folder() -> None:
    """Refuse to run from a deleted folder: relative paths mean nothing there, and importing
    torch dies in it ("Intel oneMKL FATAL ERROR") after a first index has begun."""
    try:
        os.getcwd()
    except FileNotFoundError:
        raise NashError(
            "the current folder no longer exists (deleted or moved away): cd to one that does"
        ) from None


def _drop_unusable_columns() -> None:
    """Unset a ``$COLUMNS`` that is no width (``0``, ``abc``): Rich prints nothing at all in
    ``0`` (results, notes and progress alike), and in a pipe nash takes its own width where
    ``$COLUMNS`` says nothing."""
    columns = os.environ.get("COLUMNS")
    if columns is not None and not (columns.isdigit() and int(columns) > 0):
        del os.environ["COLUMNS"]


def _command_path(ctx: typer.Context) -> str:
    """``nash COMMAND`` for the command ``ctx`` (the group's) was about to run, else ``nash``."""
    command = ctx.invoked_subcommand  # (set before the command parses its arguments)
    return f"{ctx.command_path} {command}" if command else ctx.command_path


class _NashGroup(TyperGroup):
    """Turns a :class:`NashError` or a usage error from any command into one stderr line and a
    non-zero exit, and Ctrl-C into one line and exit status 130 (no traceback, no 'Aborted!'),
    as it does SIGTERM and SIGHUP (143, 129) where a command stops on them as on Ctrl-C."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: D102
        for param in self.params:
            _not_given_is_false(param)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as error:  # e.g. an unknown option before the command
            _usage_error(error)
        except OSError as error:  # `nash --help > /dev/full`, `nash --version | true`
            _output_failed(error)

    def get_command(self, ctx: typer.Context, cmd_name: str):  # noqa: D102
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            help_option = command.get_help_option(ctx)  # made once, then cached by the command
            if help_option is not None:
                _not_given_is_false(help_option)
            for param in command.params:
                _coerce_without_pydantic(param)
        return command

    def get_help_option(self, ctx: typer.Context):  # noqa: D102
        option = super().get_help_option(ctx)
        if option is not None:
            _not_given_is_false(option)
        return option

    def invoke(self, ctx: typer.Context):  # noqa: D102
        try:
            _check_working_folder()
            _drop_unusable_columns()
            return super().invoke(ctx)
        except NashError as error:
            _error_line(str(error))
            ctx.exit(error.exit_code)
        except UsageError as error:  # (an option's missing value comes without its command)
            _usage_error(error, _command_path(ctx))
        except (OSError, sqlite3.Error) as error:  # a full or read-only disk, a lost mount...
            _output_failed(error)
        except Terminated as stop:
            with contextlib.suppress(OSError):  # (a hangup: the terminal may be gone)
                typer.echo(f"nash: stopped by {signal.Signals(stop.signum).name}", err=True)
            ctx.exit(128 + stop.signum)  # as a shell reports a process the signal killed
        except KeyboardInterrupt:
            typer.echo("nash: interrupted", err=True)
            ctx.exit(INTERRUPTED)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a command that cleans up after itself as after Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_handled(names: Sequence[str], handler: Callable) -> Iterator[list[int]]:
    """``handler`` for the signals ``names`` during the block, the old handlers back after it;
    yields the signals it handles. One ignored when the block starts stays ignored: ``nohup``
    ignores SIGHUP so that the command outlives its terminal, a shell's background job SIGINT."""
    installed: dict[int, object] = {}
    try:
        for name in names:
            sig = getattr(signal, name, None)
            # (None: a handler set from C, which could not be put back)
            if sig is not None and signal.getsignal(sig) not in (signal.SIG_IGN, None):
                installed[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield list(installed)
    finally:
        for sig, old in installed.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def stopped_as_by_ctrl_c() -> Iterator[None]:
    """SIGTERM (``timeout``, ``kill``, a shutdown) and SIGHUP (the terminal closed) raise
    :class:`Terminated`, a ``KeyboardInterrupt``, for the duration: their default ends the
    process where it stands, and a first ``nash index`` stopped so left an empty collection
    behind, which then blocked the folder's ``--name`` (Ctrl-C removes it). One that comes
    while the first one's clean-up runs (a closing terminal can send SIGHUP twice) is let go:
    it must not cut that short. (Not ignored from the first on: a first one Python could not
    raise, in a ``__del__``, would have left the command unstoppable.)"""

    def handler(signum, frame):
        if isinstance(sys.exc_info()[1], Terminated):  # (visible in except, finally, __exit__)
            return
        raise Terminated(signum)

    with signals_handled(("SIGTERM", "SIGHUP"), handler):
        yield


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
