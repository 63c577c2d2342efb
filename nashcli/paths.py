"""Where nashcli keeps its files: ``$NASH_HOME`` if set, else the platform's user dirs."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "nash"


def data_dir() -> Path:
    """Root of all collections' indexes (``$NASH_HOME`` or ``user_data_dir('nash')``)."""
    override = os.environ.get("NASH_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def state_dir() -> Path:
    """Pid files of background watchers (``$NASH_HOME/state`` when NASH_HOME is set)."""
    override = os.environ.get("NASH_HOME")
    if override:
        return Path(override).expanduser() / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME))


def log_dir() -> Path:
    """Logs of background watchers (``$NASH_HOME/log`` when NASH_HOME is set)."""
    override = os.environ.get("NASH_HOME")
    if override:
        return Path(override).expanduser() / "log"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME))


def cache_dir() -> Path:
    """Default place for benchmark corpora: ``$NASH_DATA``, else the user cache dir."""
    override = os.environ.get("NASH_DATA")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "datasets"


def ensure_dir(path: Path) -> Path:
    """``path`` as an existing folder (made with its parents if need be), else a one-line
    :class:`~nashcli.errors.NashError`: a file where a folder should be, or no permission."""
    from nashcli.errors import NashError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file" if blocker else (error.strerror or str(error))
        message = f"cannot make the folder {path} where nash keeps its files: {reason}"
        raise NashError(message) from None
    return path
