"""The ``nash`` console script: a Ctrl-C while the CLI is still being imported (the first tenth
of a second) is one line and exit status 130, like one during a command, not a traceback."""

from __future__ import annotations

import sys

#: Exit status of a command stopped by Ctrl-C, as shells report a process killed by SIGINT.
INTERRUPTED = 130


def main() -> None:
    """Import and run the CLI (``nashcli.cli.main``)."""
    try:
        from nashcli.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("nash: interrupted\n")
        sys.exit(INTERRUPTED)
