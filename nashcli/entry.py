"""The ``nash`` console script: a Ctrl-C while the CLI is still being imported (the first tenth
of a second) is one line and exit status 130, like one during a command, not a traceback.

It also keeps a locale that is not UTF-8 from breaking the CLI. Under the C locale with UTF-8
mode turned off (``LC_ALL=C PYTHONUTF8=0``), Python decodes file names as ASCII: a UTF-8 name
would look invalid and leave the index. ``nash`` then starts itself again in Python's UTF-8
mode, once, with ``PYTHONUTF8=1`` for the processes it starts (a background watcher, a refit).
Under another 8-bit locale (Latin-1) every file name decodes, in that locale's own encoding, so
``nash`` stays in it, and only makes its output replace what that encoding cannot show rather
than stop with a traceback on an accented or Chinese title.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import sys

#: Exit status of a command stopped by Ctrl-C, as shells report a process killed by SIGINT.
INTERRUPTED = 130


def main() -> None:
    """Import and run the CLI (``nashcli.cli.main``)."""
    _fit_the_locale()  # (first: a start again in UTF-8 mode must see the closed streams too)
    _hold_closed_streams()
    try:
        from nashcli.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("nash: interrupted\n")
        sys.exit(INTERRUPTED)


def _hold_closed_streams() -> None:
    """Open /dev/null on a standard descriptor closed at the start (``nash status >&-``).

    The next file opened takes the lowest free descriptor: the index's database would be
    descriptor 1, and whatever a library printed would land in it. Python leaves such a stream
    None: stdin then reads as empty (``nash similar -`` says there is no query text, where it
    stopped with a traceback), and writing the output fails as on a closed descriptor (one
    error line and exit status 2, where the results were dropped with exit status 0).
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            null = os.open(os.devnull, os.O_RDWR)  # (fd itself: the lowest free descriptor)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # (for the processes nash starts: a refit child)
        except OSError:  # no /dev/null, no descriptor left: go on as before
            continue
        if fd == 0 and sys.stdin is None:
            sys.stdin = open(fd, encoding="utf-8", closefd=False)  # noqa: SIM115 - for the run
        elif fd == 1 and sys.stdout is None:
            sys.stdout = _ClosedOutput()


class _ClosedOutput(io.TextIOBase):
    """``sys.stdout`` where the descriptor was closed: writing fails as it would there."""

    encoding = "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _fit_the_locale() -> None:
    """Start again in UTF-8 mode where file names decode as ASCII; where the output's
    encoding is not UTF-8, replace what it cannot encode."""
    ascii_names = codecs.lookup(sys.getfilesystemencoding()).name == "ascii"
    if ascii_names and not sys.flags.utf8_mode and os.name == "posix":  # (not Windows, macOS)
        script = sys.argv[0]
        if sys.executable and os.path.isfile(script):  # the console script: start it again
            # orig_argv keeps the interpreter's own options (a shebang's -s or -I)
            argv = [sys.executable, "-X", "utf8", *sys.orig_argv[1:]]
            os.execve(sys.executable, argv, {**os.environ, "PYTHONUTF8": "1"})
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        if codecs.lookup(encoding).name != "utf-8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
