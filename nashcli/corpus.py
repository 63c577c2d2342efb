"""Which files of a folder are documents, and their text.

:func:`crawl` walks a folder the way a person expects an indexer to: it skips hidden files and
folders (``.git`` among them) and whatever ``.gitignore`` / ``.nashignore`` files say, keeps the
text-like files (:data:`TEXT_EXTENSIONS`, plus extension-less files that sniff as text), and
reports every file it skips on purpose with a reason a person can act on, instead of failing on it.
:func:`read_text` turns one such file into text (UTF-8, else charset detection; HTML reduced to its
visible text; a saved mail to its Subject and body; PDF through the optional ``pypdf``) or raises
:class:`UnreadableFile`.

Only the standard library is imported at module level: ``charset_normalizer``,
``bs4`` and ``pypdf`` are imported by the functions that need them, so importing this module
costs nothing to ``nash --help`` and shell completion.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import importlib.util
import logging
import math
import os
import re
import stat
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from nashcli.errors import NashError

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

    from nashcli.ignore import IgnoreFile

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IGNORE_FILES",
    "PDF_MISSING",
    "TEXT_EXTENSIONS",
    "Document",
    "FileEntry",
    "IgnoreMatcher",
    "Skipped",
    "UnreadableFile",
    "check_file",
    "content_hash",
    "crawl",
    "format_size",
    "parse_size",
    "pdf_supported",
    "read_document",
    "read_text",
    "title_of",
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

HTML_EXTENSIONS = frozenset({".html", ".htm"})
MAIL_EXTENSIONS = frozenset({".eml"})
IGNORE_FILES = (".gitignore", ".nashignore")
"""Ignore files read in every folder, in this order (a ``.nashignore`` rule wins over a
``.gitignore`` rule in the same folder; rules of a deeper folder win over shallower ones)."""

PDF_MISSING = "PDF support not installed: pip install 'nashcli[pdf]'"
#: How a sub-folder that cannot be listed is reported: the documents indexed under it keep
#: their entries (they are not known to be gone).
UNREADABLE_FOLDER = "unreadable folder"
SNIFF_BYTES = 8192
_CHUNK = 1 << 20

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

_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Encodings charset detection may not propose: without a BOM, UTF-16/32 text of any script has
# NUL bytes (which the sniff already calls binary), and UTF-7 or EBCDIC "match" short Latin text.
_NOT_DETECTED = [
    "utf_16",
    "utf_16_be",
    "utf_16_le",
    "utf_32",
    "utf_32_be",
    "utf_32_le",
    "utf_7",
    "cp037",
    "cp500",
    "cp1026",
    "cp1140",
]
# charset-normalizer often ranks a Baltic or Central European code page first for Western text
# (their letters overlap); cp1252 is the legacy encoding most such files really use, so it wins
# when its decoding is (nearly) as coherent as the top guess. Measured on French, German and
# English samples; Polish, Russian, Greek, Japanese and Chinese samples keep their own encoding.
_CP1252_TOLERANCE = 0.1


class UnreadableFile(NashError):
    """A file that cannot be turned into text; ``reason`` says why, in a few words.

    The indexer catches it per file and reports the file as skipped; ``str(error)`` is the reason
    alone (the path is in ``error.path`` when known). ``excluded``: the file was read and holds
    no text (as :attr:`Skipped.excluded`: an old entry of it leaves the index).
    """

    def __init__(self, reason: str, path: Path | None = None, *, excluded: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.excluded = excluded


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


@dataclass(frozen=True)
class Document:
    """A file's text and a title to show for it (HTML ``<title>``, PDF title, or
    :func:`title_of` the text)."""

    text: str
    title: str


# --------------------------------------------------------------------------------------------
# Sizes (for --max-size)


def format_size(n_bytes: int) -> str:
    """``10_000_000`` → ``"10 MB"``: decimal units, as file managers show them, and at most four
    significant digits, rounded down, so "larger than 1.999 KB" stays true of what exceeds a
    limit of 1,999 bytes (rounded to "2 KB" it was not; 999.9 KB read "1e+03 KB")."""
    if n_bytes < 1000:
        return "1 byte" if n_bytes == 1 else f"{n_bytes} bytes"
    power = 1
    while power < len(_DECIMAL_UNITS) and n_bytes >= 1000 ** (power + 1):
        power += 1
    unit = 1000**power
    decimals = max(0, 4 - len(str(n_bytes // unit)))
    whole, fraction = divmod(n_bytes * 10**decimals // unit, 10**decimals)
    shown = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{whole}{'.' + shown if shown else ''} {_DECIMAL_UNITS[power - 1]}"


_DECIMAL_UNITS = ("KB", "MB", "GB", "TB")


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


def _load_ignore_rules(directory: Path, base: str) -> list[_IgnoreRules]:
    from nashcli.ignore import IgnoreFile

    rules = []
    for name in IGNORE_FILES:
        try:
            path = directory / name
            if path.is_symlink():  # git reads no ignore file through a link (since 2.32)
                continue
            # utf-8-sig: Notepad starts the file with a byte-order mark, which git skips
            # (bytes decoded, not read_text: its universal newlines make a lone CR a line end)
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
        except OSError:  # absent, unreadable or vanished: no rules from it
            continue
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
        return _os_reason(error)
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


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "vanished during crawl"
    if isinstance(error, PermissionError):
        return "unreadable: permission denied"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    return f"unreadable: {error.strerror or error}".lower()


def _sniff(head: bytes) -> str | None:
    """Why ``head`` (a file's first bytes) is not text, or None when it looks like text."""
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return None
    if b"\x00" in head:
        return "binary file"
    return None


def _looks_decodable(head: bytes, complete: bool) -> bool:
    """Whether ``head`` decodes as UTF-8 or as some encoding detection trusts."""
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8")
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
        return True
    except UnicodeDecodeError:
        if encoding != "utf-8":
            return False
    try:
        _decode_legacy(head)
        return True
    except UnreadableFile:
        return False


def _is_utf8(text: str) -> bool:
    """False for a name with bytes the file system encoding could not decode (surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown_path(path: Path | str) -> str:
    """``path`` printable whatever its bytes: undecodable ones as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _check_file(
    path: Path, suffix: str, max_bytes: int, known: Mapping[str, tuple[int, int]] | None = None
) -> FileEntry | Skipped:
    if not _is_utf8(str(path)):  # the index stores paths as UTF-8 text
        if _is_utf8(path.name):
            return Skipped(path, "folder name is not valid UTF-8 (rename the folder to index it)")
        return Skipped(path, "file name is not valid UTF-8 (rename the file to index it)")
    try:
        st = os.stat(path)
    except OSError as error:
        return Skipped(path, _os_reason(error))
    if not stat.S_ISREG(st.st_mode):  # FIFOs, sockets, devices: reading could block forever
        return Skipped(path, "not a regular file", excluded=True)
    if st.st_size == 0:
        return Skipped(path, "empty file", excluded=True)
    if st.st_size > max_bytes:
        return Skipped(path, f"larger than {format_size(max_bytes)} (--max-size)", excluded=True)
    if suffix == ".pdf":
        if not pdf_supported():
            return Skipped(path, PDF_MISSING)
        return FileEntry(path, st.st_size, st.st_mtime_ns)
    if known is not None and known.get(str(path)) == (st.st_size, st.st_mtime_ns):
        # Sniffed when it was indexed, and unchanged since by size and time: an update of a
        # large folder then reads the file's metadata only, not its first block.
        return FileEntry(path, st.st_size, st.st_mtime_ns)
    try:
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as error:
        return Skipped(path, _os_reason(error))
    reason = _sniff(head)
    if reason is None and suffix == "" and not _looks_decodable(head, len(head) >= st.st_size):
        reason = "binary file"
    if reason is not None:
        return Skipped(path, reason, excluded=True)
    return FileEntry(path, st.st_size, st.st_mtime_ns)


def pdf_supported() -> bool:
    """Whether the optional ``pypdf`` (extra ``nashcli[pdf]``) is installed; imports nothing."""
    return importlib.util.find_spec("pypdf") is not None


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
            problem = _os_reason(error)
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
                    self._rules[prefix] = rules + _load_ignore_rules(self.root / prefix, prefix)
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
        reason = _os_reason(error).removeprefix("unreadable: ")
        raise NashError(f"cannot read the folder {root}: {reason}") from None
    walker = _Walker(root, wanted, max_bytes, follow_symlinks, known, system)
    yield from walker.walk(root, ((root_stat.st_dev, root_stat.st_ino),))


def check_root(root: Path) -> tuple[os.stat_result, dict[int, str]]:
    """``root``'s stat and the system filesystems mounted (:func:`system_filesystems`), or the
    one-line :class:`NashError` for a root no crawl takes: missing, unreadable, not valid
    UTF-8, or on a system filesystem (``nash watch`` asks before it starts watching)."""
    if not _is_utf8(str(root)):
        raise NashError(
            f"{shown_path(root)}: the path is not valid UTF-8 and the index stores paths as "
            "text; rename the folder with the \\x bytes to index it"
        )
    try:
        root_stat = os.stat(root)
    except FileNotFoundError:
        raise NashError(f"no such file or folder: {root}") from None
    except OSError as error:
        raise NashError(f"cannot read {root}: {_os_reason(error)}") from None
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
            reason = _os_reason(error)
            if reason.startswith("unreadable"):
                reason = UNREADABLE_FOLDER + reason[len("unreadable") :]
            yield Skipped(folder.path, reason)
            return
        rules = folder.rules + _load_ignore_rules(folder.path, folder.rel)
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
            yield Skipped(path, _os_reason(error))
            return
        if _is_ignored(rules, rel, is_dir):
            return
        if is_dir:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as error:
                yield Skipped(path, _os_reason(error))
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
            problem = _os_reason(error)
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
            yield Skipped(path, _os_reason(error))
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
# Reading


def read_text(path: Path | str) -> str:
    """The text of a document file (see :func:`read_document`); raises :class:`UnreadableFile`."""
    return read_document(path).text


def read_document(path: Path | str) -> Document:
    """Read a file found by :func:`crawl` as a :class:`Document`.

    Plain text is decoded as UTF-8 (a byte-order mark selects UTF-8/16/32), else with the
    encoding ``charset-normalizer`` detects (cp1252 preferred when it fits as well: see
    ``_CP1252_TOLERANCE``). HTML is reduced to its visible text (scripts and styles dropped), its
    ``<title>`` becomes the title. A saved mail (``.eml``) is its Subject and body text (see
    :func:`_read_mail`). PDF text comes from ``pypdf``. Raises :class:`UnreadableFile`
    for binary content, bytes no encoding explains, a file that has no text, cannot be read or
    has vanished.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _read_pdf(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        raise UnreadableFile("is a folder", path) from None
    except OSError as error:
        raise UnreadableFile(_os_reason(error), path) from None
    if not data:
        raise UnreadableFile("empty file", path, excluded=True)
    if suffix in MAIL_EXTENSIONS:
        mail = _read_mail(data, path)
        if mail is not None:
            return mail
    text = decode_text(data, path)
    del data
    if suffix in HTML_EXTENSIONS:
        text, title = _html_to_text(text)
    else:
        title = ""
    if not text or text.isspace():  # (no .strip(): that would copy a big text)
        raise UnreadableFile("no text in file", path, excluded=True)
    return Document(text, title or title_of(text))


def decode_text(data: bytes, path: Path | None = None) -> str:
    """Text of ``data`` the way a document file's bytes are read (BOM, UTF-8, else the detected
    encoding); :class:`UnreadableFile` for binary data or bytes no encoding explains."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise UnreadableFile(f"undecodable bytes (bad {encoding})", path) from None
    if _sniff(data[:SNIFF_BYTES]) is not None:
        raise UnreadableFile("binary file", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode_legacy(data, path)


def _decode_legacy(data: bytes, path: Path | None = None) -> str:
    """Decode non-UTF-8 bytes with the encoding detection finds, or raise UnreadableFile."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data, cp_exclusion=_NOT_DETECTED)
    best = matches.best()
    if best is None:
        raise UnreadableFile("undecodable bytes (not text in any known encoding)", path)
    encoding = best.encoding
    for match in matches:
        if "cp1252" in (match.encoding, *match.could_be_from_charset) and (
            match.chaos <= best.chaos + _CP1252_TOLERANCE
        ):
            encoding = "cp1252"
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = str(best)
    if _control_ratio(text) > 0.01:
        raise UnreadableFile("undecodable bytes (not text in any known encoding)", path)
    return text


def _control_ratio(text: str, sample: int = 100_000) -> float:
    """The share of control characters (other than whitespace) among the first characters."""
    head = text[:sample]
    if not head:
        return 0.0
    bad = sum(
        1 for ch in head if ch not in "\t\n\r\f\v" and unicodedata.category(ch) in ("Cc", "Co")
    )
    return bad / len(head)


_BLOCK_TAGS = [
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
]  # fmt: skip


def _html_to_text(html: str) -> tuple[str, str]:
    """Visible text of an HTML page, one line per block element, and its ``<title>``."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = " ".join(soup.title.get_text(" ").split()) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "title"]):
        tag.decompose()
    for tag in soup(_BLOCK_TAGS):
        tag.append("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    text = "\n".join(line for line in lines if line)
    if title and not text.startswith(title):
        text = f"{title}\n{text}"
    return text, _trim(title)


#: How much of a mail's Subject is read: the standard library's header parser takes time
#: quadratic in a header's length (a 660 KB Subject: 25 s), and a title is 80 characters.
_MAIL_SUBJECT_CHARS = 2_000
#: A mail's shape past which it is not read: the header parser's time grows faster than the
#: length of a ``Content-Type`` (100 KB of parameters: 18 s) and with the number of parts
#: (20,000: 22 s); real mail stays far below both.
_MAIL_PARTS = 1_000
_MAIL_CONTENT_HEADER_CHARS = 4_000
#: Charset labels that mean Windows-1252 in practice: its curly quotes (0x93, 0x94) are
#: control characters in ISO 8859-1 proper.
_READ_AS_CP1252 = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1"})
#: Text types of a mail part that are prose, read when no plain or HTML part has text.
_PROSE_TYPES = ("text/markdown", "text/x-markdown", "text/enriched", "text/richtext", "text/x-rst")
#: Headers every saved mail has one of; a ``.eml`` file with none is read as plain text (its
#: ``Note: ...`` lines are no headers).
_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "mime-version",
     "content-type", "return-path", "sender", "reply-to", "newsgroups"}
)  # fmt: skip


