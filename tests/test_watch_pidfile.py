"""`nash watch --stop` when a background watcher's pid file was deleted or garbled.

The watcher still holds its collection's watch lock, so `nash status` says "watching"; `--stop`
(with a name, a folder, or none) must find it by that lock and stop it, the watcher rewrites its
pid file, and a lock held by something nash cannot confirm is a watcher is never signalled: one
line says which pid it is and how to stop it, with a non-zero status.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_watch_cli import TIMEOUT, make_folder, runner, wait_until

from nashcli import watching
from nashcli.cli import app
from nashcli.errors import NashError

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals")


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


def start_detached(notes: Path) -> int:
    result = runner.invoke(app, ["watch", str(notes), "--detach", "--max-epochs", "2"])
    assert result.exit_code == 0, result.output
    assert watching.is_watching("notes")
    wait_until(lambda: watching.read_pid_file("notes")["ready"], what="the first index")
    return int(watching.read_pid_file("notes")["pid"])


def gone(pid: int) -> bool:
    """Whether process ``pid`` ended (reaped here if it is our child, as a detached one is)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def watching_in_status() -> bool:
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    return status["collections"][0]["watching"]


def assert_stopped(result, pid: int) -> None:
    assert result.exit_code == 0, result.output
    assert f"stopped watching 'notes' (pid {pid})" in result.output
    wait_until(lambda: gone(pid), timeout=30, what="the watcher to exit")
    assert watching._lock_busy("notes") is False
    assert not watching.is_watching("notes")
    assert not watching_in_status()
    assert not watching.pid_file("notes").exists()
    again = runner.invoke(app, ["watch", "--stop"])
    assert again.exit_code == 0 and "no watcher is running" in again.output


def kill_if_alive(pid: int) -> None:
    if not gone(pid):
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gone(pid), timeout=30, what="the watcher to die")


@pytest.mark.skipif(
    not (Path(sys.executable).parent / "nash").is_file() or not Path("/proc/self").exists(),
    reason="needs the installed nash script and /proc",
)
def test_a_background_watcher_shows_as_nash_watch(notes, monkeypatch):
    """Started by the `nash` script, the background watcher runs it too: `ps` and
    `pgrep -f "nash watch"` find it (as `python -c ...` they did not)."""
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).parent / "nash"), "watch"])
    pid = start_detached(notes)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert "nash watch" in " ".join(os.fsdecode(arg) for arg in command)
    finally:
        stopped = runner.invoke(app, ["watch", "--stop"])
        kill_if_alive(pid)
    assert_stopped(stopped, pid)


def test_a_garbled_pid_file_does_not_hide_the_watcher_from_forget_and_stop(notes):
    pid = start_detached(notes)
    try:
        watching.pid_file("notes").write_text("garbage{")
        assert watching_in_status()
        forget = runner.invoke(app, ["forget", "notes"])
        assert forget.exit_code == 2
        assert len(forget.output.strip().splitlines()) == 1 and "Traceback" not in forget.output
        # the advice it gives works (whether or not the watcher has rewritten its pid file yet)
        advice = re.search(
            r"stop the watcher first with: nash (watch --stop .+?), then", forget.output
        )
        assert advice, forget.output
        stopped = runner.invoke(app, shlex.split(advice.group(1)))
    finally:
        kill_if_alive(pid)
    assert_stopped(stopped, pid)
    assert runner.invoke(app, ["forget", "notes"]).exit_code == 0


@pytest.mark.parametrize(
    ("damage", "stop"),
    [("deleted", "by folder"), ("deleted", "all"), ("garbled", "by name")],
)
def test_stop_finds_a_watcher_whose_pid_file_is_damaged(notes, damage: str, stop: str):
    pid = start_detached(notes)
    argv = {
        "by folder": ["watch", "--stop", str(notes)],
        "all": ["watch", "--stop"],
        "by name": ["watch", "--stop", "--name", "notes"],
    }[stop]
    try:
        if damage == "deleted":
            watching.pid_file("notes").unlink()
        else:
            watching.pid_file("notes").write_text(json.dumps({"pid": "x", "identity": 3}))
        assert watching_in_status()
        stopped = runner.invoke(app, argv)
    finally:
        kill_if_alive(pid)
    assert "no watcher is running" not in stopped.output
    assert_stopped(stopped, pid)


def test_the_watcher_rewrites_a_deleted_or_garbled_pid_file(notes):
    pid = start_detached(notes)
    try:
        original = watching.read_pid_file("notes")
        watching.pid_file("notes").write_text("garbage{")
        wait_until(lambda: watching.read_pid_file("notes") == original, timeout=30)
        watching.pid_file("notes").unlink()
        wait_until(lambda: watching.read_pid_file("notes") == original, timeout=30)
        stopped = runner.invoke(app, ["watch", "--stop", str(notes)])
    finally:
        kill_if_alive(pid)
    assert_stopped(stopped, pid)


