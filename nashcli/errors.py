"""User-facing errors: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class NashError(Exception):
    """An error the user can act on. The CLI shows ``str(error)`` alone, never a traceback."""

    exit_code = 2


class IndexBusyError(NashError):
    """Another process holds the collection's writer lock."""

    exit_code = 3


class IndexWriteError(NashError):
    """A write of the index failed for a reason that may pass (a full disk or quota, a file size
    limit): a command stops with it, a watcher says so and tries again later."""