def _read_mail(data: bytes, path: Path) -> Document | None:
    """A saved mail (``.eml``): its Subject, then the text of its body (see :func:`_mail_body`);
    headers, quoted-printable or base64 transfer encodings and attachments are not the text. The
    Subject, RFC 2047 words decoded, is the title. None for a file without a single mail header:
    a text file named ``.eml``, read as any other."""
    import email
    import email.policy

    if _sniff(data[:SNIFF_BYTES]) is not None:
        raise UnreadableFile("binary file", path)
    if data.startswith(codecs.BOM_UTF8):  # an editor's BOM would hide the headers
        data = data[len(codecs.BOM_UTF8) :]
    try:
        _check_mail_shape(email.message_from_bytes(data, policy=email.policy.compat32), path)
        message = email.message_from_bytes(data, policy=email.policy.default)
        if not any(name.lower() in _MAIL_HEADERS for name, _ in message.raw_items()):
            return None
        subject = _mail_subject(message)
        text = _mail_body(message)
    except UnreadableFile:
        raise
    except Exception as error:  # noqa: BLE001 - the email package's rare failures on damaged mail
        raise UnreadableFile(f"unreadable mail ({type(error).__name__})", path) from None
    text = "\n\n".join(part for part in (subject, text) if part and not part.isspace())
    if not text:
        raise UnreadableFile("no text in file", path, excluded=True)
    text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates from odd bytes
    return Document(text, _trim(subject) if subject else title_of(text))


