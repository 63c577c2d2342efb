"""User-facing errors: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class NashError(Exception):
    """An error the user can act on. The CLI shows ``str(error)`` alone, never a traceback."""

    exit_code = 2


class IndexBusyError(NashError):
    """Another process holds the collection's writer lock."""

    exit_code = 3
