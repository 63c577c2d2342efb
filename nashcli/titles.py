"""The title a person would give a document's text (:func:`title_of`): what its format names as
its title (front matter, a mail's Subject, Org's ``#+TITLE:``, LaTeX's ``\\title``), else its first
line that says something. Shown in ``nash similar``'s table and stored with each document.

Only the standard library is imported (``email.policy`` only for a header with encoded words).
"""

from __future__ import annotations

import re

__all__ = ["decode_header_words", "title_of", "trim_title"]

_TITLE_CHARS = 80


def trim_title(line: str) -> str:
    """``line`` as a title: whitespace collapsed, cut to 80 characters (with ``…``)."""
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
#: A Markdown code fence (```` ```python ````, ``~~~``): markup, not what the code says.
_CODE_FENCE = re.compile(r"(`{3,}|~{3,})[^`]*")
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
    (not in a comment); else the first non-empty line that is not a rule, an underline, a
    setting (Org's or reStructuredText's), an HTML comment or a code fence, whitespace
    collapsed and heading marks (Markdown's, AsciiDoc's, Org's) and whole-line emphasis
    dropped.
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
        return trim_title(title)
    in_comment = False
    for match in _LINE.finditer(text, start):  # lazily: a huge text is not split whole
        line = match.group().strip()
        if in_comment:  # (an HTML comment in Markdown, over several lines)
            if "-->" not in line:
                continue
            in_comment, line = False, line.split("-->", 1)[1].strip()
        while line.startswith("<!--"):
            in_comment = "-->" not in line[4:]
            line = "" if in_comment else line[4:].split("-->", 1)[1].strip()
        if _SETTING.match(line) or _CODE_FENCE.fullmatch(line):
            continue
        line = _HEADING_MARK.sub("", line)
        if line and not _RULE.fullmatch(line):
            emphasis = _EMPHASIS.fullmatch(line)
            return trim_title(emphasis.group("inner") if emphasis else line)
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
    return decode_header_words(titles[0].strip())


def decode_header_words(value: str) -> str:
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