def _check_mail_shape(rough: Message, path: Path) -> None:
    """Refuse a mail too intricate to parse in good time (:data:`_MAIL_PARTS`), judged on its
    ``compat32`` parse, which takes headers as they are (milliseconds where the modern parser
    takes minutes)."""
    for n, part in enumerate(rough.walk(), 1):
        if n > _MAIL_PARTS:
            raise UnreadableFile(f"mail of more than {_MAIL_PARTS:,} parts", path)
        for name, value in part.raw_items():
            if len(value) > _MAIL_CONTENT_HEADER_CHARS and name.lower().startswith("content-"):
                raise UnreadableFile(f"mail with a {len(value):,}-character {name} header", path)


def _mail_subject(message: EmailMessage) -> str:
    """The Subject, whitespace collapsed: raw 8-bit bytes (older mail writes them unencoded)
    read as UTF-8, else in the charset the mail names, else as a document's bytes are; then
    RFC 2047 words decoded."""
    raw = next((value for name, value in message.raw_items() if name.lower() == "subject"), "")
    raw = raw[:_MAIL_SUBJECT_CHARS]
    if any("\udc80" <= ch <= "\udcff" for ch in raw):  # bytes the parser could not decode
        data = raw.encode("utf-8", "surrogateescape")
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raw = _decode_with_charset(data, message.get_content_charset())
    return " ".join(_decoded_header(raw).split())


