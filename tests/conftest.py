"""Shared fixtures: every test gets its own NASH_HOME, so no test touches a real index."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def nash_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data dir for each test, via NASH_HOME."""
    home = tmp_path_factory.mktemp("nash-home")
    monkeypatch.setenv("NASH_HOME", str(home))
    return home


#: Variables that change how Rich lays out or colours output: a CI runner's FORCE_COLOR turned
#: 47 tests' plain output into escape codes, TERM=dumb hid a progress display that a test draws,
#: COLUMNS=80 folded a summary line that a test reads whole. Tests that need one set it.
TERMINAL_VARIABLES = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


@pytest.fixture(autouse=True)
def plain_terminal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same terminal environment for every run (a developer's shell, CI's runner)."""
    for variable in TERMINAL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.fixture(autouse=True)
def signals_as_in_a_terminal():
    """SIGINT and SIGHUP not ignored, so that the processes a test starts get them at their
    defaults, as from a terminal.

    A background job (``pytest &``) starts with SIGINT ignored and ``nohup pytest`` with SIGHUP
    ignored; nash keeps a signal ignored at its start on purpose (``nohup nash index``), so the
    tests that stop nash with them would wait for nothing. An ignored signal gets a handler
    that does nothing (not the default: ``nohup pytest`` must outlive its terminal); a child
    starts with the default, since exec resets handled signals.
    """
    replaced = []
    for signum in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_IGN:
            signal.signal(signum, lambda *_: None)
            replaced.append(signum)
    yield
    for signum in replaced:
        signal.signal(signum, signal.SIG_IGN)


@pytest.fixture
def shared_datasets() -> Path:
    """The benchmark corpora beside the checkout (CI has them); skip where they are absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets not present")
    return SHARED_DATASETS
