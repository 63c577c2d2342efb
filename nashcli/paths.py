"""Where nashcli keeps its files: ``$NASH_HOME`` if set, else the platform's user dirs; and
the checks of paths that several modules make (``~``, what is there, renames made at once)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

APP_NAME = "nash"
#: A collection's name, which is its folder's under :func:`collections_dir`.
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _home() -> Path | None:
    """``$NASH_HOME`` as an absolute path (a relative one is taken from the current folder, so
    that the paths nash prints, a watcher's log, lead there from anywhere), or None."""
    override = os.environ.get("NASH_HOME")
    return Path(os.path.abspath(expand_user(override, "NASH_HOME"))) if override else None


def expand_user(text: str | Path, variable: str | None = None) -> Path:
    """``text`` as a path with a leading ``~`` or ``~name`` expanded, else a one-line
    :class:`~nashcli.errors.NashError` (``Path.expanduser`` raises RuntimeError for a user who
    does not exist, or where no home folder can be found); ``variable`` names where it was set.

    Only a ``~`` that ``text`` begins with is expanded: ``"./~draft.txt"`` (pathlib makes it
    ``~draft.txt``, so pass the text as typed, not a ``Path`` of it) is that file here,
    returned absolute so that nothing expands it later; and
    ``~draft.txt`` of no user named so is the file of that name here where there is one, as the
    shell leaves it."""
    typed = str(text)
    if not typed.startswith("~"):
        path = Path(typed)
        return Path(os.path.abspath(typed)) if str(path).startswith("~") else path
    try:
        return Path(typed).expanduser()
    except RuntimeError:  # ~name of no such user, or no home directory to be found
        if variable is None and os.path.lexists(typed):
            return Path(os.path.abspath(typed))
        from nashcli.errors import NashError

        where = f"{variable}={text}" if variable else str(text)
        raise NashError(f"{where}: cannot find the home folder that ~ stands for") from None


def data_dir() -> Path:
    """Root of all collections' indexes (``$NASH_HOME`` or ``user_data_dir('nash')``)."""
    home = _home()
    if home is not None:
        return home
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def collections_dir() -> Path:
    """Where every collection's directory lives (``data_dir()/collections``)."""
    return data_dir() / "collections"


def collection_folders() -> list[Path]:
    """The folders under :func:`collections_dir` named as collections, sorted (not the hidden
    ``.new-*`` / ``.forgotten-*`` folders of one being made or removed); OSError where that
    folder cannot be listed (or is not there)."""
    return [
        child
        for child in sorted(collections_dir().iterdir())
        if COLLECTION_NAME.match(child.name) and child.is_dir()
    ]


def state_dir() -> Path:
    """Pid files of background watchers (``$NASH_HOME/state`` when NASH_HOME is set)."""
    home = _home()
    if home is not None:
        return home / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME))


def log_dir() -> Path:
    """Logs of background watchers (``$NASH_HOME/log`` when NASH_HOME is set)."""
    home = _home()
    if home is not None:
        return home / "log"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_NAME))


def cache_dir() -> Path:
    """Default place for benchmark corpora: ``$NASH_DATA``, else the user cache dir."""
    override = os.environ.get("NASH_DATA")
    if override:
        return expand_user(override, "NASH_DATA")
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "datasets"


def file_in_the_way(path: Path) -> Path | None:
    """The file (not a folder) at ``path`` or at one of its parents, if any: what keeps the
    folder ``path`` from being there."""
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def ensure_dir(path: Path) -> Path:
    """``path`` as an existing folder (made with its parents if need be), else a one-line
    :class:`~nashcli.errors.NashError`: a file where a folder should be, or no permission."""
    from nashcli.errors import NashError

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = file_in_the_way(path)
        reason = f"{blocker} is a file" if blocker else (error.strerror or str(error))
        message = f"cannot make the folder {path} where nash keeps its files: {reason}"
        raise NashError(message) from None
    return path


def look_at(text: str | Path) -> tuple[Path, os.stat_result | None]:
    """A path the user gave (``~`` expanded) and what is there (``os.stat``, links followed;
    None when nothing is), else a one-line :class:`~nashcli.errors.NashError`: an empty path
    (``nash index "$DIR"`` with ``DIR`` unset must not index the current folder), or one that
    cannot be looked at (a folder on the way without permission, a link loop)."""
    from nashcli.errors import NashError

    if str(text) == "":
        raise NashError("the path is empty ('')")
    path = expand_user(text)
    try:
        found = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return path, None
    except OSError as error:
        raise NashError(f"{text}: {(error.strerror or str(error)).lower()}") from None
    # ``Path`` drops a trailing "/" or "/.", which name a folder: "notes.txt/" is no file to
    # the OS ("Not a directory").
    if _names_a_folder(str(text)) and not stat.S_ISDIR(found.st_mode):
        raise NashError(f"{text}: not a folder (a trailing '/' names a folder)")
    return path, found


def _names_a_folder(text: str) -> bool:
    """Whether ``text`` ends as only a folder's path may: in a separator, or in "/."."""
    separators = "".join(dict.fromkeys(("/", os.sep, os.altsep or "/")))
    return text.endswith(tuple(separators)) or text.endswith(tuple(sep + "." for sep in separators))


def may_be_there(path: Path | str) -> bool:
    """Whether something is at ``path``, or may be: one that cannot be looked at now (in a
    folder without permission) is not known to be gone, so an index keeps its entry."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def moves_in_order(
    moves: Iterable[tuple[Path, Path]],
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """``moves`` (old, new), renames made at once, in an order that applies them one at a time:
    the move out of a name before the move onto it (`mv b c; mv a b` is (b, c), (a, b)). Moves in
    a cycle (a swap), or leading into one, have no such order: they come second, apart."""
    moves = list(moves)
    out_of = {old: (old, new) for old, new in moves}
    ordered: dict[tuple[Path, Path], None] = {}
    cyclic: dict[tuple[Path, Path], None] = {}
    for move in moves:
        chain: dict[tuple[Path, Path], None] = {}  # this move, the one out of its name, ...
        step: tuple[Path, Path] | None = move
        while step is not None and step not in ordered:
            if step in chain or step in cyclic:  # round to a move already on the way
                cyclic.update(chain)
                chain = {}
                break
            chain[step] = None
            step = out_of.get(step[1])
        ordered.update(dict.fromkeys(reversed(chain)))
    return list(ordered), list(cyclic)