def _mail_body(message: EmailMessage) -> str:
    """The text of a mail's body: its plain-text part (with the inline plain-text parts beside
    it), else the visible text of its HTML part (an empty plain twin gives way); failing both,
    the first such part anywhere (a forwarded message, a body sent as an attachment) or a prose
    one (``text/markdown``; not ``text/csv`` or ``text/calendar``), or the raw body of a
    multipart whose boundaries are broken, as mail programs show it."""
    text = _with_inline_siblings(message, message.get_body(preferencelist=("plain",)))
    if not text or text.isspace():
        text = _mail_part_text(message.get_body(preferencelist=("html",)))
    if text and not text.isspace():
        return text
    for wanted in ("text/plain", "text/html", *_PROSE_TYPES):
        for part in message.walk():
            if part.get_content_type() == wanted:
                text = _mail_part_text(part)
                if text and not text.isspace():
                    return text
    if message.get_content_maintype() == "multipart" and not message.is_multipart():
        return _decode_with_charset(message.get_payload(decode=True) or b"", None)
    return ""


def _with_inline_siblings(message: EmailMessage, body: EmailMessage | None) -> str:
    """The text of a plain-text ``body`` and of the inline plain-text parts beside it in its
    ``multipart/mixed``: a body split around an inline picture (as Apple Mail sends one)."""
    for part in message.walk():
        if part.get_content_type() == "multipart/mixed":
            children = list(part.iter_parts())
            if any(child is body for child in children):
                texts = (
                    _mail_part_text(child)
                    for child in children
                    if child.get_content_type() == "text/plain"
                    and child.get_content_disposition() != "attachment"
                )
                return "\n\n".join(text for text in texts if text and not text.isspace())
    return _mail_part_text(body)