def test_registration_refresh_rewrites_its_pid_file(tmp_path):
    with watching.Registration("notes", tmp_path) as registration:
        written = watching.read_pid_file("notes")
        watching.pid_file("notes").write_text("[1, 2")
        registration.refresh()
        assert watching.read_pid_file("notes") == written
        watching.pid_file("notes").unlink()
        registration.refresh()
        assert watching.read_pid_file("notes") == written
    assert not watching.pid_file("notes").exists()


def test_a_deleted_lock_file_is_made_again_so_a_second_watcher_is_refused(tmp_path):
    with watching.Registration("notes", tmp_path) as registration:
        lock = watching._state_path("notes", "lock")
        lock.unlink()
        assert watching._lock_busy("notes") is False  # what a second watcher would have seen
        registration.refresh()
        assert watching._lock_busy("notes") is True
        with (
            pytest.raises(NashError, match="already being watched"),
            watching.Registration("notes", tmp_path),
        ):
            pass
    assert watching._lock_busy("notes") is False  # released on the way out


def test_a_watcher_whose_lock_was_taken_by_another_stops_with_one_line(tmp_path):
    with watching.Registration("notes", tmp_path) as first:
        watching._state_path("notes", "lock").unlink()
        with (
            watching.Registration("notes", tmp_path),  # started inside the gap
            pytest.raises(NashError, match="was deleted and another process took it"),
        ):
            first.refresh()


def test_a_watch_lock_deleted_under_a_running_watcher_is_taken_again(notes):
    pid = start_detached(notes)
    try:
        watching._state_path("notes", "lock").unlink()
        wait_until(lambda: watching._lock_busy("notes") is True, timeout=30, what="a new lock")
        second = runner.invoke(app, ["watch", str(notes)])
        assert second.exit_code == 2 and "already being watched" in second.output, second.output
        stopped = runner.invoke(app, ["watch", "--stop", str(notes)])
    finally:
        kill_if_alive(pid)
    assert_stopped(stopped, pid)


@pytest.fixture
def foreign_holder(nash_home: Path):
    """A process that is no `nash watch` holding the watch lock of 'notes' (and no pid file)."""
    lock = watching._state_path("notes", "lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys, time, filelock\n"
        "lock = filelock.FileLock(sys.argv[1]); lock.acquire()\n"
        "print('ready', flush=True); time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"ready"
        yield child
    finally:
        child.kill()
        child.wait(TIMEOUT)
        child.stdout.close()


def assert_one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds lock holders in /proc")
def test_a_lock_held_by_something_else_is_named_and_never_signalled(foreign_holder):
    assert watching.is_watching("notes")
    for args in (["watch", "--stop", "--name", "notes"], ["watch", "--stop"]):
        line = assert_one_line_error(runner.invoke(app, args))
        assert f"watched by pid {foreign_holder.pid}, which nash cannot confirm" in line
        assert f"kill {foreign_holder.pid}" in line
    assert foreign_holder.poll() is None  # not signalled


@pytest.mark.parametrize("holders", [None, []])
def test_when_the_holder_cannot_be_found_it_says_how_to_find_it(
    foreign_holder, monkeypatch, holders
):
    monkeypatch.setattr(watching, "_lock_holders", lambda lock: holders)
    lock = watching._state_path("notes", "lock")
    for args in (["watch", "--stop", "--name", "notes"], ["watch", "--stop"]):
        line = assert_one_line_error(runner.invoke(app, args))
        assert "nash cannot tell which process holds" in line
        assert f"fuser -v {lock}" in line
    assert foreign_holder.poll() is None


@pytest.mark.parametrize("by", ["name", "folder"])
def test_stop_and_forget_a_watched_collection_that_lost_its_meta_sqlite(notes, by: str):
    from nashcli.index import collections_dir

    pid = start_detached(notes)
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(str(collections_dir() / "notes" / "meta.sqlite") + suffix).unlink(missing_ok=True)
        refused = runner.invoke(app, ["forget", "notes"])
        assert refused.exit_code != 0 and "being watched" in refused.stderr
        stopped = runner.invoke(app, ["watch", "--stop", "notes" if by == "name" else str(notes)])
    finally:
        kill_if_alive(pid)
    assert_stopped(stopped, pid)
    assert runner.invoke(app, ["forget", "notes"]).exit_code == 0
