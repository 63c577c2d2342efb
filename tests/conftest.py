"""Shared fixtures: every test gets its own NASH_HOME, so no test touches a real index."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def nash_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty data dir for each test, via NASH_HOME."""
    home = tmp_path_factory.mktemp("nash-home")
    monkeypatch.setenv("NASH_HOME", str(home))
    return home


@pytest.fixture
def shared_datasets() -> Path:
    """The benchmark corpora beside the checkout (CI has them); skip where they are absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets not present")
    return SHARED_DATASETS