def _mail_part_text(part: EmailMessage | None) -> str:
    """A text part's text, an HTML one's visible text; ``""`` for none."""
    if part is None:
        return ""
    text = _decode_with_charset(part.get_payload(decode=True) or b"", part.get_content_charset())
    return _html_to_text(text)[0] if part.get_content_subtype() == "html" else text


def _decode_with_charset(data: bytes, charset: str | None) -> str:
    """``data`` in the charset a mail names, else as a document file's bytes are read; ``""``
    for bytes that are no text."""
    if charset:
        if charset.lower() in _READ_AS_CP1252:  # as mail programs and browsers read them
            with contextlib.suppress(UnicodeDecodeError):
                return data.decode("cp1252")
        with contextlib.suppress(LookupError, ValueError):  # unknown or broken codecs
            return data.decode(charset)
    try:
        return decode_text(data)
    except UnreadableFile:
        return ""


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's log records and warnings for a moment (restored afterwards)."""
    logger = logging.getLogger(logger_name)  # its child loggers inherit the level
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _read_pdf(path: Path) -> Document:
    if not pdf_supported():
        raise UnreadableFile(PDF_MISSING, path)
    try:
        import pypdf
    except ImportError:
        raise UnreadableFile(PDF_MISSING, path) from None
    try:
        with _quiet("pypdf"):  # its warnings about damaged files would garble progress bars
            reader = pypdf.PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise UnreadableFile("encrypted PDF", path)
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
            meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableFile:
        raise
    except OSError as error:
        raise UnreadableFile(_os_reason(error), path) from None
    except Exception as error:  # pypdf raises many types for damaged files
        raise UnreadableFile(f"unreadable PDF ({type(error).__name__})", path) from None
    if not text.strip():
        raise UnreadableFile("PDF without a text layer (scanned?)", path)
    return Document(text, _pdf_title(str(meta_title)) or title_of(text))


