"""An earlier git revision of this project, checked out beside it to measure against.

The benchmarks that compare this tree with a revision REV in the same run (``eval_tables.py
--carry-over --reference``, ``train_time.py``, ``reindex.py``) run REV's code from a temporary
worktree, in a child process, so that neither engine is imported into the other's process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def reference_worktree(revision: str, scratch: Path, *, kernel: bool = False) -> Iterator[Path]:
    """A worktree of ``revision`` under ``scratch``, removed afterwards; with ``kernel``, its
    compiled search kernel built in place (so that it scores as fast as this tree)."""
    tree = scratch / "tree"
    git = ["git", "-C", str(ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(tree), revision], check=True, capture_output=True)
    try:
        if kernel:
            build = [sys.executable, "setup.py", "-q", "build_ext", "--inplace"]
            subprocess.run(
                [*build, "--build-temp", str(scratch / "build")],
                cwd=tree,
                check=True,
                capture_output=True,
            )
        yield tree
    finally:
        subprocess.run([*git, "remove", "--force", str(tree)], check=False)


def cli_command(tree: Path, *args: str) -> list[str]:
    """``nash ARGS`` run from the package under ``tree`` (not whichever is installed)."""
    run_cli = f"import sys; sys.path.insert(0, {str(tree)!r}); from nashcli.cli import main; main()"
    return [sys.executable, "-c", run_cli, *args]
