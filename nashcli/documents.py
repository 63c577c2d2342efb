"""A document file's text and title: the bytes decoded (a byte-order mark, UTF-8, else the
encoding detection finds), HTML reduced to its visible text, a saved mail (``.eml``) to its
Subject and body, a PDF's text layer through the optional ``pypdf``; and the content hash that
tells a touched file from a changed one.

:func:`read_document` turns a file :func:`nashcli.corpus.crawl` found into a :class:`Document`
or raises :class:`UnreadableFile` with a reason a person can act on. Only the standard library is
imported at module level: ``charset_normalizer``, ``email`` and ``pypdf`` are imported
by the functions that need them, so importing this module costs nothing to ``nash --help``.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import importlib.util
import logging
import os
import re
import stat
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from nashcli.errors import NashError
from nashcli.titles import decode_header_words, title_of, trim_title

if TYPE_CHECKING:
    from email.message import EmailMessage, Message

__all__ = [
    "PDF_MISSING",
    "SNIFF_BYTES",
    "Document",
    "UnreadableFile",
    "content_hash",
    "decode_text",
    "looks_decodable",
    "os_reason",
    "pdf_supported",
    "read_document",
    "read_text",
    "sniff",
]

HTML_EXTENSIONS = frozenset({".html", ".htm"})
MAIL_EXTENSIONS = frozenset({".eml"})

PDF_MISSING = "PDF support not installed: pip install 'nashcli[pdf]'"
#: How much of a file :func:`sniff` looks at to tell text from binary data.
SNIFF_BYTES = 8192
_CHUNK = 1 << 20  # content_hash reads files in pieces of this size

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


_UNDECODABLE = "undecodable bytes (not text in any known encoding)"


class UnreadableFile(NashError):
    """A file that cannot be turned into text; ``reason`` says why, in a few words.

    The indexer catches it per file and reports the file as skipped; ``str(error)`` is the reason
    alone (the path is in ``error.path`` when known). ``excluded``: the file was read and holds
    no text (as :attr:`nashcli.corpus.Skipped.excluded`: an old entry of it leaves the index):
    empty, binary, undecodable, a mail too intricate to read; not one that cannot be read now
    (a permission, an I/O error, PDF support not installed), whose old entry stays.
    """

    def __init__(self, reason: str, path: Path | None = None, *, excluded: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.excluded = excluded


@dataclass(frozen=True)
class Document:
    """A file's text and a title to show for it (HTML ``<title>``, PDF title, or
    :func:`title_of` the text)."""

    text: str
    title: str


def os_reason(error: OSError) -> str:
    """Why a file could not be listed or read, in the few words a skip report shows."""
    if isinstance(error, FileNotFoundError):
        return "vanished during crawl"
    if isinstance(error, PermissionError):
        return "unreadable: permission denied"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    return f"unreadable: {error.strerror or error}".lower()


def sniff(head: bytes) -> str | None:
    """Why ``head`` (a file's first bytes) is not text, or None when it looks like text."""
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return None
    if b"\x00" in head:
        return "binary file"
    return None


def looks_decodable(head: bytes, complete: bool) -> bool:
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


def pdf_supported() -> bool:
    """Whether the optional ``pypdf`` (extra ``nashcli[pdf]``) is installed; imports nothing."""
    return importlib.util.find_spec("pypdf") is not None


def read_text(path: Path | str) -> str:
    """The text of a document file (see :func:`read_document`); raises :class:`UnreadableFile`."""
    return read_document(path).text


def reader_of(path: Path | str) -> str:
    """Which reader ``path``'s name picks ("pdf", "mail", "html" or "text"): the same bytes
    under a name another reader takes are another document (a ``page.txt`` renamed
    ``page.html`` is its visible text and ``<title>`` now, not its markup)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix in MAIL_EXTENSIONS:
        return "mail"
    return "html" if suffix in HTML_EXTENSIONS else "text"


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
        with open_regular(path) as handle:
            data = handle.read()
    except IsADirectoryError:
        raise UnreadableFile("is a folder", path) from None
    except OSError as error:
        raise UnreadableFile(os_reason(error), path) from None
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
                pass
            if bom == codecs.BOM_UTF8:  # what is not UTF-8 after it is read as without it
                return _not_quite_utf8(data[len(bom) :], path)
            name = encoding.upper()
            raise UnreadableFile(
                f"undecodable bytes (not {name} text, though it starts with {name}'s "
                "byte-order mark)",
                path,
                excluded=True,
            )
    if sniff(data[:SNIFF_BYTES]) is not None:
        raise UnreadableFile("binary file", path, excluded=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    mixed = _mostly_utf8(data)
    return mixed if mixed is not None else _decode_legacy(data, path)


def _not_quite_utf8(data: bytes, path: Path | None) -> str:
    """Text of ``data`` that followed a UTF-8 byte-order mark yet is not UTF-8 (Notepad keeps
    a pasted Windows ``’`` as it came): read as the same bytes without the BOM are, a few stray
    bytes in UTF-8 (the BOM says UTF-8 where the rest is ASCII), else by charset detection."""
    if sniff(data[:SNIFF_BYTES]) is not None:
        raise UnreadableFile("binary file", path, excluded=True)
    mixed = _mostly_utf8(data, declared=True)
    if mixed is not None and _control_ratio(mixed) <= 0.01:
        return mixed
    return _decode_legacy(data, path)


#: Most stray bytes :func:`_mostly_utf8` reads as Windows-1252 in a UTF-8 file; beyond them
#: only Windows' punctuation (bytes 0x80-0x9F: ’ “ ” – — …, control characters in every ISO
#: encoding, so no sign of a legacy text), up to 1 % of the file.
_STRAY_BYTES = 16


def _mostly_utf8(data: bytes, declared: bool = False) -> str | None:
    """UTF-8 text with a few stray bytes of another encoding (a Windows ``’`` pasted into a
    UTF-8 note; how many: :data:`_STRAY_BYTES`), the stray bytes read as Windows-1252; None
    unless the rest holds UTF-8 beyond ASCII (or a BOM ``declared`` it UTF-8) and the stray
    bytes are few. Detection over the whole file read such a file in ISO-8859-10 ("RÃĐsumÃĐ")
    or skipped it as undecodable."""
    parts: list[str] = []
    stray = letters = start = 0  # (letters: stray bytes 0xA0-0xFF, a legacy text's letters?)
    most = max(_STRAY_BYTES, len(data) // 100)
    while True:
        try:
            parts.append(data[start:].decode("utf-8"))
            break
        except UnicodeDecodeError as error:
            bad = data[start + error.start : start + error.end]
            stray += len(bad)
            letters += sum(byte >= 0xA0 for byte in bad)
            if letters > _STRAY_BYTES or stray > most:
                return None
            parts.append(data[start : start + error.start].decode("utf-8"))
            parts.append(bad.decode("cp1252", errors="replace"))
            start += error.end
    utf8 = parts[::2]  # (the stray bytes' readings in between)
    return "".join(parts) if declared or any(not part.isascii() for part in utf8) else None


def _decode_legacy(data: bytes, path: Path | None = None) -> str:
    """Decode non-UTF-8 bytes with the encoding detection finds, or raise UnreadableFile."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data, cp_exclusion=_NOT_DETECTED)
    best = matches.best()
    if best is None:
        raise UnreadableFile(_UNDECODABLE, path, excluded=True)
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
        raise UnreadableFile(_UNDECODABLE, path, excluded=True)
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


#: Elements whose end (and start) break a line of the text; ``br`` and ``hr`` are void.
_BLOCK_TAGS = frozenset([
    "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
    "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "legend", "li", "main", "menu", "nav",
    "ol", "option", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul",
])  # fmt: skip
#: Elements whose content is not visible text (``iframe``, ``noembed``, ``noframes``: what a
#: browser shows only when it cannot show the real thing). Not ``head``: its end tag may be
#: left out (HTML5), and its text-bearing children are all here anyway.
_HIDDEN_TAGS = frozenset(
    ["script", "style", "noscript", "template", "title", "iframe", "noembed", "noframes"]
)
#: Elements whose own ``<title>`` (an icon's tooltip) is not the page's.
_FOREIGN_TAGS = frozenset(["svg", "math"])


class _VisibleText(HTMLParser):
    """The visible text of an HTML page as it streams by (no tree is built): a line break at
    each block element's start and end, nothing inside :data:`_HIDDEN_TAGS`; and the text of
    the first ``<title>`` outside SVG and MathML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] | None = None  # the first title's pieces, once it has begun
        self.title_open = False  # while that title is being read
        self.hidden: list[str] = []  # the hidden elements open now, innermost last
        self.open_hidden: Counter[str] = Counter()  # how many of each (a stack can be long)
        self.foreign = 0  # depth inside <svg> / <math>
        self.closing = False  # once the whole page has been fed

    def _close(self, tag: str) -> None:
        """End the innermost open hidden element ``tag`` and those inside it."""
        while self.hidden:
            innermost = self.hidden.pop()
            self.open_hidden[innermost] -= 1
            if innermost == tag:
                break
        self.title_open = self.title_open and self.open_hidden["title"] > 0

    def _end_open_title(self) -> None:
        """A title holds text only: a tag within it means its end tag was left out."""
        if self.hidden and self.hidden[-1] == "title":
            self._close("title")

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._end_open_title()
        if tag in _FOREIGN_TAGS:
            self.foreign += 1
        if tag in _HIDDEN_TAGS:
            self.hidden.append(tag)
            self.open_hidden[tag] += 1
            if tag == "title" and self.title is None and not self.foreign:
                self.title, self.title_open = [], True
        elif tag in _BLOCK_TAGS and not self.hidden:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self._end_open_title()
        if tag in _BLOCK_TAGS and not self.hidden:  # (<br/>; a hidden one has no content)
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag != "title":  # (</head> after a title left open)
            self._end_open_title()
        if tag in _FOREIGN_TAGS and self.foreign:
            self.foreign -= 1
        if tag in _HIDDEN_TAGS:
            if self.open_hidden[tag] > 0:  # (a stray end tag closes nothing)
                self._close(tag)
        elif tag in _BLOCK_TAGS and not self.hidden:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)
        elif self.title_open and self.hidden[-1] == "title":
            self.title.append(data)

    # Markup that never ends: once the whole page is in (``close``), whatever begins there
    # runs to the end of the page and is not shown, as in browsers (and in Python's own later
    # fix of CVE-2025-6069). Python 3.11's parser showed it as text up to the next ``>`` and
    # then read the rest of the page again from the next ``<``, each time: 64 KB of ``a<b ``
    # took 31 s and of ``<a `` 60 s, growing with the square of the length.
    def _unended(self, end: int) -> int:
        return len(self.rawdata) if end < 0 and self.closing else end

    def parse_starttag(self, i: int) -> int:
        return self._unended(super().parse_starttag(i))

    def parse_endtag(self, i: int) -> int:
        return self._unended(super().parse_endtag(i))

    def parse_pi(self, i: int) -> int:
        return self._unended(super().parse_pi(i))

    def parse_bogus_comment(self, i: int, report: bool = True) -> int:
        return self._unended(super().parse_bogus_comment(i, report))

    def parse_html_declaration(self, i: int) -> int:
        """``<![...``: a bogus comment up to the next ``>`` as browsers read it in HTML, a
        CDATA section's text in SVG and MathML. The standard library reads a marked section up
        to its ``]]>``: it asserted on a keyword it does not know, and searched the rest of the
        page again for every unclosed one."""
        raw = self.rawdata
        if self.foreign and raw.startswith("<![CDATA[", i):
            end = raw.find("]]>", i + 9)
            if end < 0:
                return self._unended(end)
            self.handle_data(raw[i + 9 : end])
            return end + 3
        if raw.startswith("<![", i):
            end = raw.find(">", i + 3)
            return self._unended(end if end < 0 else end + 1)
        return self._unended(super().parse_html_declaration(i))

    def parse_comment(self, i: int, report: bool = True) -> int:
        """A comment, ended as browsers end it (``-->``, ``--!>``; ``<!-->`` and ``<!--->``
        are empty ones), and by ``-- >`` as the standard library ends it."""
        raw = self.rawdata
        for empty in ("<!-->", "<!--->"):
            if raw.startswith(empty, i):
                return i + len(empty)
        end = _COMMENT_END.search(raw, i + 4)
        return self._unended(-1 if end is None else end.end())

    def close(self) -> None:
        self.closing = True  # no more input: what is still open stays so
        super().close()


#: The end of a comment: HTML's ``-->`` and ``--!>``, and the standard library's ``-- >``.
_COMMENT_END = re.compile(r"--!?>|--\s+>")


def _html_to_text(html: str) -> tuple[str, str]:
    """Visible text of an HTML page, one line per block element, and its ``<title>``.

    The standard library's streaming parser, not a tree: Beautiful Soup's took 29–37 s for the
    242 pages (23 MB) of a Debian ``/usr/share/doc`` where this takes 0.14–0.18× that (four
    runs; 237 of the pages give the same words, the others split words it had glued across
    block elements), and it dropped the whole body of a page that leaves out ``</head>``, as
    HTML5 allows. Markup the standard library gives up on (it asserts) ends the text there.
    """
    parser = _VisibleText()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # (the standard library's parser on markup it gives up on)
        pass  # the text read up to there
    title = " ".join("".join(parser.title or ()).split())
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = "\n".join(line for line in lines if line)
    if title and not text.startswith(title):
        text = f"{title}\n{text}" if text else title
    return text, trim_title(title)


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

    if sniff(data[:SNIFF_BYTES]) is not None:
        raise UnreadableFile("binary file", path, excluded=True)
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
        raise UnreadableFile(
            f"unreadable mail ({type(error).__name__})", path, excluded=True
        ) from None
    text = "\n\n".join(part for part in (subject, text) if part and not part.isspace())
    if not text:
        raise UnreadableFile("no text in file", path, excluded=True)
    text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates from odd bytes
    return Document(text, trim_title(subject) if subject else title_of(text))


def _check_mail_shape(rough: Message, path: Path) -> None:
    """Refuse a mail too intricate to parse in good time (:data:`_MAIL_PARTS`), judged on its
    ``compat32`` parse, which takes headers as they are (milliseconds where the modern parser
    takes minutes)."""
    for n, part in enumerate(rough.walk(), 1):
        if n > _MAIL_PARTS:
            raise UnreadableFile(f"mail of more than {_MAIL_PARTS:,} parts", path, excluded=True)
        for name, value in part.raw_items():
            if len(value) > _MAIL_CONTENT_HEADER_CHARS and name.lower().startswith("content-"):
                raise UnreadableFile(
                    f"mail with a {len(value):,}-character {name} header", path, excluded=True
                )


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
    return " ".join(decode_header_words(raw).split())


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
        # (pypdf's warnings about damaged files would garble progress bars)
        with _quiet("pypdf"), open_regular(path) as handle:
            reader = pypdf.PdfReader(handle)
            if reader.is_encrypted and not reader.decrypt(""):
                raise UnreadableFile("encrypted PDF", path, excluded=True)
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
            meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableFile:
        raise
    except OSError as error:
        raise UnreadableFile(os_reason(error), path) from None
    except Exception as error:  # pypdf raises many types for damaged files
        raise UnreadableFile(f"unreadable PDF ({type(error).__name__})", path) from None
    if not text.strip():
        raise UnreadableFile("PDF without a text layer (scanned?)", path, excluded=True)
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
    title = trim_title(meta_title)
    return "" if _NO_PDF_TITLE.fullmatch(title) else title


def open_regular(path: Path | str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (links followed), else
    IsADirectoryError for a folder and :class:`UnreadableFile` (excluded) for a pipe, socket or
    device. A file replaced by a pipe after the crawl looked at it would block a plain open, or
    the read, forever: it is opened without waiting, then checked."""
    handle = open(path, "rb", opener=_without_waiting)  # noqa: SIM115 - returned to the caller
    try:
        mode = os.fstat(handle.fileno()).st_mode
    except BaseException:
        handle.close()
        raise
    if stat.S_ISREG(mode):
        return handle
    handle.close()
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    raise UnreadableFile("not a regular file", Path(path), excluded=True)


def _without_waiting(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    except BlockingIOError:  # a lease an SMB or NFS server holds: a file, to wait for
        return os.open(path, flags)


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
        with open_regular(source) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as error:
        raise UnreadableFile(os_reason(error), Path(source)) from None
    return digest.hexdigest()
