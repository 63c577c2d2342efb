"""``nash watch``: keep a collection current as its folder changes, in the foreground or not."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from pathlib import Path

import typer

from nashcli.cli.app import DEVICES, app, check_device, signals_handled
from nashcli.errors import NashError
from nashcli.names import shell_quote, visible

_SHOWN_PATHS = 10  # a batch lists its files up to this many, then only counts


def _say(message: str) -> None:
    """One line of the watcher's log (names in it escaped: :func:`names.visible`)."""
    _log(f"{time.strftime('%H:%M:%S')} {visible(message)}")


#: Why a line of the log may not be written for a while: its disk is full. The watcher goes on
#: (a background one died without a word when its log filled up); a reader gone (EPIPE) or
#: another failure still ends it.
_LOG_FULL = frozenset(
    getattr(errno, code) for code in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, code)
)


def _log(line: str) -> None:
    """``line`` on the watcher's output (its log when it runs in the background), dropped while
    the disk it goes to is full."""
    try:
        typer.echo(line)
    except OSError as error:
        if error.errno not in _LOG_FULL:
            raise


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _retrained(report) -> str:
    """ "model retrained", "model trained (first index)" for a new collection, and why where it
    was not routine (a damaged index rebuilt)."""
    from nashcli.indexing import FIRST_INDEX, REBUILT

    why = report.retrain_reason
    if why == FIRST_INDEX:
        return f"model trained ({FIRST_INDEX})"
    return f"model retrained: {why}" if why.startswith(REBUILT) else "model retrained"


