"""``.gitignore`` rules as git applies them while it walks a folder.

Git decides each path on its own as it walks: the last pattern of an ignore file that matches
*that path* (a folder or a file) decides, and a folder it ignores is never entered, so nothing
below it comes back. The crawl walks the same way, so it needs one question answered, "does
this pattern match this very path?".

``pathspec`` answers another one: whether a whole path falls under a pattern, the folder's
contents included (``!*/`` matches ``notes/a.md`` because ``notes/`` is a folder), and its
``GitIgnoreSpec`` ranks matches to mimic git on whole paths. Asked folder by folder, both
disagreed with ``git ls-files`` on rule sets people write (``*`` ``!*/`` ``!*.md``, "ignore
everything but Markdown", lost every sub-folder): 29 and 5 of 300 random rule sets in the
test against git, against none here. Hence this module: git's pattern syntax (gitignore(5)),
compiled to regular expressions.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["IgnoreFile", "compile_pattern"]

_POSIX_CLASSES = {
    "alnum": r"a-zA-Z0-9",
    "alpha": r"a-zA-Z",
    "blank": r" \t",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": r"0-9",
    "graph": r"!-~",
    "lower": r"a-z",
    "print": r" -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r" \t\n\r\f\v",
    "upper": r"A-Z",
    "xdigit": r"0-9A-Fa-f",
}


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file: ``regex`` matches a whole path relative to the file's folder
    (``basename`` patterns, those without a slash, match the last component only)."""

    regex: re.Pattern[str]
    negated: bool  # "!pattern": re-include
    only_folders: bool  # "pattern/"
    basename: bool

    def matches(self, rel: str, is_dir: bool, name: str | None = None) -> bool:
        """Whether the pattern matches ``rel`` (``name``: its last component, if known)."""
        if self.only_folders and not is_dir:
            return False
        if self.basename:
            rel = posixpath.basename(rel) if name is None else name
        return self.regex.fullmatch(rel) is not None


def compile_pattern(line: str) -> Pattern | None:
    """The pattern of one ignore-file line, or None for a blank line or a comment."""
    line = _strip_trailing_spaces(line.rstrip("\r\n"))
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:  # ("\\!" and "\\#" start a literal "!" or "#": _translate unescapes them)
        line = line[1:]
    only_folders = line.endswith("/")
    line = line.removesuffix("/")  # one: git's "foo//" is "foo/" for folders, which no path is
    if not line:
        return None
    basename = "/" not in line
    line = line.removeprefix("/")
    try:
        regex = re.compile(_translate(line), re.DOTALL)
    except re.error:  # a pattern git cannot match either: it matches nothing
        regex = re.compile(r"(?!)")
    return Pattern(regex, negated, only_folders, basename)


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces go, but not an escaped one (``"a\\ "``), scanning as git does: a
    backslash escapes the next character, an escaped backslash included."""
    cut = None  # where the run of unescaped trailing spaces starts
    i = 0
    while i < len(line):
        if line[i] == " ":
            cut = i if cut is None else cut
        else:
            cut = None
            if line[i] == "\\":
                i += 1  # the escaped character, a space or not, stays
        i += 1
    return line if cut is None else line[:cut]


def _translate(glob: str) -> str:
    """Git's wildmatch with WM_PATHNAME as a regular expression: ``*`` and ``?`` never match a
    slash; ``**`` as a whole component matches any number of folders (``**/`` leading or
    inside: zero or more; ``/**`` trailing: everything inside, at least one character)."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        if char == "*":
            j = i
            while j < n and glob[j] == "*":
                j += 1
            whole_component = (i == 0 or glob[i - 1] == "/") and (j == n or glob[j] == "/")
            if j - i >= 2 and whole_component:
                if j == n:
                    out.append(".*")
                else:  # "**/": any folders, or none
                    out.append("(?:.*/)?")
                    j += 1
            else:
                out.append("[^/]*")
            i = j
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            bracket, i = _bracket(glob, i)
            out.append(bracket)
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(glob[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _bracket(glob: str, start: int) -> tuple[str, int]:
    """The character class opening at ``glob[start] == "["`` and the index after it; an
    unclosed ``[`` is a literal bracket."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    parts: list[str] = []
    first = True
    while i < len(glob):
        char = glob[i]
        if char == "]" and not first:
            body = "".join(parts)
            return (f"(?![/])[^{body}]" if negate else f"(?![/])[{body}]"), i + 1
        first = False
        if char == "[" and glob.startswith("[:", i):
            end = glob.find(":]", i + 2)
            name = glob[i + 2 : end] if end >= 0 else None
            if name in _POSIX_CLASSES:
                parts.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
        if char == "\\" and i + 1 < len(glob):
            char = glob[i + 1]
            i += 1
        if i + 2 < len(glob) and glob[i + 1] == "-" and glob[i + 2] != "]":
            high = glob[i + 2]
            if high == "\\" and i + 3 < len(glob):
                high = glob[i + 3]
                i += 1
            # git's wildmatch takes the first end as a character of its own, then the range:
            # a reversed range, "z-a", matches "z" alone
            parts.append(
                f"{re.escape(char)}-{re.escape(high)}" if char <= high else re.escape(char)
            )
            i += 3
            continue
        parts.append(re.escape(char))
        i += 1
    return re.escape("["), start + 1


class IgnoreFile:
    """The patterns of one ignore file, relative to its folder."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.patterns = [p for p in map(compile_pattern, lines) if p is not None]

    def decide(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included (``!``), None: no pattern matches ``rel`` itself
        (a path relative to the file's folder, without a trailing slash)."""
        name = posixpath.basename(rel)  # (once, not per pattern: 8 a folder, 200 folders deep)
        for pattern in reversed(self.patterns):
            if pattern.matches(rel, is_dir, name):
                return not pattern.negated
        return None
