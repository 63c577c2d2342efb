"""The ``nash`` command line. Importing this package registers every command on :data:`app`."""

from __future__ import annotations

# Each module registers its commands on `app` when imported.
from nashcli.cli import collection_cmds, eval_cmd, watch_cmd  # noqa: E402,F401
from nashcli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
