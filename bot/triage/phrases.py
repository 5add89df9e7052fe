"""Literal phrase search for triage: normalize a message once, find every phrase in one pass."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9']+")
_ASCII_WORD = re.compile(r"^[a-z0-9][a-z0-9 '\-]*$")
_SPACES = re.compile(r"[^\S\n]+")


def normalize(text: str) -> str:
    """The form rules are matched against: NFKC (full-width → half-width), lower case, straight quotes,
    runs of spaces collapsed to one (so the keyword "chest pain" also finds "chest   pain")."""
    # Full-width ASCII (，！？０-９ Ａ-Ｚ) is most of what NFKC changes in chat text; translating it first
    # lets the common message skip the much slower full normalization.
    text = _FULL_WIDTH.sub(_half_width, text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text.lower().replace("\u2019", "'").replace("\u2018", "'"))


_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")


def _half_width(match: re.Match[str]) -> str:
    code = ord(match.group())
    return " " if code == 0x3000 else chr(code - 0xFEE0)


Span = tuple[int, int]
Hits = dict[int, list[Span]]  # Terms.key → spans found in one message


@dataclass(frozen=True)
class Terms:
    """A group of literal phrases registered in a `PhraseIndex`; its spans come from one scan."""

    key: int
    phrases: tuple[str, ...]

    def spans(self, hits: Hits) -> list[Span]:
        return hits.get(self.key, [])


class PhraseIndex:
    """Every literal phrase of one locale, found in a single pass over the message.

    A regex alternation of hundreds of phrases tries each one at every position; this index looks up
    only the phrases that start with the word (ASCII) or character (CJK) at hand, then `startswith`.
    Phrases in CJK script match anywhere (Chinese has no spaces); phrases written in ASCII letters
    match whole words only, so "pain" is not found in "painting" — in every locale, for mixed text.
    """

    def __init__(self) -> None:
        self._by_word: dict[str, list[tuple[str, int]]] = {}
        self._by_char: dict[str, list[tuple[str, int]]] = {}
        self._count = 0

    def add(self, phrases: list[str]) -> Terms:
        self._count += 1
        unique = tuple(dict.fromkeys(p for p in (normalize(x).strip() for x in phrases) if p))
        for phrase in unique:
            if _ASCII_WORD.match(phrase):
                first = _WORD.match(phrase).group()
                self._by_word.setdefault(first, []).append((phrase, self._count))
            else:
                self._by_char.setdefault(phrase[0], []).append((phrase, self._count))
        return Terms(self._count, unique)

    def scan(self, text: str) -> Hits:
        hits: Hits = {}
        n = len(text)
        if self._by_word:
            for m in _WORD.finditer(text):
                start = m.start()
                for phrase, key in self._by_word.get(m.group(), ()):
                    end = start + len(phrase)
                    if text.startswith(phrase, start) and (end == n or not _is_word_char(text[end])):
                        hits.setdefault(key, []).append((start, end))
        by_char = self._by_char
        for start, char in enumerate(text):
            for phrase, key in by_char.get(char, ()):
                if text.startswith(phrase, start):
                    hits.setdefault(key, []).append((start, start + len(phrase)))
        return hits


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()

