"""Literal phrase search for triage: normalize a message once, find every phrase in one pass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.understand.normalize import canonical

_WORD = re.compile(r"[a-z0-9']+")
_ASCII_WORD = re.compile(r"^[a-z0-9][a-z0-9 '\-]*$")
_SPACES = re.compile(r"[^\S\n]+")


def normalize(text: str) -> str:
    """The form rules are matched against: the understanding layer's canonical form (NFKC, lower case,
    Simplified Chinese, numerals as digits, one space), so "chest   pain" and "胸口好痛" in Traditional
    characters find the same keywords."""
    return canonical(text)


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
    match whole words only, so "pain" is not found in "painting" — in every locale, for mixed text —
    and a word with a possessive or quotes around it is also its bare word ("toddler's", "'look").
    """

    def __init__(self) -> None:
        self._by_word: dict[str, list[tuple[str, int]]] = {}
        self._by_char: dict[str, list[tuple[str, int]]] = {}
        self._count = 0
        self._automaton: Any = None  # built on the first scan, after every phrase was added

    def add(self, phrases: list[str]) -> Terms:
        self._count += 1
        unique = tuple(dict.fromkeys(p for p in (normalize(x).strip() for x in phrases) if p))
        for phrase in unique:
            if _ASCII_WORD.match(phrase):
                first = _WORD.match(phrase).group()
                self._by_word.setdefault(first, []).append((phrase, self._count))
            else:
                self._by_char.setdefault(phrase[0], []).append((phrase, self._count))
        self._automaton = None
        return Terms(self._count, unique)

    def _build(self) -> Any:
        """An Aho-Corasick automaton over the CJK phrases (pyahocorasick, C): every phrase found in one
        pass, however many thousand there are, instead of a `startswith` per candidate per position."""
        import ahocorasick

        automaton = ahocorasick.Automaton()
        keys: dict[str, list[int]] = {}
        for entries in self._by_char.values():
            for phrase, key in entries:
                keys.setdefault(phrase, []).append(key)
        for phrase, phrase_keys in keys.items():
            automaton.add_word(phrase, (len(phrase), tuple(phrase_keys)))
        if keys:
            automaton.make_automaton()
        self._automaton = automaton
        return automaton

    def scan(self, text: str) -> Hits:
        hits: Hits = {}
        n = len(text)
        if self._by_word:
            for m in _WORD.finditer(text):
                for start, word in _word_forms(m.group(), m.start()):
                    for phrase, key in self._by_word.get(word, ()):
                        end = start + len(phrase)
                        if text.startswith(phrase, start) and (end == n or not _is_word_char(text[end])):
                            hits.setdefault(key, []).append((start, end))
        if self._by_char:
            automaton = self._automaton if self._automaton is not None else self._build()
            for end, (length, keys) in automaton.iter(text):
                span = (end + 1 - length, end + 1)
                for key in keys:
                    hits.setdefault(key, []).append(span)
            for spans in hits.values():
                spans.sort()
        return hits


def _word_forms(word: str, start: int) -> list[tuple[int, str]]:
    """The token and, when it carries quotes or a possessive, the bare word a phrase may start with:
    "toddler's" is also "toddler", "'look" (a quoted text) is also "look"."""
    forms = [(start, word)]
    if "'" in word:
        bare = word.lstrip("'")
        at = start + len(word) - len(bare)
        bare = bare.rstrip("'")
        if bare.endswith("'s"):
            bare = bare[:-2]
        if bare and bare != word:
            forms.append((at, bare))
    return forms


def _is_word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()

