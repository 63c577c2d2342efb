"""Text to words: the tokenizer that TF-IDF features, the indexer and every query share.

A module of its own, without numpy or scipy, so that `nash similar --text` can turn a query into
words without importing scipy.sparse (``features`` needs it; about 0.18 s).
"""

from __future__ import annotations

import re
import unicodedata

# Letters and digits (no underscore: snake_case identifiers split into their words).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Scripts written without spaces between words: Han, Hiragana, Katakana, Hangul syllables,
# CJK compatibility ideographs and the supplementary ideograph planes.
_CJK = re.compile(
    r"[\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    r"\U00020000-\U0002fa1f]+"
)


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens of ``text``.

    Runs of CJK characters become overlapping character bigrams (a lone character stays one
    token), so a CJK sentence is not one giant token; tokens made only of digits are dropped, and
    so are one-letter tokens of space-separated scripts (as scikit-learn's default pattern does).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    words = _WORD.findall(text)
    if text.isascii() or _CJK.search(text) is None:  # most text: the words are the tokens
        return [word for word in words if len(word) > 1 and not word.isdigit()]
    tokens: list[str] = []
    for word in words:
        pos = 0
        for run in _CJK.finditer(word):
            _add_plain(word[pos : run.start()], tokens)
            chars = run.group()
            if len(chars) == 1:
                tokens.append(chars)
            else:
                tokens.extend(chars[i : i + 2] for i in range(len(chars) - 1))
            pos = run.end()
        _add_plain(word[pos:], tokens)
    return tokens


def _add_plain(piece: str, tokens: list[str]) -> None:
    if len(piece) > 1 and not piece.isdigit():
        tokens.append(piece)
