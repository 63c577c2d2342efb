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


@pytest.fixture(autouse=True)
def signals_as_in_a_terminal():
    """SIGINT and SIGHUP handled as in a terminal, also by the processes a test starts.

    A background job (``pytest &``) starts with SIGINT ignored and ``nohup pytest`` with SIGHUP
    ignored; nash keeps a signal ignored at its start on purpose (``nohup nash index``), so the
    tests that stop nash with them would wait for nothing.
    """
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGHUP)
    if before[0] is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if before[1] is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGHUP, before[1])


@pytest.fixture
def shared_datasets() -> Path:
    """The benchmark corpora beside the checkout (CI has them); skip where they are absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets not present")
    return SHARED_DATASETS
