"""Which files of a folder are documents.

:func:`crawl` walks a folder the way a person expects an indexer to: it skips hidden files and
folders (``.git`` among them) and whatever ``.gitignore`` / ``.nashignore`` files say, keeps the
text-like files (:data:`TEXT_EXTENSIONS`, plus extension-less files that sniff as text), and
reports every file it skips on purpose with a reason a person can act on, instead of failing on it.
Reading a file it found is :mod:`nashcli.documents`' part.

Only the standard library is imported at module level, so importing this module costs nothing to
``nash --help`` and shell completion.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from nashcli.documents import (
    PDF_MISSING,
    SNIFF_BYTES,
    UnreadableFile,
    looks_decodable,
    open_regular,
    os_reason,
    pdf_supported,
    sniff,
)
from nashcli.errors import NashError

if TYPE_CHECKING:
    from nashcli.ignore import IgnoreFile

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IGNORE_FILES",
    "TEXT_EXTENSIONS",
    "FileEntry",
    "IgnoreMatcher",
    "Skipped",
    "check_file",
    "crawl",
    "format_size",
    "is_utf8",
    "parse_size",
]

DEFAULT_MAX_BYTES = 10_000_000
"""Files larger than this (10 MB) are skipped: logs and dumps, rarely documents one looks up."""

TEXT_EXTENSIONS: frozenset[str] = frozenset(
    {
        "",  # no extension (README, notes): kept when the content sniffs as text
        ".txt",
        ".text",
        ".md",
        ".markdown",
        ".rst",
        ".org",
        ".tex",
        ".adoc",
        ".html",
        ".htm",
        ".eml",
        ".pdf",
    }
)
"""File name suffixes (lower case) that :func:`crawl` considers documents.

Source code, data (``.csv``, ``.json``) and office formats are left out on purpose: a table of
numbers or a program has a vocabulary unlike prose and would crowd the results. Pass
``extensions=TEXT_EXTENSIONS | {".csv"}`` to index them anyway (read as plain text)."""

IGNORE_FILES = (".gitignore", ".nashignore")
"""Ignore files read in every folder, in this order (a ``.nashignore`` rule wins over a
``.gitignore`` rule in the same folder; rules of a deeper folder win over shallower ones)."""

#: How a sub-folder that cannot be listed is reported: the documents indexed under it keep
#: their entries (they are not known to be gone).
UNREADABLE_FOLDER = "unreadable folder"

#: Kernel and device filesystems (Linux names): what a crawl of ``/`` meets at /proc, /sys and
#: /dev. They hold no documents, only files that describe the running system, some of which
#: block when read (/proc/kmsg). Folders on them are skipped; ``tmpfs`` is not among them (a
#: user's files may live there), nor ``autofs`` (a network share not mounted yet shows it).
SYSTEM_FILESYSTEMS = frozenset(
    {
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tracefs",
    }
)
_MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class FileEntry:
    """A file :func:`crawl` found to index; ``size`` and ``mtime_ns`` drive change detection."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) :func:`crawl` left out on purpose, with a reason a person can act on.

    ``excluded``: the file is there but is no document by the rules (over ``--max-size``,
    empty, binary), so an index drops the file's old entry (its text is not what the file
    holds now); other reasons (it cannot be read now) leave the entry as it was.
    """

    path: Path
    reason: str
    excluded: bool = False


# --------------------------------------------------------------------------------------------
# Sizes (for --max-size)


def format_size(n_bytes: int) -> str:
    """``10_000_000`` → ``"10 MB"``: decimal units, as file managers show them, and at most four
    significant digits, rounded down, so "larger than 1.999 KB" stays true of what exceeds a
    limit of 1,999 bytes (rounded to "2 KB" it was not; 999.9 KB read "1e+03 KB"). A whole
    number under 1,000 of a binary unit that is none of a decimal one is shown in the binary
    unit, as ``--max-size 512KiB`` was given (``"512 KiB"``, not ``"524.2 KB"``)."""
    if n_bytes < 1000:
        return "1 byte" if n_bytes == 1 else f"{n_bytes} bytes"
    power = 1
    while power < len(_DECIMAL_UNITS) and n_bytes >= 1000 ** (power + 1):
        power += 1
    unit = 1000**power
    if n_bytes % unit:  # a size given in binary units (--max-size 512KiB) is shown back in them
        binary = next((p for p in (4, 3, 2, 1) if n_bytes % 1024**p == 0), 0)
        if binary and n_bytes // 1024**binary < 1000:
            return f"{n_bytes // 1024**binary} {_BINARY_UNITS[binary - 1]}"
    decimals = max(0, 4 - len(str(n_bytes // unit)))
    whole, fraction = divmod(n_bytes * 10**decimals // unit, 10**decimals)
    shown = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{whole}{'.' + shown if shown else ''} {_DECIMAL_UNITS[power - 1]}"


_DECIMAL_UNITS = ("KB", "MB", "GB", "TB")
_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB")


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """``"10MB"``, ``"512 KiB"``, ``"2.5G"`` or a plain byte count → bytes; ``NashError`` if not."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise NashError(f"not a size: {text!r} (try 10MB, 512KiB or a number of bytes)")
    size = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(size):
        raise NashError(f"not a size: {text!r} (too large)")
    return int(size)


