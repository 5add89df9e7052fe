"""Reading a schedule the patient typed: "每天早晚各一次", "8点和20点", "every 8 hours", "mon wed fri at 9".

One pass per locale over the canonical text (`bot.understand.normalize.canonical`: full-width,
Traditional → Simplified, Chinese numerals → digits via `zh_number`), each rule a regex that claims
its span so later rules do not read it again. The result names what each rule read (`because`), so
the confirmation the patient sees ("every day at 08:00 and 20:00 — right?") and a failing case both
explain themselves. The patient always confirms before a plan is made: a misreading costs one "no".

What it reads: clock times (8点, 晚上10点半, 21:00, 9am, 9:30 pm), parts of the day and meals (早晚,
睡前, 饭后, morning, with breakfast, at bedtime), N times a day (一天三次, twice a day, tid), every N hours
(每8小时, every 8 hours, q8h), as needed (需要时, prn), every N days (隔天, 每隔1天, every other day, every 3 days), weekdays
(周一三五, 每周二, mon wed fri, weekdays), and cycles (吃21天停7天, 21 days on 7 off).
It does not read tapering steps or date ranges: those come from the doctor (console or YAML).
Its accuracy has not been measured on a blind set yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.understand.normalize import canonical

# how N doses a day are spread when the patient gives no times (named day parts, resolved by settings)
PER_DAY: dict[int, tuple[str, ...]] = {1: ("morning",), 2: ("morning", "evening"),
                                        3: ("08:00", "14:00", "20:00"), 4: ("08:00", "12:00", "16:00", "20:00")}


@dataclass
class Reading:
    """What a typed schedule says; empty fields were not mentioned."""

    times: list[str] = field(default_factory=list)  # HH:MM or slot names, in the order said
    every_hours: int | None = None
    every_days: int = 1
    weekdays: list[str] = field(default_factory=list)
    cycle: tuple[int, int] | None = None  # (on days, off days)
    per_day: int | None = None
    prn: bool = False  # as needed: no reminders, the patient logs each dose
    because: list[str] = field(default_factory=list)  # rule: matched text

    @property
    def understood(self) -> bool:
        return bool(self.times or self.every_hours or self.per_day or self.weekdays or self.cycle
                    or self.every_days > 1 or self.prn)

    def schedule_fields(self) -> dict[str, object] | None:
        """Fields for `Schedule` (without start), or None when no dose time can be told."""
        times = list(dict.fromkeys(self.times))
        if self.prn and not times and self.every_hours is None:
            return {"prn": True}
        if self.every_hours is not None:
            return {"every_hours": self.every_hours, "times": times[:1]}
        if not times and self.per_day:
            times = list(PER_DAY.get(self.per_day, ()))
        if self.per_day and len(times) < self.per_day and self.per_day in PER_DAY and len(times) <= 1:
            times = list(PER_DAY[self.per_day])
        if not times:
            return None
        out: dict[str, object] = {"times": times, "every_days": self.every_days}
        if self.weekdays:
            out["weekdays"] = list(dict.fromkeys(self.weekdays))
        if self.cycle:
            out["cycle"] = {"on_days": self.cycle[0], "off_days": self.cycle[1]}
        return out


class _Text:
    """The canonical text with claimed spans blanked out, so each phrase is read once."""

    def __init__(self, text: str):
        self.text = canonical(text)

    def take(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = list(pattern.finditer(self.text))
        for m in found:
            a, b = m.span()
            self.text = self.text[:a] + " " * (b - a) + self.text[b:]
        return found


# -- Chinese ----------------------------------------------------------------------------------------

_ZH_WEEKDAY = {"一": "mo", "二": "tu", "三": "we", "四": "th", "五": "fr", "六": "sa", "日": "su", "天": "su",
               "1": "mo", "2": "tu", "3": "we", "4": "th", "5": "fr", "6": "sa", "7": "su"}
_ZH_PART = {"早上": "morning", "早晨": "morning", "上午": "morning", "早": "morning", "中午": "noon",
            "午": "noon", "下午": "afternoon", "晚上": "evening", "傍晚": "evening", "晚": "evening",
            "睡前": "bedtime", "临睡": "bedtime", "夜里": "night", "半夜": "night"}
_ZH_MEAL = {"早饭": "breakfast", "早餐": "breakfast", "午饭": "lunch", "午餐": "lunch", "晚饭": "dinner",
            "晚餐": "dinner"}
ZH_CYCLE = re.compile(r"(?:吃|服|用|服用)?(\d+)(天|周|个?星期)[，,、 ]*(?:然后|再)?(?:停|休息|停药)(\d+)(天|周|个?星期)")
ZH_HOURS = re.compile(r"每(?:隔)?(\d+)个?(?:小时|钟头)")
ZH_EVERY_OTHER = re.compile(r"隔天|隔日|每隔1天|每两天|每2天")
ZH_DAYS = re.compile(r"每(隔)?(\d+)天")
ZH_PER_DAY = re.compile(r"(?:每天|每日|1天|1日|一天|一日|天天)?[^\d次]{0,6}?(\d+)次")
ZH_WEEKDAYS = re.compile(r"(?:每)?(?:周|星期|礼拜)((?:[一二三四五六日天1-7][、,，和及与 ]*)+)")
ZH_WORKDAYS = re.compile(r"工作日|周一到周五|周一至周五")
ZH_MEALS3 = re.compile(r"三餐|每餐|饭后|饭前|餐后|餐前|随餐")
ZH_MEAL = re.compile("|".join(_ZH_MEAL))
ZH_CLOCK = re.compile(r"(早上|早晨|上午|中午|下午|晚上|傍晚|夜里|凌晨)?\s*(\d{1,2})(?:点|:|：)(?:(半)|(\d{1,2})分?)?")
ZH_PARTS = re.compile(r"早中晚|早晚|" + "|".join(sorted(_ZH_PART, key=len, reverse=True)))


def _zh_hour(part: str | None, hour: int) -> int:
    if part in ("下午", "晚上", "傍晚", "夜里") and hour < 12:
        return hour + 12
    if part == "中午" and hour < 6:
        return hour + 12
    return hour


ZH_PRN = re.compile(r"需要时|需要的时候|必要时|按需|不舒服(?:的)?时(?:候)?|疼(?:的)?时(?:候)?|痛(?:的)?时(?:候)?")


def read_zh(raw: str) -> Reading:
    t, r = _Text(raw), Reading()
    for m in t.take(ZH_PRN):
        r.prn = True
        r.because.append(f"prn: {m.group(0)}")
    for m in t.take(ZH_CYCLE):
        unit = lambda u: 7 if u != "天" else 1  # noqa: E731 - weeks to days
        r.cycle = (int(m.group(1)) * unit(m.group(2)), int(m.group(3)) * unit(m.group(4)))
        r.because.append(f"cycle: {m.group(0)}")
    for m in t.take(ZH_HOURS):
        r.every_hours = int(m.group(1))
        r.because.append(f"every_hours: {m.group(0)}")
    for m in t.take(ZH_EVERY_OTHER):
        r.every_days = 2
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(ZH_DAYS):
        r.every_days = int(m.group(2)) + (1 if m.group(1) else 0)
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(ZH_WORKDAYS):
        r.weekdays += ["mo", "tu", "we", "th", "fr"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(ZH_WEEKDAYS):
        r.weekdays += [_ZH_WEEKDAY[c] for c in m.group(1) if c in _ZH_WEEKDAY]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(ZH_CLOCK):
        hour = _zh_hour(m.group(1), int(m.group(2)))
        minute = 30 if m.group(3) else int(m.group(4) or 0)
        if hour <= 24 and minute < 60:
            r.times.append(f"{hour % 24:02d}:{minute:02d}")
            r.because.append(f"time: {m.group(0).strip()}")
    for m in t.take(ZH_MEAL):
        r.times.append(_ZH_MEAL[m.group(0)])
        r.because.append(f"meal: {m.group(0)}")
    for m in t.take(ZH_MEALS3):
        if not any(x in r.times for x in ("breakfast", "lunch", "dinner")):
            r.times += ["breakfast", "lunch", "dinner"]
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(ZH_PARTS):
        word = m.group(0)
        groups = {"早中晚": ["morning", "noon", "evening"], "早晚": ["morning", "evening"]}
        r.times += groups[word] if word in groups else [_ZH_PART[word]]
        r.because.append(f"day_part: {word}")
    for m in t.take(ZH_PER_DAY):
        n = int(m.group(1))
        if r.times and n == 1:  # 早晚各1次: once at each time named
            continue
        if 1 <= n <= 6:
            r.per_day = n
            r.because.append(f"per_day: {m.group(0).strip()}")
    return r


# -- English ----------------------------------------------------------------------------------------

_EN_DAYS = {"mon": "mo", "tue": "tu", "wed": "we", "thu": "th", "fri": "fr", "sat": "sa", "sun": "su"}
_EN_PART = {"morning": "morning", "noon": "noon", "midday": "noon", "lunchtime": "noon",
            "afternoon": "afternoon", "evening": "evening", "night": "night", "bedtime": "bedtime",
            "bed": "bedtime"}
_EN_MEAL = {"breakfast": "breakfast", "lunch": "lunch", "dinner": "dinner", "supper": "dinner"}
_EN_COUNT = {"once": 1, "one time": 1, "twice": 2, "two times": 2, "three times": 3, "thrice": 3,
             "four times": 4, "bid": 2, "b.i.d.": 2, "tid": 3, "t.i.d.": 3, "qid": 4, "q.i.d.": 4, "od": 1,
             "qd": 1}
EN_CYCLE = re.compile(r"(\d+)\s*(day|week)s?\s*on[,;]?\s*(?:then\s*)?(\d+)\s*(day|week)?s?\s*off")
EN_HOURS = re.compile(r"(?:every|each)\s*(\d+)\s*(?:hours?|hrs?|h)\b|\bq\s*(\d+)\s*h\b|\b(?:every|each)\s+hour\b")
EN_EVERY_OTHER = re.compile(r"every\s+other\s+day|alternate\s+days|every\s+second\s+day")
EN_DAYS = re.compile(r"every\s+(\d+)\s*days?")
EN_PER_DAY = re.compile(r"\b(once|one time|twice|two times|three times|thrice|four times|(\d)\s*times|"
                        r"b\.i\.d\.|t\.i\.d\.|q\.i\.d\.|bid|tid|qid|od|qd)\b(?:\s*(?:a|per|each|every)\s*day|\s*daily)?")
EN_WORKDAYS = re.compile(r"\bweekdays\b|\bmonday\s*(?:to|-|through)\s*friday\b|\bmon\s*-\s*fri\b")
EN_WEEKENDS = re.compile(r"\bweekends?\b")
EN_WEEKDAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\b")
EN_CLOCK_SUFFIX = re.compile(r"(?:\bat\s*)?\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'?clock)")
EN_CLOCK_COLON = re.compile(r"(?:\bat\s*)?\b(\d{1,2}):(\d{2})\b")
EN_CLOCK_AT = re.compile(r"(?:\bat|\band|&|,)\s*(\d{1,2})\b(?!\s*(?:days?|hours?|times?|weeks?))")
EN_LEAD_NUMBER = re.compile(r"^\s*(\d{1,2})\b(?!\s*(?:days?|hours?|times?|weeks?|h\b))")
EN_MEALS3 = re.compile(r"\b(?:with|after|before)\s+(?:each\s+|every\s+)?meals?\b|\bwith\s+food\b")
EN_MEAL = re.compile(r"\b(breakfast|lunch|dinner|supper)\b")
EN_PART = re.compile(r"\b(morning|noon|midday|lunchtime|afternoon|evening|night|bedtime|bed)s?\b")
EN_NOON = re.compile(r"\b(noon|midnight)\b")


EN_PRN = re.compile(r"\bas\s+(?:needed|required)\b|\bwhen\s+(?:needed|necessary)\b|\bprn\b|\bif\s+needed\b")


def read_en(raw: str) -> Reading:
    t, r = _Text(raw), Reading()
    for m in t.take(EN_PRN):
        r.prn = True
        r.because.append(f"prn: {m.group(0)}")
    for m in t.take(EN_CYCLE):
        mult = lambda u: 7 if u == "week" else 1  # noqa: E731
        r.cycle = (int(m.group(1)) * mult(m.group(2)), int(m.group(3)) * mult(m.group(4) or m.group(2)))
        r.because.append(f"cycle: {m.group(0)}")
    for m in t.take(EN_HOURS):
        r.every_hours = int(m.group(1) or m.group(2) or 1)
        r.because.append(f"every_hours: {m.group(0)}")
    for m in t.take(EN_EVERY_OTHER):
        r.every_days = 2
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(EN_DAYS):
        r.every_days = int(m.group(1))
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(EN_WORKDAYS):
        r.weekdays += ["mo", "tu", "we", "th", "fr"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(EN_WEEKENDS):
        r.weekdays += ["sa", "su"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(EN_WEEKDAY):
        r.weekdays.append(_EN_DAYS[m.group(1)])
        r.because.append(f"weekday: {m.group(0)}")
    for m in t.take(EN_NOON):
        r.times.append("12:00" if m.group(1) == "noon" else "00:00")
        r.because.append(f"time: {m.group(0)}")
    for m in t.take(EN_PER_DAY):
        word = m.group(1)
        r.per_day = int(m.group(2)) if m.group(2) else _EN_COUNT[word]
        r.because.append(f"per_day: {m.group(0).strip()}")
    clocks = [(m, m.group(1), m.group(2), m.group(3)) for m in t.take(EN_CLOCK_SUFFIX)]
    clocks += [(m, m.group(1), m.group(2), "") for m in t.take(EN_CLOCK_COLON)]
    clocks += [(m, m.group(1), None, "") for m in t.take(EN_CLOCK_AT) + t.take(EN_LEAD_NUMBER)]
    for m, h, mm, suffix in sorted(clocks, key=lambda c: c[0].start()):
        hour, minute, suffix = int(h), int(mm or 0), suffix.replace(".", "")
        if suffix.startswith("p") and hour < 12:
            hour += 12
        elif suffix.startswith("a") and hour == 12:
            hour = 0
        if hour <= 23 and minute < 60:
            r.times.append(f"{hour:02d}:{minute:02d}")
            r.because.append(f"time: {m.group(0).strip()}")
    for m in t.take(EN_MEALS3):
        r.times += ["breakfast", "lunch", "dinner"]
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(EN_MEAL):
        r.times.append(_EN_MEAL[m.group(1)])
        r.because.append(f"meal: {m.group(0)}")
    for m in t.take(EN_PART):
        r.times.append(_EN_PART[m.group(1)])
        r.because.append(f"day_part: {m.group(0)}")
    return r


def read_schedule(text: str, locale: str) -> Reading:
    """Read a typed schedule in the conversation's language; a Chinese text in any conversation is
    read as Chinese (a bilingual patient types either)."""
    if re.search(r"[\u3400-\u9fff]", text):
        return read_zh(text)
    if locale.startswith("zh") and not re.search(r"[a-zA-Z]{3}", text):
        return read_zh(text)
    return read_en(text)