#: PDF metadata titles that name no document: the file a PDF was printed from
#: ("Microsoft Word - report.docx", "paper.dvi") or a program's placeholder ("Untitled-1").
_NO_PDF_TITLE = re.compile(
    r"microsoft \w+ - .*|.*\.(?:docx?|odt|rtf|pptx?|xlsx?|tex|dvi|ps|pdf|indd|pages)"
    r"|untitled\b.*|no title|title|powerpoint presentation",
    re.I,
)


def _pdf_title(meta_title: str) -> str:
    """A PDF's metadata title, or ``""`` where it names no document (:data:`_NO_PDF_TITLE`)."""
    title = _trim(meta_title)
    return "" if _NO_PDF_TITLE.fullmatch(title) else title


# --------------------------------------------------------------------------------------------
# Titles and hashes

_TITLE_CHARS = 80


def _trim(line: str) -> str:
    line = " ".join(line.split())
    if len(line) > _TITLE_CHARS:
        line = line[: _TITLE_CHARS - 1].rstrip() + "…"
    return line


#: A line (or its first 10,000 characters) for :func:`title_of`; old Macs end lines with "\r".
_LINE = re.compile(r"[^\r\n]{1,10000}")

#: How much of a text's start :func:`title_of` searches for front matter, headers and keywords.
_TITLE_HEAD = 20_000

