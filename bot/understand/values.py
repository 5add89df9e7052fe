"""Values written in a message: temperature, blood pressure, glucose, oxygen saturation, a baby's age.

Read from the canonical text (bot.understand.normalize), with or without units: "39.5度", "temp 104",
"102.5f", "bp 190/120", "血压190", "sugar 28", "血糖二十多" (→ 20), "o2 88", "血氧88", "45天", "6 week old".
Each value is a plain number in one unit (°C, mmHg, mmol/L, %, months) so rules and the learned layer
can compare it with a threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"(\d{1,3}(?:\.\d{1,2})?)"
_TEMP = [
    re.compile(_NUM + r"\s*(?:度|°c|℃|°|c\b|deg|degrees?)"),
    re.compile(r"(?:发烧|烧到|体温|高烧|发热|temp(?:erature)?|fever(?: of)?|febre)\s*(?:is|of|到|了|是|:)?\s*" + _NUM),
    re.compile(_NUM + r"\s*f\b"),
]
_BP = re.compile(r"(?:bp|血压|blood pressure|高压|pressure)\D{0,8}(\d{2,3})(?:\s*/\s*(\d{2,3}))?")
_BP_BARE = re.compile(r"\b(\d{2,3})\s*/\s*(\d{2,3})\b")
_GLUCOSE = re.compile(r"(?:血糖|糖|sugar|glucose|bg|bs|bgl)\D{0,8}" + _NUM)
_SPO2 = re.compile(r"(?:血氧|氧饱和度?|o2|spo2|sats?|oxygen|ox)\D{0,8}" + _NUM)
_AGE = re.compile(r"(?:(?:宝宝|婴儿|孩子|娃|儿子|女儿|baby|bub|son|daughter|my|our|his|her)\s*(?:才|刚|只有|出生|刚出生|生下来|is|was|is only|just)?\s*)"
                  r"(\d{1,3})\s*(?:个[多半]?月|个星期|星期|周|天|days?|weeks?|wks?|months?|mths?|mo)"
                  r"|(\d{1,3})\s*(?:个[多半]?月|个星期|星期|周|天|days?|weeks?|wks?|months?|mths?|mo)\s*(?:大|的宝宝|的孩子|的婴儿|的娃|old)")
_AGE_UNIT = re.compile(r"(个[多半]?月|months?|mths?|mo)|(个星期|星期|周|weeks?|wks?)|(天|days?)")
_BABY = re.compile(r"宝宝|婴儿|孩子|娃|新生儿|baby|bub|infant|newborn|son|daughter|little one|kid|old")
_GESTATION = re.compile(r"(?:孕|怀孕|pregnant|gestation)\D{0,6}(\d{1,2})\s*(?:周|w|weeks?|wks?)|(\d{1,2})\s*(?:weeks?|wks?) pregnant")


@dataclass(frozen=True)
class Values:
    temperature_c: float | None = None
    systolic: int | None = None
    glucose_mmol: float | None = None
    spo2: int | None = None
    baby_age_months: float | None = None
    gestation_weeks: int | None = None

    def flags(self) -> tuple[str, ...]:
        """Coarse facts for rules and the learned layer ("temp>=39", "spo2<92"…)."""
        out = []
        t = self.temperature_c
        if t is not None:
            out += [f for f, ok in (("temp>=38", t >= 38), ("temp>=39", t >= 39), ("temp>=40.5", t >= 40.5),
                                    ("temp<35", t < 35)) if ok]
        if self.systolic is not None:
            out += [f for f, ok in (("bp>=180", self.systolic >= 180), ("bp<90", self.systolic < 90)) if ok]
        if self.glucose_mmol is not None:
            out += [f for f, ok in (("glucose>=20", self.glucose_mmol >= 20), ("glucose<3.5", self.glucose_mmol < 3.5))
                    if ok]
        if self.spo2 is not None and self.spo2 < 92:
            out.append("spo2<92")
        if self.baby_age_months is not None:
            out += [f for f, ok in (("age<3m", self.baby_age_months < 3), ("age<12m", self.baby_age_months < 12)) if ok]
        if self.gestation_weeks is not None:
            out.append("pregnant>=20w" if self.gestation_weeks >= 20 else "pregnant<20w")
        return tuple(out)


def _first(pattern: re.Pattern[str], text: str, low: float, high: float) -> float | None:
    for m in pattern.finditer(text):
        try:
            value = float(m.group(1))
        except (TypeError, ValueError):
            continue
        if low <= value <= high:
            return value
    return None


_DIGIT = re.compile(r"\d")  # the same digits as the patterns' \d
_NO_VALUES = Values()


def read_values(text: str) -> Values:
    """Every value this module knows in one canonical message (first plausible one of each kind)."""
    if not _DIGIT.search(text):  # every value above is read from a number: most messages have none
        return _NO_VALUES
    temp = _first(_TEMP[0], text, 34, 43) or _first(_TEMP[1], text, 34, 43)
    if temp is None:
        f = _first(_TEMP[2], text, 95, 110) or _first(_TEMP[1], text, 95, 110)
        temp = round((f - 32) / 1.8, 1) if f is not None else None
    bp = _first(_BP, text, 50, 300)
    if bp is None:
        m = _BP_BARE.search(text)
        if m and 60 <= int(m.group(1)) <= 300 and 30 <= int(m.group(2)) <= 200 and int(m.group(1)) > int(m.group(2)):
            bp = float(m.group(1))
    glucose = _first(_GLUCOSE, text, 0.5, 1000)
    if glucose is not None and glucose > 45:  # mg/dL
        glucose = round(glucose / 18.0, 1)
    spo2 = _first(_SPO2, text, 50, 100)
    age = None
    for m in _AGE.finditer(text):
        if not _BABY.search(text):
            break
        unit = _AGE_UNIT.search(m.group())
        if unit is None:
            continue
        n = float(m.group(1) or m.group(2))
        months = (n + 0.5 * ("半" in unit.group(1))) if unit.group(1) else n / 4.345 if unit.group(2) else n / 30.4
        if months <= 36 and not _GESTATION.search(text[max(0, m.start() - 4):m.end()]):
            age = months
            break
    g = _GESTATION.search(text)
    gestation = int(g.group(1) or g.group(2)) if g else None
    return Values(temp, int(bp) if bp else None, glucose, int(spo2) if spo2 else None, age, gestation)