class _BatchLog:
    """The watcher's log of what each applied chunk or catch-up pass did: one summary line, its
    files when there are few, and the files it skipped; a catch-up pass reports only the skips
    the pass before it did not have (each would repeat every unreadable file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.reported_skips: set[tuple[str, str]] = set()

    def __call__(self, result) -> None:
        root = self.root
        _say_skips([(_rel(path, root), reason) for path, reason in result.skipped])
        report = result.report
        if report is None:
            return
        changed = (
            report.added + report.updated + report.moved + report.deleted + report.dropped_unread
        )
        if result.batch.rescan:
            done = [
                f"{report.added:,} added" if report.added else "",
                f"{report.updated:,} updated" if report.updated else "",
                f"{report.moved:,} moved" if report.moved else "",
                f"{report.deleted:,} removed" if report.deleted else "",
                f"{report.kept:,} kept unread" if report.kept else "",
                f"{report.dropped_unread:,} left out unread" if report.dropped_unread else "",
                _retrained(report) if report.retrained else "",
            ]
            done_text = ", ".join(d for d in done if d) or "nothing changed"
            _say(
                f"up to date: {report.documents:,} documents ({done_text}; {result.seconds:.1f} s)"
            )
        else:
            if not changed:
                return  # touched, same text: nothing a person would call a change
            parts = [
                f"indexed {report.added + report.updated:,}"
                if report.added + report.updated
                else "",
                f"moved {report.moved:,}" if report.moved else "",
                f"removed {report.deleted:,}" if report.deleted else "",
                f"left out {report.dropped_unread:,} unread" if report.dropped_unread else "",
            ]
            _say(
                f"{', '.join(p for p in parts if p)} ({result.seconds:.2f} s; "
                f"{report.documents:,} documents)"
            )
        if report.ignored:  # not deleted: the ignore rules leave them out now
            n, of = report.deleted, report.ignored
            which = f"the {n:,} removed files are" if n > 1 else "the removed file is"
            if of < n:
                which = f"{of:,} of the {n:,} removed files {'are' if of > 1 else 'is'}"
            _say(f"{which} still there: left out by .gitignore/.nashignore rules")
        # The files when few, and when the report lists every one (+ added, ~ changed, - removed,
        # → moved): a refit reads every file and lists none, but the update a catch-up commits
        # before the refit it makes due lists its own (unread files are counted, not listed).
        listed = len(report.changes) == changed - report.dropped_unread
        if changed <= _SHOWN_PATHS and listed:
            for kind, paths in report.changes:
                _log(visible(f"  {kind} " + " → ".join(_rel(Path(p), root) for p in paths)))
        skipped = [(p, r) for p, r in getattr(report, "skipped", []) if "vanished" not in r]
        if result.batch.rescan:  # (one that came and went before it was read: no news)
            # News: what the last pass did not skip (a file fixed and broken again is news).
            now = set(skipped)
            skipped = [skip for skip in skipped if skip not in self.reported_skips]
            self.reported_skips = now
        _say_skips(skipped)


def _say_skips(skipped: list[tuple[str, str]]) -> None:
    """A line for each skipped file when few, else one a reason (a start's catch-up, a folder
    renamed to a name that is not UTF-8: hundreds of files at once)."""
    if len(skipped) > _SHOWN_PATHS:
        from nashcli.render import skipped_by_reason

        for reason, count, shown in skipped_by_reason(skipped):
            _say(f"skipped {count}: {reason} ({shown})")
        return
    for path, reason in skipped:
        _say(f"skipped {path}: {reason}")


@contextlib.contextmanager
def _stop_on_signals(watcher):
    """SIGINT (Ctrl-C), SIGTERM and SIGHUP finish the current batch and stop; a second one, or
    one during the catch-up pass (minutes for a first index), interrupts at once: the index
    keeps every batch it committed."""
    received = []

    def handler(signum, frame):
        watcher.stop()
        received.append(signum)
        if len(received) > 1 or not watcher.ready.is_set():
            raise KeyboardInterrupt

    # The interrupt can land where Python cannot raise it (a weakref callback inside an import,
    # a __del__): Python then prints it as a traceback and goes on. Deliver it again instead, a
    # moment later from another thread, so that it is raised once this hook has returned.
    previous_hook = sys.unraisablehook
    redeliveries = []  # cancelled on the way out: the watch may have stopped by itself meanwhile

    def unraisable(info):
        if isinstance(info.exc_value, KeyboardInterrupt) and handled:
            import _thread
            import threading

            # (the signal that came: SIGINT may be ignored, in a background job)
            again = received[-1] if received else signal.SIGINT
            redeliveries.append(threading.Timer(0.05, _thread.interrupt_main, (again,)))
            redeliveries[-1].start()
            return
        previous_hook(info)

    with signals_handled(("SIGINT", "SIGTERM", "SIGHUP"), handler) as handled:
        sys.unraisablehook = unraisable
        try:
            yield
        finally:
            for timer in redeliveries:
                timer.cancel()
            sys.unraisablehook = previous_hook


def _stop(target: str | None, name: str | None) -> None:
    from nashcli import watching
    from nashcli.index import collection_of

    if target is None and name is None:
        names = watching.watched_names()  # found by their locks, even without a pid file
        if not names:
            typer.echo("no watcher is running")
        failures = []
        for each in names:
            try:
                pid = watching.stop_watching(each)
            except NashError as error:  # stop the others, then say what is still running
                failures.append(str(error))
                continue
            if pid is not None:
                typer.echo(f"stopped watching {each!r} (pid {pid})")
        if failures:
            raise NashError("; ".join(failures))
        return
    if name is None:
        name = watching.running_watcher_of(target)
        if name is None:
            name, folder = watching.collection_for(target)
            if folder is not None and collection_of(folder) is None:
                # No collection's folder: nothing of it to stop, whoever has its name
                typer.echo(visible(f"no watcher is running for {folder}"))
                return
    pid = watching.stop_watching(name)
    if pid is None:
        typer.echo(f"no watcher is running for {name!r}")
    else:
        typer.echo(f"stopped watching {name!r} (pid {pid})")


_HELP = (
    "Keep a collection current as files change: new and changed files are encoded with the "
    "current model, moves re-pathed, deletions dropped.\n\n"
    "On start it catches up with what changed while nobody watched (indexing the folder first "
    "if it is no collection yet). Ctrl-C, SIGTERM or SIGHUP stop it after the current batch "
    "(during the catch-up, at once; committed batches are kept). While it "
    "runs, nash similar answers as usual, and nash index on the same collection waits for the "
    "watcher's current batch (up to 10 s, then it says the index is busy)."
)


@app.command("watch", help=_HELP)
def watch_command(
    path: str | None = typer.Argument(
        None,
        help="Folder to keep indexed (or a collection's name). With --stop: the watcher to "
        "stop (default: every watcher).",
        show_default=False,
        metavar="PATH",
    ),
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Run in the background; stop it with nash watch --stop."
    ),
    stop: bool = typer.Option(False, "--stop", help="Stop the background watcher of PATH."),
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="NAME",
        help="Collection name (default: the collection of the folder, else a name made from the "
        "folder's).",
    ),
    bits: int | None = typer.Option(
        None,
        "--bits",
        metavar="N",
        min=1,
        max=1024,
        help="Code length if the folder is indexed for the first time (64); to change it later: "
        "nash index PATH --bits N --retrain.",
    ),
    device: str = typer.Option(
        "auto", "--device", metavar="DEVICE", help="auto, cpu or cuda.", autocompletion=DEVICES
    ),
    debounce: float = typer.Option(
        0.2,
        "--debounce",
        help="Seconds of quiet that end a burst of changes.",
        hidden=True,
        min=0.0,
    ),
    batch_size: int = typer.Option(
        256,
        "--batch-size",
        help="Files per index update (the writer lock's hold).",
        hidden=True,
        min=1,
    ),
    max_epochs: int | None = typer.Option(
        None,
        "--max-epochs",
        help="Training epochs when a model is fitted (tests).",
        hidden=True,
        min=1,
    ),
) -> None:
    """Watch PATH until stopped (see _HELP), or start/stop a background watcher."""
    from nashcli import watching

    check_device(device)
    if stop:
        if detach:
            raise NashError("--stop stops a watcher; --detach starts one: give one of them")
        _stop(path, name)
        return
    if path is None:
        raise NashError("which folder? usage: nash watch PATH [--detach]")
    name, root, existing = watching.watch_target(path, name, bits)
    if detach:
        argv = ["watch", str(root), "--name", name, "--device", device, "--debounce", str(debounce)]
        if bits is not None:
            argv += ["--bits", str(bits)]
        if max_epochs is not None:
            argv += ["--max-epochs", str(max_epochs)]
        argv += ["--batch-size", str(batch_size)]
        pid, log, ready = watching.start_detached(name, argv)
        state = "up to date" if ready else "catching up"
        for line in (
            f"watching {root} in the background (collection {name!r}, pid {pid}, {state})",
            f"log: {log}",
            f"stop it with: nash watch --stop {shell_quote(root)}",
        ):
            typer.echo(visible(line))
        return
    log = watching.log_file(name)
    try:  # record the log only when our output goes there (a --detach child)
        same = os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(log))
    except (OSError, ValueError, AttributeError):
        same = False
    registration = watching.Registration(name, root, log=log if same else None)
    watcher = watching.make_watcher(
        root,
        name,
        bits=bits,
        device=device,
        hasher_options={"max_epochs": max_epochs} if max_epochs is not None else None,
        on_batch=_BatchLog(root),
        on_message=_say,
        on_ready=registration.mark_ready,
        on_tick=registration.refresh,  # re-makes the lock and pid files if someone deleted them
        quiet=debounce,
        batch_size=batch_size,
    )
    with registration, _stop_on_signals(watcher):
        # (a folder no collection indexes yet gets its first index first: no catching up)
        doing = "catching up" if existing else "indexing it first"
        _say(f"watching {root} (collection {name!r}, pid {os.getpid()}); {doing}")
        try:
            watcher.run()
        except KeyboardInterrupt:
            pass
        except NashError as error:
            raise NashError(f"{error}; stopped watching {name!r}") from None
    _say(f"stopped watching {name!r}{_unfinished(watcher, name, root)}")


def _unfinished(watcher, name: str, root: Path) -> str:
    """What a stop during the catch-up pass left undone, for the last line of the log: a first
    index leaves no collection (``nash similar`` would find none), and a catch-up keeps
    the batches it committed; "" once the watcher was up to date."""
    from nashcli.index import Collection

    if watcher.ready.is_set():
        return ""
    again = f"nash watch {shell_quote(root)} or nash index {shell_quote(root)}"
    if not Collection.exists(name):
        return f" before its first index finished: nothing was indexed ({again} starts again)"
    return f" before it was up to date ({again} catches up)"