#: YAML (``---``) or TOML (``+++``) front matter, as Jekyll, Hugo and Obsidian notes begin.
_FRONT_MATTER = re.compile(
    r"\A(?P<fence>---|\+\+\+)[ \t]*\r?\n(?P<body>(?:.*?\r?\n)?)(?P=fence)[ \t]*(?:\r?\n|\Z)",
    re.DOTALL,
)
#: A top-level ``title: ...`` (YAML) or ``title = ...`` (TOML) key of the front matter.
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*[:=][ \t]*(?P<value>.*?)[ \t\r]*$", re.I | re.M)
#: One line of a mail or news header block (``From: ...``); mbox files begin with ``From ``.
_HEADER_LINE = re.compile(r"(?P<name>[!-9;-~]+):[ \t]*(?P<value>.*)\Z")  # RFC 5322's names
#: Org mode's ``#+TITLE:`` keyword.
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(?P<value>\S.*?)[ \t\r]*$", re.I | re.M)
#: LaTeX's ``\title[short]{`` (its argument is read up to the matching brace), else the first
#: ``\section{`` or ``\chapter{``.
_LATEX_TITLE = re.compile(r"\\title[ \t]*(?:\[[^\]]*\])?[ \t]*\{")
_LATEX_HEADING = re.compile(r"\\(?:chapter|section)\*?[ \t]*(?:\[[^\]]*\])?[ \t]*\{")
#: ``\TeX``, ``\LaTeX{}``, ``\LaTeXe``: commands that are words (kept as ``TeX``, ``LaTeX2e``).
_LATEX_LOGO = re.compile(r"\\(LaTeXe|LaTeX|TeX)(?![A-Za-z])(?:\{\})?")
_LATEX_COMMENT = re.compile(r"(?<!\\)%[^\r\n]*")
_LATEX_COMMAND = re.compile(
    r"\\(?:thanks|footnote|label|ref|cite)\{[^{}]*\}|\\[A-Za-z]+\*?|\\[\\ ,;!]|[{}~]"
)
#: Markdown's heading mark (``##``), AsciiDoc's or Org's (``== ``, ``** ``, with a space).
_HEADING_MARK = re.compile(r"\A(?:#+|[=*]+(?=\s))\s*")
#: Markup lines that set things rather than say them: an Org keyword (``#+STARTUP: overview``),
#: reStructuredText's comments, directives and targets (``.. _label:``) and its file-wide
#: fields (``:orphan:``, ``:tocdepth: 2``).
_SETTING = re.compile(r"#\+\w+:|\.\.(?:\s|\Z)|:[^:\s]+:(?:\s|\Z)")
#: A line wrapped whole in emphasis (``**To restore a backup**``), the marks dropped.
_EMPHASIS = re.compile(r"(\*\*?|__?)(?=\S)(?P<inner>(?:(?!\1).)+)(?<=\S)\1")
#: A line of one repeated mark (``=====``, ``----``, ``* * *``): reStructuredText over- and
#: underlines and horizontal rules, never a title.
_RULE = re.compile(r"([^\w\s])(?:\s*\1)*")


def title_of(text: str) -> str:
    """The title a person would give a text, cut to 80 characters (with ``…``); ``""`` for a
    text without one.

    The ``title`` of YAML or TOML front matter (otherwise the first line after it); the
    ``Subject`` of a mail or news header block, RFC 2047 encoded words decoded (or its
    ``Title``: MultiMarkdown metadata); Org's leading ``#+TITLE:``; LaTeX's ``\\title{...}``
    (not in a comment); else the first non-empty line that is not a rule, an underline or a
    setting (Org's or reStructuredText's), whitespace collapsed and heading marks (Markdown's,
    AsciiDoc's, Org's) and whole-line emphasis dropped.
    """
    start = 1 if text.startswith("\ufeff") else 0  # a byte-order mark read as text
    head = text[start : start + _TITLE_HEAD]
    front = _FRONT_MATTER.match(head)
    if front:
        title = _front_matter_title(front.group("body"))
        start += front.end()
    else:
        title = _header_title(head) or _org_title(head) or _latex_title(head)
    if title:
        return _trim(title)
    for match in _LINE.finditer(text, start):  # lazily: a huge text is not split whole
        line = match.group().strip()
        if _SETTING.match(line):
            continue
        line = _HEADING_MARK.sub("", line)
        if line and not _RULE.fullmatch(line):
            emphasis = _EMPHASIS.fullmatch(line)
            return _trim(emphasis.group("inner") if emphasis else line)
    return ""