# --------------------------------------------------------------------------------------------
# Crawling


@dataclass(frozen=True)
class _IgnoreRules:
    """The compiled rules of one ignore file; patterns are relative to ``base`` (a root-relative
    POSIX prefix, ``""`` at the root, else ending in ``/``)."""

    base: str
    spec: IgnoreFile


class UnreadableIgnoreFile(Exception):
    """An ignore file that is there but cannot be read (``str``: why, for a skip report)."""


def _unreadable(name: str, error: OSError) -> UnreadableIgnoreFile:
    reason = os_reason(error).removeprefix("unreadable: ")
    return UnreadableIgnoreFile(f"{UNREADABLE_FOLDER}: its {name} cannot be read ({reason})")


def _load_ignore_rules(directory: Path, base: str) -> list[_IgnoreRules]:
    """The rules of ``directory``'s ignore files; raises :class:`UnreadableIgnoreFile` for one
    that cannot be read: what it leaves out is not known, so nothing there may be indexed (git
    warns and reads on without its rules, which would index files meant to stay out)."""
    from nashcli.ignore import IgnoreFile

    rules = []
    for name in IGNORE_FILES:
        path = directory / name
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue  # absent, or a folder that may not be searched (its files neither)
        except OSError as error:  # (an I/O error: what it leaves out is not known)
            raise _unreadable(name, error) from None
        if stat.S_ISLNK(st.st_mode) and name == ".nashignore":
            # A .gitignore is not read through a link (git reads none since 2.32); nash's own
            # file may be one (rules shared by several folders): what it leaves out is not
            # known where the link leads nowhere, as where the file cannot be read.
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise UnreadableIgnoreFile(
                    f"{UNREADABLE_FOLDER}: its {name} is a dangling symlink"
                ) from None
            except OSError as error:
                raise _unreadable(name, error) from None
            if not stat.S_ISREG(st.st_mode):
                raise UnreadableIgnoreFile(
                    f"{UNREADABLE_FOLDER}: its {name} is a symlink to no regular file"
                )
        if not stat.S_ISREG(st.st_mode):  # (a link, a folder; never a pipe: it would block)
            continue
        try:
            # utf-8-sig: Notepad starts the file with a byte-order mark, which git skips
            # (bytes decoded, not read_text: its universal newlines make a lone CR a line end)
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            continue  # vanished (or a folder of that name, which git passes over)
        except OSError as error:
            raise _unreadable(name, error) from None
        # Lines end at "\n" alone, as in git (a CR before it goes; a lone CR, a form feed or
        # U+2028 end no line, where str.splitlines would end one)
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        spec = IgnoreFile(lines)
        if spec.patterns:
            rules.append(_IgnoreRules(base, spec))
    return rules


def _is_ignored(rules: list[_IgnoreRules], rel: str, is_dir: bool) -> bool:
    """Git's semantics: the last pattern that matches ``rel`` itself decides, deeper files after
    shallower ones (an ignored folder is not entered: the walk asks about it first)."""
    decision = None
    for rule in rules:
        if not rel.startswith(rule.base):
            continue
        verdict = rule.spec.decide(rel[len(rule.base) :], is_dir)
        if verdict is not None:
            decision = verdict
    return bool(decision)


def _unfollowed_link(path: Path, problem: str | None, target_is_dir: bool) -> Skipped:
    """The verdict on a symlink that is not followed, named for what it is (dangling, a loop,
    its target unreadable): no document, whatever its target, so an old entry at its path
    leaves the index. Only a link that vanished during the crawl says nothing of the path."""
    if problem is not None:
        return Skipped(path, problem, excluded=problem != "vanished during crawl")
    kind = "folder" if target_is_dir else "file"
    return Skipped(path, f"symlink to a {kind}, not followed", excluded=True)


