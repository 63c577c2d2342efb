"""SIGKILL `nash index` at chosen points: the last committed index keeps answering, the next run
finishes the job, no document is lost.

Deterministic, not timing-based: ``NASH_TEST_PAUSE_AT=<point>`` makes the indexer announce itself
in ``$NASH_TEST_PAUSE_FILE`` and stop at that exact point (``nashcli.index._failpoint``); the
test then kills it with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_indexing import FAST, bump, make_docs

from nashcli.index import Collection
from nashcli.indexing import index_folder

# `nash` in the subprocess that gets killed, training few epochs (crash safety, not the model).
NASH = (
    "from nashcli import indexing; real = indexing._new_hasher; "
    "indexing._new_hasher = lambda bits, device, seed, options: real(bits, device, seed, "
    f"{FAST!r}); from nashcli.cli import main; main()"
)


def nash(*args: str):
    """`nash ARGS` in this process (only the run that gets killed needs its own process)."""
    from typer.testing import CliRunner

    from nashcli import indexing
    from nashcli.cli import app

    real = indexing._new_hasher
    indexing._new_hasher = lambda bits, device, seed, options: real(bits, device, seed, FAST)
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        indexing._new_hasher = real
    assert "Traceback" not in result.output
    return result


def kill_at(point: str, args: list[str], tmp_path: Path, sig: int = signal.SIGKILL) -> str:
    """Run `nash index ARGS`, wait until it reaches ``point``, send it ``sig``; its stderr."""
    flag = tmp_path / f"paused-{point}"
    env = dict(os.environ, NASH_TEST_PAUSE_AT=point, NASH_TEST_PAUSE_FILE=str(flag))
    proc = subprocess.Popen(
        [sys.executable, "-c", NASH, "index", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            if proc.poll() is not None:
                pytest.fail(f"nash index ended before {point}: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail(f"nash index never reached {point}")
            time.sleep(0.05)
        assert int(flag.read_text()) == proc.pid
    finally:
        proc.send_signal(sig)
        proc.wait(60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # stopped as by Ctrl-C, in one line, with the status a shell gives for the signal
        assert proc.returncode == 128 + sig, proc.stderr.read()
    return proc.stderr.read()


def answers(query: Path) -> list[str]:
    result = nash("similar", str(query), "--json", "--top", "100")
    assert result.exit_code == 0, result.output
    return [hit["path"] for hit in json.loads(result.stdout)["results"]]


def live_paths(name: str) -> set[str]:
    with Collection.open(name).snapshot() as snap:
        return {d.path for d in snap.live_docs()}


@pytest.fixture
def notes(tmp_path: Path) -> tuple[Path, list[Path]]:
    folder = tmp_path / "notes"
    paths = make_docs(folder, per_topic=10)
    index_folder(folder, hasher_options=FAST)
    return folder, paths


@pytest.mark.parametrize("point", ["rows-written", "before-commit"])
def test_kill_during_incremental_update(notes, tmp_path: Path, point: str) -> None:
    folder, paths = notes
    before = live_paths("notes")
    new = [folder / "space" / f"new-{i}.txt" for i in range(3)]
    for i, path in enumerate(new):
        path.write_text(f"rocket orbit moon launch {i}")
    paths[1].write_text("butter sugar flour, rewritten")
    bump(paths[1])
    paths[2].unlink()

    kill_at(point, [str(folder)], tmp_path)

    # The last committed index still answers, unchanged (the file deleted since is left out
    # of the answers, not of the index).
    assert live_paths("notes") == before
    neighbours = answers(paths[0])
    assert set(neighbours) == before - {str(paths[0]), str(paths[2])}

    # The next run completes: every document present, the deleted one gone.
    result = nash("index", str(folder))
    assert result.exit_code == 0, result.output
    expected = {str(p) for p in paths if p != paths[2]} | {str(p) for p in new}
    assert live_paths("notes") == expected
    assert set(answers(paths[0])) == expected - {str(paths[0])}


def test_kill_during_retrain(notes, tmp_path: Path) -> None:
    folder, paths = notes
    before = live_paths("notes")
    with Collection.open("notes").snapshot() as snap:
        generation = snap.generation

    kill_at("generation-written", [str(folder), "--retrain"], tmp_path)

    with Collection.open("notes").snapshot() as snap:
        assert snap.generation == generation  # the new generation was never switched to
    assert set(answers(paths[0])) == before - {str(paths[0])}
    assert nash("index", str(folder), "--retrain").exit_code == 0
    with Collection.open("notes").snapshot() as snap:
        assert snap.generation > generation
    assert live_paths("notes") == before
    leftovers = [p.name for p in Collection.open("notes").directory.glob("gen-*")]
    assert len(leftovers) == 1


def test_kill_during_first_index(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    paths = make_docs(folder, per_topic=4)

    kill_at("generation-written", [str(folder)], tmp_path)

    result = nash("similar", str(paths[0]))
    assert result.exit_code != 0 and "no index yet" in result.stderr
    assert nash("index", str(folder)).exit_code == 0
    assert live_paths("fresh") == {str(p) for p in paths}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_first_index_stopped_by_sigterm_leaves_no_collection(tmp_path: Path, sig) -> None:
    """As after Ctrl-C. SIGTERM (`timeout`, `kill`) used to end it where it stood: an empty
    collection stayed, and `nash index NEWPATH --name fresh` was refused for that folder."""
    folder = tmp_path / "fresh"
    paths = make_docs(folder, per_topic=4)

    stderr = kill_at("generation-written", [str(folder)], tmp_path, sig)

    assert stderr.splitlines()[-1] == f"nash: stopped by {signal.Signals(sig).name}"
    assert "Traceback" not in stderr
    assert not Collection.exists("fresh")
    assert nash("index", str(folder)).exit_code == 0
    assert live_paths("fresh") == {str(p) for p in paths}


def test_a_signal_ignored_when_nash_index_starts_stays_ignored() -> None:
    """`nohup nash index ~/big &` ignores SIGHUP so that it outlives the terminal: the handler
    that stops on SIGTERM and SIGHUP must not take it over (logging out stopped the index)."""
    from nashcli.cli.app import stopped_as_by_ctrl_c

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stopped_as_by_ctrl_c():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert callable(signal.getsignal(signal.SIGTERM))
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_second_signal_does_not_cut_the_clean_up_short() -> None:
    """A closing terminal can send SIGHUP twice: the second must not interrupt the removal of
    what the first one stopped."""
    from nashcli.cli.app import Terminated, stopped_as_by_ctrl_c

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    cleaned = False
    with pytest.raises(Terminated) as caught, stopped_as_by_ctrl_c():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)  # (the handler raises here)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # during the clean-up: ignored
            time.sleep(0.1)
            cleaned = True
    assert caught.value.signum == signal.SIGHUP and cleaned
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
