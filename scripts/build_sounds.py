#!/usr/bin/env python3
"""Build the table the canonical form uses to read Chinese homophone typos (农要 → 农药).

    .venv/bin/python scripts/build_sounds.py     # writes bot/understand/data/zh_sounds.json

Reads bot/understand/data/zh_sound_words.txt (the medical words worth correcting) and writes:
- `chars`: every CJK character's most common reading, toneless and with the sounds that southern and
  many northern speakers merge folded together (zh/z, ch/c, sh/s, ing/in, eng/en) — pypinyin's table;
- `words`: the sound key of each listed word → the word (a key two listed words share is dropped);
- `real`: the Chinese words (wordfreq's list) that sound like a listed word but are another word
  (留学 sounds like 流血), and the list's own `!` lines (餐后): the canonical form never rewrites those;
- `common`: the common two- and three-character words (the COMMON most frequent): a sound-alike that
  shares a character with one of them across its edge is two words, not a typo (上|掉下来 is not 上吊).
Deterministic. Needs pypinyin and wordfreq (the `train` extra); the bot itself reads only the JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypinyin import Style, lazy_pinyin, pinyin  # noqa: E402
from wordfreq import top_n_list  # noqa: E402

from bot.understand.sounds import fold  # noqa: E402

DATA = ROOT / "bot/understand/data"
REAL = 150_000  # the most frequent Chinese words (wordfreq): a sound-alike among them is a word, not a typo
COMMON = 120_000  # the most frequent ones of 2–3 characters that may straddle a sound-alike's edge


def main() -> int:
    lines = [line.strip() for line in (DATA / "zh_sound_words.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    words = [line for line in lines if not line.startswith("!")]
    never = {line[1:].strip() for line in lines if line.startswith("!")}
    chars: dict[str, str] = {}
    for code in range(0x4E00, 0xA000):
        ch = chr(code)
        reading = pinyin(ch, style=Style.NORMAL, errors="ignore")
        if reading and reading[0] and reading[0][0].isascii() and reading[0][0].isalpha():
            chars[ch] = fold(reading[0][0])
    keys: dict[str, str] = {}
    clash: set[str] = set()
    for word in dict.fromkeys(words):
        key = " ".join(fold(p) for p in lazy_pinyin(word, style=Style.NORMAL))  # phrase-aware readings
        if key in keys and keys[key] != word:
            clash.add(key)
        keys[key] = word
    for key in clash:
        del keys[key]
    listed = set(words)
    real = set(never)
    common = set()
    for rank, word in enumerate(top_n_list("zh", REAL)):
        if rank < COMMON and 2 <= len(word) <= 3 and all(c in chars for c in word):
            common.add(word)
        if 2 <= len(word) <= 5 and word not in listed and all(c in chars for c in word):
            if " ".join(chars[c] for c in word) in keys:
                real.add(word)
    out = {"about": "built by scripts/build_sounds.py from zh_sound_words.txt, pypinyin and wordfreq",
           "chars": chars, "words": dict(sorted(keys.items())), "real": sorted(real),
           "common": "".join(sorted(w for w in common if len(w) == 2)) + "|" + "".join(sorted(w for w in common if len(w) == 3))}
    path = DATA / "zh_sounds.json"
    path.write_text(json.dumps(out, ensure_ascii=False, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    print(json.dumps({"output": str(path), "chars": len(chars), "words": len(keys), "dropped_clashes": sorted(clash),
                      "real": len(real), "common": len(common), "bytes": path.stat().st_size}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