def _symlink_problem(path: Path) -> str | None:
    """``"dangling symlink"`` or ``"symlink loop"`` when the link cannot be followed, else None."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return "vanished during crawl" if not os.path.lexists(path) else "dangling symlink"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        return os_reason(error)
    return None


def system_filesystems(mountinfo: str = _MOUNTINFO) -> dict[int, str]:
    """Device number (``st_dev``) → type of every mounted :data:`SYSTEM_FILESYSTEMS` one, read
    from Linux's ``mountinfo``; ``{}`` where there is none (macOS, Windows)."""
    try:
        with open(mountinfo, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    found: dict[int, str] = {}
    for line in lines:
        # "36 25 0:21 / /proc rw,relatime shared:13 - proc proc rw": optional fields end at "-"
        fields = line.split(b" ")
        try:
            major, minor = (int(n) for n in fields[2].split(b":"))
            fs_type = fields[fields.index(b"-", 6) + 1].decode("ascii", "replace")
        except (IndexError, ValueError):
            continue
        if fs_type in SYSTEM_FILESYSTEMS:
            found[os.makedev(major, minor)] = fs_type
    return found


def _system_folder(fs_type: str) -> str:
    return f"system folder ({fs_type} filesystem)"


def name_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an index entry (the index stores paths as UTF-8 text), or None."""
    if is_utf8(str(path)):
        return None
    if is_utf8(path.name):
        return "folder name is not valid UTF-8 (rename the folder to index it)"
    return "file name is not valid UTF-8 (rename the file to index it)"


def storable_changes(
    upserts: Iterable[Path], deletions: Iterable[Path], moves: Iterable[tuple[Path, Path]]
) -> tuple[list[Path], list[Path], list[tuple[Path, Path]]]:
    """File changes with each name judged as the index knows it, where it is not valid UTF-8
    (:func:`name_problem`): never an entry, so its deletion is none, a move from it brings a
    new file, and a move to it takes the old name's entry away (where nothing came there
    since: what did is an upsert or a move's, which replaces it) and is an upsert of the new
    name, for the caller to report as skipped with the other upserts that name one. Looked up
    as they were, such names raised UnicodeEncodeError."""
    from nashcli.paths import may_be_there

    ups, dels, mvs = list(upserts), [p for p in deletions if name_problem(p) is None], []
    for old, new in moves:
        if name_problem(old) is None and name_problem(new) is None:
            mvs.append((old, new))
            continue
        if name_problem(old) is None and not may_be_there(old):
            dels.append(old)
        ups.append(new)
    return ups, dels, mvs


def is_utf8(text: str) -> bool:
    """False for a name with bytes the file system encoding could not decode (surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _folder_reason(error: OSError) -> str:
    """Why a folder cannot be listed or looked at: "unreadable folder: ..." keeps the entries
    of the files in it (they are not known to be gone; see ``indexing._gone``)."""
    reason = os_reason(error)
    if reason.startswith("unreadable"):
        reason = UNREADABLE_FOLDER + reason[len("unreadable") :]
    return reason


def too_large(max_bytes: int) -> str:
    """The skip reason of a file over the size limit (the crawl's, and a watcher's moves')."""
    return f"larger than {format_size(max_bytes)} (--max-size)"


def _check_file(
    path: Path, suffix: str, max_bytes: int, known: Mapping[str, tuple[int, int]] | None = None
) -> FileEntry | Skipped:
    unstorable = name_problem(path)
    if unstorable:
        return Skipped(path, unstorable)
    try:
        st = os.stat(path)
    except OSError as error:
        return Skipped(path, os_reason(error))
    if not stat.S_ISREG(st.st_mode):  # FIFOs, sockets, devices: reading could block forever
        return Skipped(path, "not a regular file", excluded=True)
    if st.st_size == 0:
        return Skipped(path, "empty file", excluded=True)
    if st.st_size > max_bytes:
        return Skipped(path, too_large(max_bytes), excluded=True)
    if suffix == ".pdf":
        if not pdf_supported():
            return Skipped(path, PDF_MISSING)
        return FileEntry(path, st.st_size, st.st_mtime_ns)
    if known is not None and known.get(str(path)) == (st.st_size, st.st_mtime_ns):
        # Sniffed when it was indexed, and unchanged since by size and time: an update of a
        # large folder then reads the file's metadata only, not its first block.
        return FileEntry(path, st.st_size, st.st_mtime_ns)
    try:
        with open_regular(path) as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as error:
        return Skipped(path, os_reason(error))
    except UnreadableFile as error:  # (replaced by a pipe since its stat)
        return Skipped(path, error.reason, excluded=error.excluded)
    reason = sniff(head)
    if reason is None and suffix == "" and not looks_decodable(head, len(head) >= st.st_size):
        reason = "binary file"
    if reason is not None:
        return Skipped(path, reason, excluded=True)
    return FileEntry(path, st.st_size, st.st_mtime_ns)


def regular_file_stat(path: Path | str) -> os.stat_result | None:
    """``path``'s own stat if it is a regular file, else None (gone, a folder, a pipe, or a
    symlink, which is not followed): whether a path can be a document at all."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def check_file(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FileEntry | Skipped:
    """:func:`crawl`'s verdict on one file (size, type, binary sniff, readability; a symlink is
    not followed), for callers that learn of single files (a watcher) rather than crawl a
    folder."""
    path = Path(path)
    if os.path.islink(path):
        problem = _symlink_problem(path)
        try:
            target_is_dir = problem is None and os.path.isdir(path)
        except OSError as error:
            problem = os_reason(error)
        return _unfollowed_link(path, problem, target_is_dir)
    return _check_file(path, _suffix(path.name), max_bytes)


class IgnoreMatcher:
    """:func:`crawl`'s rules as a predicate on single paths under ``root``: hidden names,
    ``.gitignore`` / ``.nashignore`` rules of ``root`` and the folders down to the path (each
    read once; make a new matcher after an ignore file changes), and suffixes outside
    ``extensions``. Symlinks are not looked at: :func:`check_file` and ``follow_symlinks`` are."""

    def __init__(self, root: Path | str, *, extensions: Iterable[str] = TEXT_EXTENSIONS) -> None:
        self.root = Path(os.path.abspath(os.path.expanduser(root)))
        self.wanted = frozenset(ext.lower() for ext in extensions)
        self._rules: dict[str, list[_IgnoreRules]] = {}

    def _rules_in(self, rel_dir: str) -> list[_IgnoreRules]:
        """Rules in force inside folder ``rel_dir`` (``""`` = root, else ``"a/b/"``)."""
        if rel_dir not in self._rules:
            rules: list[_IgnoreRules] = []
            prefix = ""
            for part in ["", *rel_dir.split("/")[:-1]]:  # root first, down to rel_dir
                prefix += part + "/" if part else ""
                if prefix not in self._rules:
                    try:
                        own = _load_ignore_rules(self.root / prefix, prefix)
                    except UnreadableIgnoreFile:  # its rules unknown: everything in it is out
                        from nashcli.ignore import IgnoreFile

                        own = [_IgnoreRules(prefix, IgnoreFile(["*"]))]
                    self._rules[prefix] = rules + own
                rules = self._rules[prefix]
        return self._rules[rel_dir]

    def is_ignored(self, path: Path | str, is_dir: bool = False) -> bool:
        """Whether :func:`crawl` would leave ``path`` out without a word (outside ``root`` too)."""
        try:
            parts = Path(os.path.abspath(path)).relative_to(self.root).parts
        except ValueError:
            return True
        if not parts or any(part.startswith(".") for part in parts):
            return True
        if not is_dir and _suffix(parts[-1]) not in self.wanted:
            return True
        rel = ""
        for depth, part in enumerate(parts):
            part_is_dir = is_dir or depth < len(parts) - 1
            if _is_ignored(self._rules_in(rel), rel + part, part_is_dir):
                return True
            rel += part + "/"
        return False


def crawl(
    root: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    follow_symlinks: bool = False,
    extensions: Iterable[str] = TEXT_EXTENSIONS,
    known: Mapping[str, tuple[int, int]] | None = None,
) -> Iterator[FileEntry | Skipped]:
    """Yield the documents under ``root`` as :class:`FileEntry`, sorted by path, and the files
    left out on purpose as :class:`Skipped` with a reason.

    - Hidden files and folders (name starting with ``.``, so ``.git`` too) and paths matched by a
      ``.gitignore`` or ``.nashignore`` anywhere in the tree (git's syntax and precedence, ``!``
      negation included) are left out silently, as are files whose suffix is not in
      ``extensions`` (lower case, with the dot; ``""`` admits extension-less files that sniff as
      text). Ignore files above ``root`` are not read.
    - Skipped with a reason: empty, binary (a NUL byte in the first 8 KiB, unless the file starts
      with a UTF-16/32 byte-order mark), larger than ``max_bytes``, unreadable, not a regular
      file, PDFs when ``pypdf`` is missing, dangling symlinks, symlink loops, files that vanish
      while the crawl runs, and symlinks at all unless ``follow_symlinks`` (a link can point
      outside the folder, or at a file indexed under its own name already).
    - With ``follow_symlinks``, links to files and folders outside ``root`` are crawled once
      each; a link back to a folder being walked is a ``"symlink loop"``, and a link to
      something inside ``root`` is skipped (it is crawled under its real name).

    ``known`` maps the paths of files indexed already to their ``(size, mtime_ns)`` then: a file
    that still matches is not opened again to sniff it (an update of an unchanged folder of a
    million files then stats them, and reads none).

    - Folders on a kernel or device filesystem (:data:`SYSTEM_FILESYSTEMS`: /proc, /sys, /dev
      under ``/``) are skipped as ``"system folder (proc filesystem)"``, unlisted, and so are
      followed links into them.

    ``root`` may also be a single file. Raises :class:`NashError` if ``root`` does not exist, is
    a folder that cannot be listed (an index must not read that as "every file is gone"), or is
    on a system filesystem. Never raises for a problem with one file or folder inside it.
    """
    root = Path(os.path.abspath(os.path.expanduser(root)))
    wanted = frozenset(ext.lower() for ext in extensions)
    root_stat, system = check_root(root)
    if not stat.S_ISDIR(root_stat.st_mode):
        yield _check_file(root, root.suffix.lower(), max_bytes, known)
        return
    try:
        os.scandir(root).close()
    except OSError as error:
        reason = os_reason(error).removeprefix("unreadable: ")
        raise NashError(f"cannot read the folder {root}: {reason}") from None
    walker = _Walker(root, wanted, max_bytes, follow_symlinks, known, system)
    yield from walker.walk(root, ((root_stat.st_dev, root_stat.st_ino),))


def check_root(root: Path) -> tuple[os.stat_result, dict[int, str]]:
    """``root``'s stat and the system filesystems mounted (:func:`system_filesystems`), or the
    one-line :class:`NashError` for a root no crawl takes: missing, unreadable, not valid
    UTF-8, or on a system filesystem (``nash watch`` asks before it starts watching)."""
    if not is_utf8(str(root)):
        raise NashError(  # (an error line shows the bytes as \xNN: names.visible)
            f"{root}: the path is not valid UTF-8 and the index stores paths as text; rename "
            "the folder whose name shows escaped bytes to index it"
        )
    try:
        root_stat = os.stat(root)
    except FileNotFoundError:
        raise NashError(f"no such file or folder: {root}") from None
    except OSError as error:
        raise NashError(f"cannot read {root}: {os_reason(error)}") from None
    system = system_filesystems()
    if root_stat.st_dev in system:
        where = _system_folder(system[root_stat.st_dev])
        raise NashError(f"{root} is in a {where}, which holds no documents")
    return root_stat, system


class _Folder(NamedTuple):
    """A folder to list: ``rel`` is its root-relative POSIX prefix (``""`` or ending in ``/``),
    ``rules`` the ignore rules in force above it, ``ancestors`` the (device, inode) of the
    folders above it, to recognise a link back up."""

    path: Path
    rel: str
    rules: list[_IgnoreRules]
    ancestors: tuple[tuple[int, int], ...]


class _Walker:
    """The state of one crawl: what to keep, and which link targets were crawled already."""

    def __init__(
        self,
        root: Path,
        wanted: frozenset[str],
        max_bytes: int,
        follow_symlinks: bool,
        known: Mapping[str, tuple[int, int]] | None,
        system: Mapping[int, str],
    ) -> None:
        self.root_real = os.path.realpath(root)
        self.system = system  # device → type of the system filesystems mounted
        self.wanted = wanted
        self.max_bytes = max_bytes
        self.follow_symlinks = follow_symlinks
        self.known = known
        self.followed: list[str] = []  # real paths of the link targets crawled so far

    def walk(
        self, root: Path, ancestors: tuple[tuple[int, int], ...]
    ) -> Iterator[FileEntry | Skipped]:
        """Depth first, in name order, with an explicit stack: no recursion limit to hit however
        deep the tree."""
        stack: list[tuple[Iterator[os.DirEntry], _Folder]] = []
        yield from self._enter(_Folder(root, "", [], ancestors), stack)
        while stack:
            entries, folder = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            for item in self._visit(entry, folder, folder.rel + entry.name):
                if isinstance(item, _Folder):
                    yield from self._enter(item, stack)
                else:
                    yield item

    @staticmethod
    def _enter(
        folder: _Folder, stack: list[tuple[Iterator[os.DirEntry], _Folder]]
    ) -> Iterator[Skipped]:
        """List ``folder`` and push it on ``stack``, or yield why it cannot be listed."""
        try:
            with os.scandir(folder.path) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            yield Skipped(folder.path, _folder_reason(error))
            return
        try:
            rules = folder.rules + _load_ignore_rules(folder.path, folder.rel)
        except UnreadableIgnoreFile as unread:  # (as a folder that cannot be listed)
            yield Skipped(folder.path, str(unread))
            return
        stack.append((iter(entries), folder._replace(rules=rules)))

    def _visit(
        self, entry: os.DirEntry, folder: _Folder, rel: str
    ) -> Iterator[FileEntry | Skipped | _Folder]:
        path = folder.path / entry.name  # joined, not parsed again: 1.1 against 1.8 µs a file
        rules, ancestors = folder.rules, folder.ancestors
        try:
            is_link = entry.is_symlink()
            # git never follows symlinks: a link is matched by ignore rules as a file
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as error:
            yield Skipped(path, os_reason(error))
            return
        if _is_ignored(rules, rel, is_dir):
            return
        if is_dir:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as error:  # (a folder listed without search permission: r--)
                yield Skipped(path, _folder_reason(error))
                return
            key = (st.st_dev, st.st_ino)
            if key in ancestors:  # reached the crawl's own root through a followed link
                yield Skipped(path, "symlink loop")
            elif st.st_dev in self.system:  # /proc, /sys, /dev of a crawl of /
                yield Skipped(path, _system_folder(self.system[st.st_dev]), excluded=True)
            else:
                yield _Folder(path, rel + "/", rules, (*ancestors, key))
            return
        suffix = _suffix(entry.name)
        if not is_link:
            if suffix in self.wanted:
                yield _check_file(path, suffix, self.max_bytes, self.known)
            return
        problem = _symlink_problem(path)
        try:
            target_is_dir = problem is None and entry.is_dir(follow_symlinks=True)
        except OSError as error:
            problem = os_reason(error)
        if not target_is_dir and suffix not in self.wanted:
            return
        if problem is not None or not self.follow_symlinks:
            yield _unfollowed_link(path, problem, target_is_dir)
        else:
            yield from self._follow(path, rel, rules, ancestors, target_is_dir, suffix)

    def _follow(
        self,
        path: Path,
        rel: str,
        rules: list[_IgnoreRules],
        ancestors: tuple[tuple[int, int], ...],
        target_is_dir: bool,
        suffix: str,
    ) -> Iterator[FileEntry | Skipped | _Folder]:
        try:
            st = os.stat(path)
            real = os.path.realpath(path)
        except OSError as error:
            yield Skipped(path, os_reason(error))
            return
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            yield Skipped(path, "symlink loop")
        elif _is_within(real, self.root_real):
            # crawled (or deliberately left out) under its real name already: no duplicates
            yield Skipped(
                path,
                f"symlink to a {'folder' if target_is_dir else 'file'} inside the crawled folder",
            )
        elif any(_is_within(real, target) for target in self.followed):
            yield Skipped(path, "symlink to something crawled already")
        elif st.st_dev in self.system:  # a file there may block when read (/proc/kmsg)
            where = _system_folder(self.system[st.st_dev])
            yield Skipped(path, f"symlink into a {where}", excluded=True)
        else:
            self.followed.append(real)
            if target_is_dir:
                yield _Folder(path, rel + "/", rules, (*ancestors, key))
            else:
                yield _check_file(path, suffix, self.max_bytes, self.known)


def _is_within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _suffix(name: str) -> str:
    """The lower-case suffix as :class:`pathlib.Path` sees it (``"notes.MD"`` → ``".md"``),
    without building a path (the crawl asks it of every file)."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


# --------------------------------------------------------------------------------------------
