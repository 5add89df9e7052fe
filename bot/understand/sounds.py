"""Chinese typed by sound: a homophone the pinyin keyboard offered instead of the word meant.

People type Chinese by pinyin and often take the first character offered: 农要 for 农药 (pesticide),
一岛素 for 胰岛素, 话疗 for 化疗, 新脏 for 心脏, 中署 for 中暑. `respell(run)` writes such a string as the
medical word it sounds like, so every later layer reads the word meant. It only rewrites

- a word of the list in `data/zh_sound_words.txt` (medical nouns and fixed terms, no function words),
- when the typed characters sound the same (the reading most people give each character, toneless,
  with zh/z, ch/c, sh/s, ing/in and eng/en folded together as many speakers merge them),
- share at least one character with the word (two chance homophones side by side are too common),
- are not themselves a Chinese word (留学 sounds like 流血 but is another word: the 150,000 most frequent Chinese words),
- and, for two characters, do not share a character with a common word across their edge (上|掉下来 is
  not 上吊, 同意|书 is not 遗书): then they are parts of two words, not one word mistyped.

The table is built by `scripts/build_sounds.py`; here it is one JSON file read once, and a message is
a few dict look-ups per character.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "zh_sounds.json"
_FOLD = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_LENGTHS = (5, 4, 3, 2)


def fold(syllable: str) -> str:
    """One toneless syllable with the commonly merged sounds folded: shao → sao, qing → qin."""
    s = syllable.lower().replace("ü", "v")
    for a, b in _FOLD:
        if s.startswith(a):
            s = b + s[len(a):]
            break
    if s.endswith("ng") and s[-3:-2] in ("i", "e"):
        s = s[:-1]
    return s


class _Table:
    def __init__(self, data: dict) -> None:
        self.chars: dict[str, str] = data["chars"]
        self.words: dict[str, str] = data["words"]
        self.real = frozenset(data["real"])
        self.listed = frozenset(self.words.values())
        two, three = data["common"].split("|")
        self.common = frozenset([two[k:k + 2] for k in range(0, len(two), 2)]
                                + [three[k:k + 3] for k in range(0, len(three), 3)])

    def straddled(self, run: str, i: int, j: int) -> bool:
        """A common word of 2–3 characters crosses the edge of run[i:j] (starts before i and ends inside,
        or starts inside and ends after j)."""
        for size in (2, 3):
            for s in range(max(0, i - size + 1), i):
                if s + size <= len(run) and run[s:s + size] in self.common:
                    return True
            for s in range(max(i, j - size + 1), j):
                if s + size <= len(run) and run[s:s + size] in self.common:
                    return True
        return False


@lru_cache(maxsize=1)
def _table() -> _Table | None:
    if not DATA.is_file():
        return None
    return _Table(json.loads(DATA.read_text(encoding="utf-8")))


def respell(run: str) -> str:
    """A run of Chinese characters with every sound-alike of a listed medical word written as the word."""
    table = _table()
    if table is None or len(run) < 2:
        return run
    readings = [table.chars.get(c) for c in run]
    out: list[str] = []
    i, n = 0, len(run)
    while i < n:
        for length in _LENGTHS:
            j = i + length
            if j > n:
                continue
            typed = run[i:j]
            if typed in table.listed:
                out.append(typed)
                i = j
                break
            if None in readings[i:j]:
                continue
            word = table.words.get(" ".join(readings[i:j]))  # type: ignore[arg-type]
            if (word and typed not in table.real and any(a == b for a, b in zip(typed, word))
                    and not (length == 2 and table.straddled(run, i, j))):
                out.append(word)
                i = j
                break
        else:
            out.append(run[i])
            i += 1
    return "".join(out)