def _front_matter_title(body: str) -> str:
    """The ``title`` value of a front matter block, unquoted; ``""`` without one."""
    match = _FRONT_MATTER_TITLE.search(body)
    value = match.group("value") if match else ""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        quote, value = value[0], value[1:-1]
        value = value.replace("''", "'") if quote == "'" else value.replace('\\"', '"')
    if match and match.group("value") in ("|", ">", "|-", ">-", "|+", ">+"):  # a block
        block = []
        for line in body[match.end() :].splitlines()[1:]:
            if not line.startswith((" ", "\t")):
                break
            block.append(line.strip())
        value = " ".join(block)
    return value


def _header_title(head: str) -> str:
    """The ``Subject`` (or ``Title``, as MultiMarkdown metadata says it) of a text that begins
    with a mail or news header block (two or more ``Name: value`` lines up to the first blank
    line, or a ``Title:`` line alone); ``""`` otherwise."""
    lines = head.lstrip("\r\n").splitlines()
    if lines and lines[0].startswith("From "):  # an mbox separator line
        lines = lines[1:]
    headers: list[list[str]] = []
    for line in lines:
        if not line.strip():
            break
        if line[0] in " \t" and headers:  # a folded header goes on
            headers[-1][1] += " " + line.strip()
            continue
        match = _HEADER_LINE.match(line)
        if not match:
            return ""
        headers.append([match.group("name").lower(), match.group("value")])
    titles = [value for name, value in headers if name in ("subject", "title")]
    if not titles or (len(headers) < 2 and headers[0][0] != "title"):  # one line: "Note: ..."
        return ""
    return _decoded_header(titles[0].strip())


def _decoded_header(value: str) -> str:
    """A header value with its RFC 2047 encoded words (``=?utf-8?q?caf=C3=A9?=``) decoded, as
    mail programs show them; the value as written when it has none or they do not decode."""
    if "=?" not in value:
        return value
    import email.policy  # only for the few texts that need it

    try:
        decoded = str(email.policy.default.header_fetch_parse("Subject", value)).strip()
    except Exception:  # noqa: BLE001 - a malformed header must not stop indexing
        return value
    if "\ufffd" in decoded and "\ufffd" not in value:  # bytes its charset does not explain
        return value
    return decoded or value


def _org_title(head: str) -> str:
    """Org's ``#+TITLE:`` among the lines an Org file starts with: keywords (``#+KEY: ...``),
    comments (``# ...``) and property drawers (``:ID: ...``, as org-roam writes); one further
    down (a code block of a Markdown file) is text."""
    for match in _LINE.finditer(head):
        line = match.group().strip()
        title = _ORG_TITLE.match(line)
        if title:
            return title.group("value")
        if line and not line.startswith(("#+", "# ", ":")) and line != "#":
            return ""
    return ""


def _latex_title(head: str) -> str:
    """The argument of ``\\title`` (else of the first ``\\chapter`` or ``\\section``) in a text that
    starts like LaTeX (``\\`` or ``%``)."""
    if not head.lstrip().startswith(("\\", "%")):
        return ""
    head = _LATEX_COMMENT.sub("", head)  # a commented-out \title is no title
    match = _LATEX_TITLE.search(head) or _LATEX_HEADING.search(head)
    if not match:
        return ""
    depth, end = 1, match.end()
    while end < len(head) and depth:
        depth += {"{": 1, "}": -1}.get(head[end], 0)
        end += 1
    if depth:
        return ""
    logos = _LATEX_LOGO.sub(
        lambda m: m.group(1).replace("LaTeXe", "LaTeX2e"), head[match.end() : end - 1]
    )
    return _LATEX_COMMAND.sub(" ", logos)


def content_hash(source: Path | str | bytes | bytearray | memoryview) -> str:
    """BLAKE2b (128-bit, hex) of a file's bytes, read in 1 MiB chunks, or of the bytes given.

    The indexer compares it after size or mtime changed, so a touched but unchanged file is not
    re-encoded. Raises :class:`UnreadableFile` when the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    if isinstance(source, (bytes, bytearray, memoryview)):
        digest.update(source)
        return digest.hexdigest()
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as error:
        raise UnreadableFile(_os_reason(error), Path(source)) from None
    return digest.hexdigest()
