"""An earlier git revision of this project, checked out beside it to measure against.

The benchmarks that compare this tree with a revision REV in the same run (``eval_tables.py
--carry-over --reference``, ``train_time.py``, ``reindex.py``, ``query.py``) run REV's code from
a temporary worktree, in a child process, so that neither engine is imported into the other's
process. Also here: what those comparisons share (a folder indexed by this tree, the JSON record
of a comparison). Nothing here imports the engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
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


def alternating(reference: Path, rounds: int) -> Iterator[tuple[int, str, Path]]:
    """``(round, name, tree)`` for REV's tree (``reference``) and this one, ``rounds`` times,
    each round in the other order than the last: load from other processes hits both alike."""
    trees = [("reference", reference), ("this tree", ROOT)]
    for round_ in range(rounds):
        for name, tree in trees if round_ % 2 == 0 else trees[::-1]:
            yield round_, name, tree


def timed_cli(tree: Path, env: dict, *args: str) -> tuple[float, str]:
    """One whole ``nash ARGS`` with the package under ``tree``: (wall seconds, its stdout)."""
    took, _peak, out = measured_cli(tree, env, *args)
    return took, out


def measured_cli(tree: Path, env: dict, *args: str) -> tuple[float, float, str]:
    """:func:`timed_cli` with the process's peak resident memory: (wall seconds, peak MB, its
    stdout). The peak is the child's own (``wait4``'s ``ru_maxrss``, so the child is reaped
    here, not by ``subprocess``), not the largest of every child so far."""
    import tempfile

    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            cli_command(tree, *args), env=env, cwd=tree, stdout=subprocess.PIPE, stderr=errors
        )
        try:
            with child.stdout:
                out = child.stdout.read().decode()
        finally:  # (reaped whatever happens)
            _pid, status, usage = os.wait4(child.pid, 0)
        took = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
            raise subprocess.CalledProcessError(child.returncode, child.args, out, stderr)
    return took, usage.ru_maxrss / 1024, out  # (KB on Linux)


def git_commit() -> str:
    """This checkout's commit (12 hex digits), ``+dirty`` where ``nashcli/`` has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "nashcli"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_model() -> str | None:
    """The CPU's family, model and stepping (from /proc/cpuinfo where there is one): one model
    name ("AMD EPYC") can cover several generations, whose float kernels differ."""
    try:
        fields = dict(
            (key.strip(), value.strip())
            for key, _, value in (
                line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines()
            )
            if key.strip() in ("cpu family", "model", "stepping")
        )
    except OSError:
        return None
    if not fields:
        return None
    return " ".join(
        f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping") if key in fields
    )


def indexed_folder(scratch: Path, docs: int, epochs: int) -> tuple[Path, dict[str, str], int]:
    """``docs`` files (``large_folder.write_folder``) under ``scratch``, indexed once by this
    tree with a model trained ``epochs`` epochs: ``(folder, environment, documents indexed)``,
    the environment's ``NASH_HOME`` holding that index."""
    from large_folder import write_folder

    folder, env = scratch / "docs", dict(os.environ, NASH_HOME=str(scratch / "home"))
    write_folder(folder, docs)
    first_index = (
        "import sys; from nashcli.indexing import index_folder; "
        f"r = index_folder(sys.argv[1], hasher_options={{'max_epochs': {epochs}}}); "
        "print(r.documents)"
    )
    documents = subprocess.run(
        [sys.executable, "-c", first_index, str(folder)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"{documents} documents indexed", flush=True)
    return folder, env, int(documents)


def write_comparison(path: Path, reference: str, figures: dict) -> None:
    """``figures`` as JSON at ``path``, after the date, this tree's commit, ``reference`` and
    the CPU."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    header = {
        "date": dt.date.today().isoformat(),
        "commit": commit,
        "reference": reference,
        "cpu": cpu_name(),
    }
    path.write_text(json.dumps({**header, **figures}, indent=1) + "\n")


def timing_figures(seconds: dict[str, list[float]]) -> dict:
    """What a comparison writes of its runs: every run's seconds per tree ("reference", "this
    tree"), their medians, and the ratio of this tree's median to the reference's."""
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "seconds": {k: [round(v, 3) for v in vs] for k, vs in seconds.items()},
        "medians": {k: round(v, 3) for k, v in medians.items()},
        "ratio": round(medians["this tree"] / medians["reference"], 3),
    }
