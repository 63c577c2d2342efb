"""How file and folder names are shown to a person: control characters as escapes, so that a
name cannot drive the terminal or pass for another, and quoted for a shell in the commands nash
suggests. Plain strings in and out (no Rich: error lines use it before anything is drawn)."""

from __future__ import annotations

import re
import shlex
import unicodedata

#: Bidirectional overrides and isolates: they could show a name reversed ("txt.exe" as "exe.txt").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: The line and paragraph separators: line breaks to some terminals, nothing to others.
LINE_SEPARATORS = frozenset("\u2028\u2029")
#: What :func:`is_control` finds beyond the C0 and C1 controls.
CONTROLS_BEYOND_C0 = BIDI_CONTROLS | LINE_SEPARATORS
#: Characters that take no room and show nothing, so that a name holding one passes for the
#: name without it: zero-width space, word joiner, byte order mark, soft hyphen, directional
#: marks, invisible operators. Not the zero-width (non-)joiners: emoji and scripts need them.
INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad\u200e\u200f\u061c\u180e\u2061\u2062\u2063\u2064")
#: ... and the rest of Unicode's default-ignorable code points (DerivedCoreProperties.txt) that
#: show nothing alone: the combining grapheme joiner, Hangul fillers (blank letters), Khmer
#: inherent vowels, the invisible format characters, tags (a name of tags alone reads as the
#: name without them; not those of an emoji flag, :func:`visible`) and the unassigned
#: ignorables. Not the variation selectors that emoji (U+FE0F), Han characters (U+E0100...)
#: and traditional Mongolian (U+180B...) need.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x206F),
    (0x3164, 0x3164), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE00FF), (0xE01F0, 0xE0FFF),
)  # fmt: skip

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def is_control(ch: str) -> bool:
    """A control character (terminal escapes, CR, tabs), a bidirectional override or a line or
    paragraph separator."""
    return unicodedata.category(ch) == "Cc" or ch in CONTROLS_BEYOND_C0


def visible(text: str) -> str:
    """``text`` with control characters and bidirectional overrides as escapes (``\\n``,
    ``\\x1b``, ``\\u202e``; a backslash doubled, as ``ls -b`` shows names): a file name or a
    message that names one, shown so that it can be told apart from others
    (``new\\nline.txt`` is not ``new line.txt``) and cannot drive the terminal. Titles, which
    are prose, take ``render.plain`` instead. :func:`from_visible` reverses it."""
    shown, flag = [], False
    for ch in text:
        if flag and _TAG_FIRST <= ch <= _TAG_CANCEL:  # a subdivision flag's tags: 🏴 + England
            shown.append(ch)
            flag = ch != _TAG_CANCEL
            continue
        flag = ch == _BLACK_FLAG
        shown.append(escaped(ch) if _shown_escaped(ch) else ch)
    return "".join(shown)


#: The tags an emoji flag of a subdivision spells after U+1F3F4 (``🏴`` + ``gbeng`` + cancel).
_BLACK_FLAG, _TAG_FIRST, _TAG_CANCEL = "\U0001f3f4", "\U000e0020", "\U000e007f"


def _shown_escaped(ch: str) -> bool:
    """Whether :func:`visible` shows ``ch`` as an escape."""
    return ch == "\\" or is_control(ch) or _is_invisible(ch) or _is_surrogate(ch)


def _is_invisible(ch: str) -> bool:
    """A character that takes no room and shows nothing (:data:`INVISIBLE`)."""
    if ch in INVISIBLE:
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def _is_surrogate(ch: str) -> bool:
    """A lone surrogate: a byte of a file name that is not valid UTF-8 (``os.fsdecode`` keeps
    byte 0xNN as U+DCNN), which would reach the terminal raw, shown as "�" in every such name
    alike; :func:`visible` shows it as ``\\xNN``, which ``$'...'`` reads back as that byte."""
    return "\ud800" <= ch <= "\udfff"


_VISIBLE_ESCAPE = re.compile(
    r"\\(\\|n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4}|U00(?:0[0-9a-f]|10)[0-9a-f]{4})"
)


def from_visible(text: str) -> str:
    """The text :func:`visible` showed as ``text`` (a line read back from a watcher's log)."""

    def original(match: re.Match) -> str:
        escape = match.group(1)
        if escape[0] in "xuU":
            code = int(escape[1:], 16)
            return chr(0xDC00 + code if escape[0] == "x" and code >= 0x80 else code)
        return {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}[escape]

    return _VISIBLE_ESCAPE.sub(original, text)


def shell_quote(path: object) -> str:
    """``path`` for a command nash suggests, to paste into a shell as it is shown: quoted by
    ``shlex``, or where it holds a backslash or a control character, as ``$'...'`` pieces
    (bash, zsh) whose text :func:`visible`, which every line nash prints goes through, turns
    into exactly the escapes ``$'...'`` reads back (``$'new\\nline'``)."""
    text = str(path)
    if not any(map(_shown_escaped, text)):
        return shlex.quote(text)
    return '"\'"'.join(f"$'{piece}'" for piece in text.split("'"))


def escaped(ch: str) -> str:
    """``ch`` as :func:`visible` shows one it escapes (``\\n``, ``\\x1b``, ``\\u200b``, a byte of a
    name that is not UTF-8 as ``\\xNN``), which :func:`from_visible` and ``$'...'`` read back."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that is not UTF-8: that byte, as ls -b
        return f"\\x{code - 0xDC00:02x}"
    # (\\u beyond ASCII: bash reads $'\\x85' as the byte 0x85, $'\\u0085' as the character)
    if code > 0xFFFF:  # (a tag: \U and eight digits, as $'...' reads it)
        return f"\\U{code:08x}"
    return _ESCAPES.get(ch) or (f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}")
