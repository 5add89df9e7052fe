"""The first component of reading a message: one canonical form for every later component.

`canonical(text)` is what rules, values and the learned layer all read:
- NFKC (full-width ３９ → 39, ｃｈｅｓｔ → chest), lower case, straight quotes, one space;
- Traditional → Simplified Chinese with OpenCC (呼吸困難 → 呼吸困难), the same table the rules use;
- Chinese numerals next to a unit or a measurement word → digits (三十九度五 → 39度5, 孕二十周 → 孕20周,
  血压一百九 → 血压190), so "values without units" and "values in words" reach one form;
- a medical word typed by sound as written (农要 → 农药, 一岛素 → 胰岛素: bot.understand.sounds).

Pure and fast: OpenCC's converter is built once per process; the numeral pass is one regex.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from bot.understand.sounds import respell

_SPACES = re.compile(r"[^\S\n]+")
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]")
_CJK = re.compile(r"[\u3400-\u9fff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]{2,}")

_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
          "八": 8, "九": 9}
_ZH_UNIT = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = "零〇一二两三四五六七八九十百"
_UNITS = ("度", "岁", "个月", "个多月", "个半月", "个星期", "星期", "周", "礼拜", "天", "小时", "个小时", "分钟", "次", "斤",
          "公斤", "片", "粒", "颗", "瓶", "盒", "毫升", "mmol", "点")
_MEASURES = ("血压", "高压", "低压", "血糖", "血氧", "氧饱和", "心率", "心跳", "脉搏", "体温", "温度", "烧到", "发烧",
             "烧了", "孕", "怀孕", "糖")
_RUN = re.compile("[" + _NUMERAL + "]{1,6}")
_AFTER = tuple(sorted(_UNITS, key=len, reverse=True))


def zh_number(text: str) -> int | None:
    """二十五 → 25, 三百零二 → 302, 十 → 10. None when the text is not a Chinese numeral.
    The one reader of Chinese numerals: typed answers (bot.engine.answers) use it too."""
    if not text or any(c not in _DIGIT and c not in _ZH_UNIT for c in text):
        return None
    total, digit = 0, 0
    for c in text:
        if c in _DIGIT:
            digit = _DIGIT[c]
        else:
            total += (digit or 1) * _ZH_UNIT[c]
            digit = 0
    return total + digit


def _spoken_number(run: str) -> int | None:
    """A numeral as people say a reading: 一百九 → 190 (a digit straight after 百/千 counts in the next
    unit down), 三十九 → 39; None for runs of bare digits (五五) that are not a number."""
    if any(a in _DIGIT and b in _DIGIT and a not in "零〇" for a, b in zip(run, run[1:])):
        return None
    n = zh_number(run)
    if n is not None and len(run) >= 2 and run[-1] in _DIGIT and run[-2] in ("百", "千"):
        n += _DIGIT[run[-1]] * (_ZH_UNIT[run[-2]] // 10 - 1)
    return n


def _numerals(text: str) -> str:
    """Chinese numerals → digits where a unit follows or a measurement word precedes them."""
    out, last = [], 0
    for m in _RUN.finditer(text):
        start, end = m.span()
        unit = text.startswith(_AFTER, end)
        measure = text.endswith(_MEASURES, 0, start)
        if not (unit or measure):
            continue
        n = _spoken_number(m.group())
        if n is None:
            continue
        out.append(text[last:start])
        out.append(str(n))
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


_DECIMAL_AFTER_DEGREE = re.compile(r"(\d{2})度([一二三四五六七八九\d])(?![\d个天周岁])")


def _degree_decimal(match: re.Match[str]) -> str:
    d = match.group(2)
    return f"{match.group(1)}.{_DIGIT.get(d, d)}度"


@lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _traditional() -> frozenset[str]:
    """Every CJK character OpenCC changes on its own: a message without one needs no conversion."""
    chars = "".join(chr(c) for c in range(0x3400, 0xA000))
    return frozenset(a for a, b in zip(chars, _t2s().convert(chars)) if a != b)


def _respell(match: re.Match[str]) -> str:
    return respell(match.group())


def _half_width(match: re.Match[str]) -> str:
    code = ord(match.group())
    return " " if code == 0x3000 else chr(code - 0xFEE0)


@lru_cache(maxsize=1024)
def canonical(text: str) -> str:
    """The canonical form of a message (see the module docstring); recent ones are remembered, since
    the rules of each language and the learned layer all read the same message."""
    text = _FULL_WIDTH.sub(_half_width, text)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    if _CJK.search(text):
        if not _traditional().isdisjoint(text):
            text = _t2s().convert(text)
        text = _CJK_RUN.sub(_respell, text)
        if _RUN.search(text):
            text = _numerals(text)
        if "度" in text:
            text = _DECIMAL_AFTER_DEGREE.sub(_degree_decimal, text)
    return _SPACES.sub(" ", text)
