"""The title a person would give a text: what its format names as its title, else its first
line that says something."""

from __future__ import annotations

import pytest

from nashcli.titles import title_of


def test_title_is_first_nonempty_line_trimmed() -> None:
    assert title_of("\n\n   # Meeting   notes  \nbody") == "Meeting notes"
    assert title_of("") == title_of("  \n \n") == ""
    long = title_of("word " * 40)
    assert len(long) == 80 and long.endswith("…")
    assert title_of("Old Mac title\rsecond line\rthird") == "Old Mac title"  # CR line ends
    assert title_of("\r\n\r\n# Windows title\r\nbody") == "Windows title"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("---\ntitle: Weekly sync\ntags: [work]\n---\n# Agenda\n", "Weekly sync"),  # Obsidian
        ('---\r\ntitle: "Plans: 2027"\r\n---\r\nbody', "Plans: 2027"),
        ("---\ntitle: 'It''s done'\n---\n", "It's done"),
        ('+++\ntitle = "A Hugo post"\ndate = 2026-01-01\n+++\nbody', "A Hugo post"),
        ("---\ntags: [x]\n---\n\n## After the front matter\n", "After the front matter"),
        ("\ufeff---\ntitle: With a BOM\n---\n", "With a BOM"),
        (  # a news post (20 Newsgroups) or a saved mail: the Subject, folded lines joined
            "From: ann@example.org (Ann)\nSubject: Re: orbital\n  mechanics\nArticle-I.D.: x.1"
            "\nKeywords:\nLines: 2\n\nbody",
            "Re: orbital mechanics",
        ),
        ("From ann@example.org Mon Jan  1 00:00:00 2026\nFrom: ann\nSubject: Hi\n\nx", "Hi"),
        (  # a saved mail's Subject in RFC 2047 encoded words, as mail programs show it
            "From: ann\nSubject: =?utf-8?q?caf=C3=A9_notes_?=\n =?ISO-8859-1?B?bmHvdmU=?=\n\nx",
            "café notes naïve",
        ),
        ("From: ann\nSubject: is a =? b\n\nx", "is a =? b"),  # no encoded word
        ("From: ann\nSubject: =?utf-8?q?unfinished\n\nx", "=?utf-8?q?unfinished"),
        ("=?utf-8?q?caf=C3=A9?= is not a header\nx", "=?utf-8?q?caf=C3=A9?= is not a header"),
        ("Title: An essay\nAuthor: Ann\n\nBody", "An essay"),  # MultiMarkdown metadata
        ("Note: buy milk\nand eggs", "Note: buy milk"),  # one "Name: value" line is no header
        ("From: ann\nTo: bob\n\nno subject", "From: ann"),
        ("#+TITLE: An Org file\n#+AUTHOR: me\n* First heading\n", "An Org file"),
        ("#+STARTUP: overview\n#+OPTIONS: toc:nil\n** Tasks  :work:\n", "Tasks :work:"),
        ("* shopping list\n- eggs", "shopping list"),  # a Markdown bullet, the same mark
        (":orphan:\n:tocdepth: 2\n\n.. _inspect:\n\n.. note\n\npip inspect\n===", "pip inspect"),
        ("**To restore a backup**\n\nThe following example", "To restore a backup"),
        ("**Bold** start, plain end", "**Bold** start, plain end"),
        ("**One** and **two**", "**One** and **two**"),
        (
            "\\documentclass{article}\n\\title{Semantic \\emph{hashing}\\thanks{Draft.}}\n",
            "Semantic hashing",
        ),
        ("% a comment\n\\title[Short]{Long \\\\ title}\n", "Long title"),
        ("=====\nAn RST title\n=====\n\nbody", "An RST title"),  # over- and underline
        ("= An AsciiDoc title\n\nbody", "An AsciiDoc title"),
        ("----\n* * *\nAfter two rules", "After two rules"),
        ("==> arrows are text", "==> arrows are text"),
        ("A note about \\title{x}\n", "A note about \\title{x}"),  # not LaTeX: first line
        ("% \\title{Draft}\n\\documentclass{article}\n\\title{Final}\n", "Final"),  # a comment
        ("# Using Org\n\n```\n#+TITLE: Example\n```\n", "Using Org"),  # Org in a code block
        (":PROPERTIES:\n:ID: 1a2b\n:END:\n#+title: A roam note\n\nbody", "A roam note"),
        (  # no \title: the first section; \LaTeX{} is a word
            "\\documentclass{article}\n\\begin{document}\n\\section*{Using \\LaTeX{} well}\n",
            "Using LaTeX well",
        ),
        ("---\ntitle: >\n  A folded\n  long title\ntags: [a]\n---\nbody", "A folded long title"),
        ('---\ntitle: ">"\n---\nbody', ">"),  # quoted: a title, not a block
        ("\\documentclass{book}\n\\chapter{Intro\\label{ch:intro}}\n", "Intro"),
        ("Title: My Blog Post\n\nBody", "My Blog Post"),  # MultiMarkdown, one key
        ("Note: buy milk\n\nand eggs", "Note: buy milk"),
    ],
)
def test_title_is_what_the_format_names_as_title(text: str, title: str) -> None:
    """Front matter, mail headers, Org and LaTeX say what the title is; their first line
    (``---``, ``From: ...``, ``\\documentclass``) is not it, nor is a rule or an underline."""
    assert title_of(text) == title


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("<!-- markdownlint-disable MD013 -->\n# Backups\nbody", "Backups"),
        ("<!--\nCopyright 2026, licensed under...\n-->\n\nHow we deploy\n", "How we deploy"),
        ("<!-- a --><!-- b -->\nSecond", "Second"),
        ("<!-- note --> Inline after it\n", "Inline after it"),
        ("```python\nprint('hello')\n```\n", "print('hello')"),
        ("~~~\nmake install\n~~~", "make install"),
    ],
)
def test_comments_and_code_fences_are_not_titles(text: str, title: str) -> None:
    """A Markdown note that begins with an HTML comment (a linter's directive, a licence) or a
    code fence was titled "<!-- markdownlint-disable MD013 -->" or "```python"."""
    assert title_of(text) == title
