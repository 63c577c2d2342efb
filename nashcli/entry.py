"""The ``nash`` console script: a Ctrl-C while the CLI is still being imported (the first tenth
of a second) is one line and exit status 130, like one during a command, not a traceback.

It also makes sure the CLI runs in Python's UTF-8 mode. Under a locale that is not UTF-8
(``LC_ALL=C`` with ``PYTHONUTF8=0``, a Latin-1 locale) Python decodes file names and writes
output in that locale's encoding: a UTF-8 file name would look invalid and leave the index, and
a title with an accent would stop ``nash similar`` with a traceback. The index stores paths as
UTF-8 text, so ``nash`` then starts itself again in UTF-8 mode, once, with ``PYTHONUTF8=1`` for
the processes it starts (a background watcher, a refit).
"""

from __future__ import annotations

import os
import sys

#: Exit status of a command stopped by Ctrl-C, as shells report a process killed by SIGINT.
INTERRUPTED = 130


def main() -> None:
    """Import and run the CLI (``nashcli.cli.main``)."""
    _utf8_mode()
    try:
        from nashcli.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("nash: interrupted\n")
        sys.exit(INTERRUPTED)


def _utf8_mode() -> None:
    """Replace this process with the same command in UTF-8 mode, where a POSIX system's file
    names and output are not decoded as UTF-8 (Windows and macOS always do)."""
    if sys.flags.utf8_mode or os.name != "posix":
        return
    if sys.getfilesystemencoding().replace("-", "").lower() == "utf8":
        return
    script = sys.argv[0]
    if not sys.executable or not os.path.isfile(script):
        return  # not started as the console script: nothing to start again
    argv = [sys.executable, "-X", "utf8", script, *sys.argv[1:]]
    os.execve(sys.executable, argv, {**os.environ, "PYTHONUTF8": "1"})  # children too
