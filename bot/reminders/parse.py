"""Reading a schedule the patient typed: "每天早晚各一次", "8点和20点", "every 8 hours", "mon wed fri at 9".

One pass per locale over the canonical text (`bot.understand.normalize.canonical`: full-width,
Traditional → Simplified, Chinese numerals → digits), after a few spelling repairs (tonite, tmrw,
brekfast, 八店 → 八点, number words → digits) and with dose amounts ("1 tab", "两粒", "喷两下") blanked
so they are never read as times. Each rule is a regex that claims its span so later rules do not
read it again; the result names what each rule read (`because`), so the confirmation the patient
sees ("every day at 08:00 and 20:00 — right?") and a failing case both explain themselves. The
patient always confirms before a plan is made, and a text nothing could be read from is asked again
with examples, never guessed.

What it reads: clock times (8点, 晚上9点一刻, 早8晚8, 21:00, 2200, 9am, "9 at night", "morning 8"),
parts of the day (早晚, 每晚, morning, nightly), meals and how the dose relates to them (饭后, 早饭前,
随餐, before breakfast, with food, at bedtime, qhs), N times a day (一天三次, 日服两次, twice a day, 3x a
day, tid, bd, qds), every N hours (每8小时, 8小时一次, every 8 hours, 4 hourly, q8h), every N days (隔天,
三天一次, 每周一次, every other day, alt days, once a week), weekdays (周一三五, 礼拜天, mon wed fri,
M W F, weekends), cycles (吃21天停7天, 吃三周停一周, 21 days on 7 off, for 14 days then stop for 7),
a course length (连吃7天, 吃两周, for 10 days, x 5 days), a start (明天开始, starting tomorrow) and as
needed (需要时, 疼的时候吃, 睡不着再吃, prn, sos, if my chest feels tight).
A bare clock time that could be morning or evening ("8:30", "at 7") is read as morning and flagged
`ambiguous`, so the confirmation says how to write the evening.
It does not read tapering steps or date ranges: those come from the doctor (console or YAML).
Accuracy on a blind set: docs/reminders.md (`carebot reminders eval`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from bot.understand.normalize import canonical

# how N doses a day are spread when the patient gives no times (named day parts, resolved by settings)
PER_DAY: dict[int, tuple[str, ...]] = {1: ("morning",), 2: ("morning", "evening"),
                                        3: ("08:00", "14:00", "20:00"), 4: ("08:00", "12:00", "16:00", "20:00")}
MEALS3 = ["breakfast", "lunch", "dinner"]


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
    relation: str | None = None  # to meals: before, with, after
    for_days: int | None = None  # a course: this many days from the start
    start_in_days: int | None = None  # 1: from tomorrow ("明天开始", "starting tomorrow")
    ambiguous: bool = False  # a bare clock time that may be morning or evening ("8:30")
    because: list[str] = field(default_factory=list)  # rule: matched text

    @property
    def understood(self) -> bool:
        return bool(self.times or self.every_hours or self.per_day or self.weekdays or self.cycle
                    or self.every_days > 1 or self.prn)

    def schedule_fields(self, today: date | None = None) -> dict[str, object] | None:
        """Fields for `Schedule` (with `start` and `end` when `today` is given), or None when no dose
        time can be told."""
        times = list(dict.fromkeys(self.times))
        out: dict[str, object]
        if self.prn and not times and self.every_hours is None:
            out = {"prn": True}
        elif self.every_hours is not None:
            out = {"every_hours": self.every_hours, "times": [t for t in times if ":" in t][:1] or times[:1]}
        else:
            if not times and self.per_day:
                times = list(PER_DAY.get(self.per_day, ()))
            if self.per_day and len(times) < self.per_day and self.per_day in PER_DAY and len(times) <= 1:
                times = list(PER_DAY[self.per_day])
            if not times and (self.weekdays or self.cycle or self.every_days > 1):
                times = list(PER_DAY[1])  # "every other day", "M W F": once on each dose day
            if not times:
                return None
            # "once a week on saturday": the weekday already says how often
            every = 1 if self.weekdays and self.every_days == 7 else self.every_days
            out = {"times": times, "every_days": every}
            if self.weekdays:
                out["weekdays"] = list(dict.fromkeys(self.weekdays))
            if self.cycle:
                out["cycle"] = {"on_days": self.cycle[0], "off_days": self.cycle[1]}
        if today is not None and not out.get("prn"):
            start = today + timedelta(days=self.start_in_days or 0)
            out["start"] = start
            if self.for_days:
                out["end"] = start + timedelta(days=self.for_days - 1)
        return out


class _Text:
    """The canonical text with claimed spans blanked out, so each phrase is read once."""

    def __init__(self, text: str):
        self.text = text

    def take(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        found = list(pattern.finditer(self.text))
        for m in found:
            self.blank(m.start(), m.end())
        return found

    def blank(self, a: int, b: int) -> None:
        self.text = self.text[:a] + " " * (b - a) + self.text[b:]


def _clock(r: Reading, hour: int, minute: int, said: str, *, ambiguous: bool) -> None:
    if 0 <= hour <= 24 and 0 <= minute < 60:
        r.times.append(f"{hour % 24:02d}:{minute:02d}")
        r.because.append(f"time: {said.strip()}")
        r.ambiguous = r.ambiguous or ambiguous


def _unit_days(n: int, unit: str) -> int:
    return n * (30 if "月" in unit or unit.startswith("month") else 7 if unit[:1] in "周星礼w" else 1)


# -- Chinese ----------------------------------------------------------------------------------------

_ZH_DIGIT = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_WEEKDAY = {"一": "mo", "二": "tu", "三": "we", "四": "th", "五": "fr", "六": "sa", "日": "su", "天": "su",
               "1": "mo", "2": "tu", "3": "we", "4": "th", "5": "fr", "6": "sa", "7": "su"}
_ZH_PM = ("下午", "傍晚", "晚上", "晚间", "晚", "夜里", "夜间", "夜", "半夜", "每晚")
_ZH_PART = {"早上": "morning", "早晨": "morning", "清晨": "morning", "上午": "morning", "每早": "morning",
            "早": "morning", "中午": "noon", "午": "noon", "下午": "afternoon", "晚上": "evening",
            "傍晚": "evening", "晚间": "evening", "每晚": "evening", "晚": "evening", "睡前": "bedtime",
            "临睡": "bedtime", "睡觉前": "bedtime", "夜里": "night", "夜间": "night", "半夜": "night"}
_ZH_MEAL = {"早饭": "breakfast", "早餐": "breakfast", "早点": "breakfast", "午饭": "lunch", "中饭": "lunch",
            "午餐": "lunch", "晚饭": "dinner", "晚餐": "dinner"}
_ZH_REL = {"前": "before", "后": "after", "时": "with", "中": "with", "的时候": "with", "时候": "with",
           "一起": "with"}
_ZH_PART_RE = "|".join(sorted(_ZH_PART, key=len, reverse=True))
_VERB = r"(?:吃|服|用|打|喷|上|滴|贴|含)"

ZH_NUMERAL = re.compile(r"(?<=[早晚中午夜上下])([一二两三四五六七八九十]{1,3})(?=[点时晚中店典\s,，]|$)")
ZH_TYPO_POINT = re.compile(r"(?<=\d)[店典电](?!话)")
ZH_TWO = re.compile(r"两(?=[次回顿周个小时天下粒片颗钟遍])")
ZH_ONCE_A_DAY_PILL = re.compile(r"(?:每天|每日|1天|1日|天天)" + _VERB + r"?1(?:粒|片|颗|袋|支|丸)")
ZH_AMOUNT = re.compile(r"(?:\d+(?:\.\d+)?|半)\s*(?:粒|片|颗|袋|支|丸|滴|喷|下|毫升|ml|mg|毫克|单位|iu|u\b|针)")
ZH_START = re.compile(r"(?:从)?明天(?:开始|起)|从明天|明日起")
ZH_CYCLE = re.compile(r"(?:吃|服|用|服用|打)?(\d+)(天|周|个?星期|个?礼拜)[，,、 ]*(?:然后|再)?(?:停|休息|停药|歇)"
                      r"(?:药)?(\d+)(天|周|个?星期|个?礼拜)")
ZH_HOURS = re.compile(r"每(?:隔)?\s*(\d+)\s*个?\s*(?:小时|钟头|钟|h\b)|(\d+)\s*个?\s*(?:小时|钟头|h\b)\s*"
                      + _VERB + r"?\s*1次|\bq\s*(\d+)\s*h\b")
ZH_EVERY_OTHER = re.compile(r"隔天|隔日|隔1天|每隔1天|每两天|每2天")
ZH_DAYS = re.compile(r"每(隔)?(\d+)天|(?<!\d)([2-9]|\d{2})天" + _VERB + r"?1次")
ZH_WEEKLY = re.compile(r"(?:每|1)(?:个)?(?:周|星期|礼拜)" + _VERB + r"?1次")
ZH_COURSE = re.compile(r"(?:(?:连(?:续)?|共|疗程)\s*" + _VERB + r"?|" + _VERB + r")\s*(\d+)\s*(天|周|个?星期|个?礼拜|个月)"
                       r"(?!\s*" + _VERB + r"?\s*1次)")
ZH_PER_DAY = re.compile(r"(?:(每天|每日|1天|1日|天天|日|一天|一日)\s*(?:" + _VERB + r"|服用)?\s*)?(\d+)\s*(?:次|回|顿|遍)")
ZH_PER_WEEK = re.compile(r"(?:每|1)个?(?:周|星期|礼拜)" + _VERB + r"?([2-9])\s*(?:次|回)")
ZH_WEEKDAYS = re.compile(r"(?:每逢|每个?)?(?:周|星期|礼拜)((?:(?:[一二三四五六日天]|[1-7](?![\d次回天个小]))(?:[、,，和及与 ]|周|星期|礼拜)*)+)")
ZH_WORKDAYS = re.compile(r"工作日|周1到周5|周1至周5|周一到周五|周一至周五")
ZH_WEEKENDS = re.compile(r"周末")
ZH_CLOCK = re.compile(r"(" + _ZH_PART_RE + r")?\s*(\d{1,2})\s*(?:点|时|:)\s*(?:(半|1刻|一刻|3刻|三刻)|(\d{1,2})\s*分?)?")
ZH_PART_HOUR = re.compile(r"(" + _ZH_PART_RE + r")\s*(\d{1,2})(?![\d天周小个次])")
ZH_MEAL_REL = re.compile(r"(三餐|每餐|饭|餐|" + "|".join(_ZH_MEAL) + r")(?:和|与|及|、|,)?(前|后|时候|的时候|时|中)")
ZH_WITH_MEAL = re.compile(r"随餐|和饭一起|跟饭一起|与食物同服|吃饭时")
ZH_EMPTY = re.compile(r"空腹")
ZH_MEAL = re.compile("|".join(_ZH_MEAL) + r"|三餐|每餐")
ZH_PARTS = re.compile(r"早中晚|早晚|" + _ZH_PART_RE)
ZH_PRN = re.compile(r"需要时|需要的时候|有需要|必要时|按需|不舒服|难受|如果|要是|万一|实在"
                    r"|的?时候\s*" + _VERB + r"|了?再\s*" + _VERB)


def _zh_numeral(text: str) -> str:
    def value(m: re.Match[str]) -> str:
        s = m.group(1)
        if "十" in s:
            a, _, b = s.partition("十")
            return str((_ZH_DIGIT.get(a, 1) if a else 1) * 10 + (_ZH_DIGIT.get(b, 0) if b else 0))
        return "".join(str(_ZH_DIGIT[c]) for c in s)
    return ZH_NUMERAL.sub(value, text)


def _zh_hour(part: str | None, hour: int) -> int:
    if part in ("夜里", "夜间", "半夜", "凌晨", "晚上", "晚", "每晚", "夜") and hour == 12:
        return 0
    if part in _ZH_PM and hour < 12:
        return hour + 12
    if part in ("中午", "午") and hour < 6:
        return hour + 12
    return hour


def _zh_minute(quarter: str | None, minutes: str | None) -> int:
    if quarter:
        return 30 if quarter == "半" else 15 if quarter in ("1刻", "一刻") else 45
    return int(minutes or 0)


def read_zh(raw: str) -> Reading:
    text = ZH_TWO.sub("2", ZH_TYPO_POINT.sub("点", _zh_numeral(canonical(raw))))
    t, r = _Text(text), Reading()
    for m in t.take(ZH_ONCE_A_DAY_PILL):
        r.per_day = 1
        r.because.append(f"per_day: {m.group(0)}")
    t.take(ZH_AMOUNT)
    for m in t.take(ZH_START):
        r.start_in_days = 1
        r.because.append(f"start: {m.group(0)}")
    for m in t.take(ZH_CYCLE):
        r.cycle = (_unit_days(int(m.group(1)), m.group(2)), _unit_days(int(m.group(3)), m.group(4)))
        r.because.append(f"cycle: {m.group(0)}")
    for m in t.take(ZH_HOURS):
        r.every_hours = int(m.group(1) or m.group(2) or m.group(3))
        r.because.append(f"every_hours: {m.group(0)}")
    for m in t.take(ZH_EVERY_OTHER):
        r.every_days = 2
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(ZH_DAYS):
        r.every_days = int(m.group(2)) + (1 if m.group(1) else 0) if m.group(2) else int(m.group(3))
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(ZH_PER_WEEK):  # 每周两次: which days is not said; asked again, never guessed
        r.because.append(f"unread: {m.group(0)}")
    for m in t.take(ZH_WEEKLY):
        r.every_days = 7
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(ZH_WORKDAYS):
        r.weekdays += ["mo", "tu", "we", "th", "fr"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(ZH_WEEKENDS):
        r.weekdays += ["sa", "su"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(ZH_WEEKDAYS):
        r.weekdays += [_ZH_WEEKDAY[c] for c in m.group(1) if c in _ZH_WEEKDAY]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(ZH_COURSE):
        r.for_days = _unit_days(int(m.group(1)), m.group(2))
        r.because.append(f"for_days: {m.group(0).strip()}")
    for m in t.take(ZH_CLOCK):
        part = m.group(1)
        hour = _zh_hour(part, int(m.group(2)))
        _clock(r, hour, _zh_minute(m.group(3), m.group(4)), m.group(0), ambiguous=not part and 1 <= hour <= 11)
    for m in t.take(ZH_PART_HOUR):  # 早8晚8, 早九晚九: a part of the day and an hour, no 点
        _clock(r, _zh_hour(m.group(1), int(m.group(2))), 0, m.group(0), ambiguous=False)
    for m in t.take(ZH_MEAL_REL):
        r.relation = r.relation or _ZH_REL[m.group(2)]
        meals = MEALS3 if m.group(1) in ("三餐", "每餐", "饭", "餐") else [_ZH_MEAL[m.group(1)]]
        r.times += [x for x in meals if x not in r.times]
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(ZH_WITH_MEAL):
        r.relation = r.relation or "with"
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(ZH_EMPTY):
        r.relation = r.relation or "before"
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(ZH_MEAL):
        meals = MEALS3 if m.group(0) in ("三餐", "每餐") else [_ZH_MEAL[m.group(0)]]
        r.times += [x for x in meals if x not in r.times]
        r.because.append(f"meal: {m.group(0)}")
    if r.relation and not any(x in r.times for x in MEALS3):
        r.times += MEALS3  # 饭后, 随餐: after (with) each meal
    for m in t.take(ZH_PARTS):
        word = m.group(0)
        groups = {"早中晚": ["morning", "noon", "evening"], "早晚": ["morning", "evening"]}
        r.times += groups[word] if word in groups else [_ZH_PART[word]]
        r.because.append(f"day_part: {word}")
    for m in t.take(ZH_PER_DAY):
        n = int(m.group(2))
        if r.times and n == 1:  # 早晚各1次: once at each time named
            continue
        if 1 <= n <= 6 and (m.group(1) or not (r.weekdays or r.every_days > 1 or r.every_hours)):
            r.per_day = n
            r.because.append(f"per_day: {m.group(0).strip()}")
    if not r.understood:
        for m in t.take(ZH_PRN):
            r.prn = True
            r.because.append(f"prn: {m.group(0)}")
    return r


# -- English ----------------------------------------------------------------------------------------

_EN_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "twenty": 20,
               "twenty-one": 21, "twenty one": 21, "thirty": 30}
_EN_SPELLING = {r"toni(?:ght|te)|2nite|tonight": "tonight", r"nite": "night", r"nites": "nights",
                r"tmrw?|tmrow|tom+or+ow+|tomoro+w?|2moro+w?": "tomorrow", r"b(?:re|r)(?:ak|ek)fa?st|brekkie|bfast": "breakfast",
                r"hrs?|hours": "hours", r"wks?": "weeks", r"mins?": "minutes", r"alt": "alternate",
                r"mornings?": "morning", r"evenings?|eves?": "evening", r"nights": "night", r"afternoons": "afternoon"}
_EN_DAYS = {"mon": "mo", "tue": "tu", "wed": "we", "thu": "th", "fri": "fr", "sat": "sa", "sun": "su"}
_EN_LETTER_DAY = {"m": "mo", "t": "tu", "tu": "tu", "w": "we", "th": "th", "r": "th", "f": "fr", "sa": "sa",
                  "su": "su"}
_EN_PART = {"morning": "morning", "mane": "morning", "noon": "noon", "midday": "noon", "lunchtime": "noon",
            "afternoon": "afternoon", "evening": "evening", "night": "night", "nightly": "night",
            "tonight": "night", "nocte": "night", "bedtime": "bedtime", "bed": "bedtime", "qhs": "bedtime",
            "hs": "bedtime"}
_EN_PM = ("afternoon", "evening", "night", "nightly", "tonight", "nocte")
_EN_MEAL = {"breakfast": "breakfast", "lunch": "lunch", "dinner": "dinner", "supper": "dinner", "tea": "dinner"}
_EN_COUNT = {"once": 1, "twice": 2, "thrice": 3, "od": 1, "qd": 1, "bd": 2, "bid": 2, "bds": 2, "tid": 3,
             "tds": 3, "qid": 4, "qds": 4}
_NOT_AFTER_NUMBER = r"(?!\s*(?:days?|hours?|times?|weeks?|months?|x\b|h\b|hourly|-))"
_PART_RE = r"(morning|mane|noon|midday|afternoon|evening|night|nightly|tonight|nocte|bedtime)"

EN_AMOUNT = re.compile(r"\b\d+(?:\.\d+)?\s*(?:drops?|tabs?|tablets?|pills?|puffs?|caps?|capsules?|ml|mg|mcg|"
                       r"units?|iu|sprays?|sachets?|spoons?|teaspoons?|tsp|patch(?:es)?|inhalations?)\b")
EN_START = re.compile(r"\b(?:(?:starting|start|from|beginning|begin)\s+)?tomorrow\b")
EN_CYCLE = re.compile(r"\b(\d+)\s*(day|week)s?\s*on\b[,;]?\s*(?:and\s*|then\s*|,\s*)*(\d+)\s*(day|week)?s?\s*off\b"
                      r"|\b(?:for\s+)?(\d+)\s*(day|week)s?\b[,;]?\s*(?:and\s+|,\s*)?then\s+(?:stop|off|pause|break|rest|"
                      r"nothing)\w*\s*(?:for\s+)?(\d+)\s*(day|week)s?")
EN_HOURS = re.compile(r"\b(?:every|each|q)\s*(\d+)\s*(?:-\s*)?(?:hours?|h)\b|\b(\d+)\s*-?\s*hourly\b"
                      r"|\b(?:every|each)\s+hour\b|\bhourly\b")
EN_EVERY_OTHER = re.compile(r"\bevery\s+other\s+day|\balternate\s+days?|\bevery\s+second\s+day|\bqod\b")
EN_DAYS = re.compile(r"\bevery\s+(\d+)\s*(day|week)s?\b")
EN_PER_WEEK = re.compile(r"\b(?:twice|thrice|\d+\s*(?:x|times?))\s*(?:a|per|every|each|/)\s*week\b")
EN_WEEKLY = re.compile(r"\bonce\s+(?:a|per|every)\s+week\b|\bonce\s+weekly\b|\bweekly\b|\bevery\s+week\b")
EN_COURSE = re.compile(r"\b(?:for\s*(?:the\s+next\s+)?(?:a|an|\d+)|(?:x|×|over)\s*\d+)\s*(day|week|month)s?\b")
EN_PER_DAY = re.compile(r"\b(?:(once|twice|thrice)|(\d+)\s*(?:x|times?)|x\s*(\d+))\s*(?:a|per|each|every|/|in\s+a)?\s*"
                        r"(?:day|daily|d)\b|\b(once|twice|thrice)\b|\b(od|qd|bd|bid|bds|tid|tds|qid|qds)\b")
EN_DAILY = re.compile(r"\b(?:every\s*day|each\s*day|daily|a\s+day|per\s+day|everyday)\b")
EN_WORKDAYS = re.compile(r"\bweekdays\b|\bmonday\s*(?:to|-|through|thru)\s*friday\b|\bmon\s*-\s*fri\b")
EN_WEEKENDS = re.compile(r"\bweekends?\b")
EN_WEEKDAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)(?:day|days|s|d|nesday|nesdays|rsday|rs|sday|urday|"
                        r"urdays|n)?\b")
EN_LETTER_DAYS = re.compile(r"(?<![\w:])(?:m|tu?|w|th|r|f|sa|su)(?:\s*[/,&+]?\s*(?:m|tu?|w|th|r|f|sa|su)\b)+(?![\w:])")
EN_MEAL_REL = re.compile(r"\b(before|after|with|during|following|at)\s+(?:each\s+|every\s+|all\s+|your\s+|my\s+|the\s+|a\s+|"
                         r"main\s+)*(meals?|food|eating|breakfast|lunch|dinner|supper)\b")
EN_EMPTY = re.compile(r"\b(?:on\s+an?\s+)?empty\s+stomach\b")
EN_MEAL = re.compile(r"\b(breakfast|lunch|dinner|supper)\b")
EN_NOON = re.compile(r"\b(?:at\s+)?(noon|midnight|midday)\b")
EN_CLOCK_SUFFIX = re.compile(r"(?:\bat\s*)?\b(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'?\s*clock)")
EN_CLOCK_COLON = re.compile(r"(?:\bat\s*)?\b(\d{1,2}):(\d{2})\b")
EN_CLOCK_24 = re.compile(r"(?:\bat\s*)?\b([01]\d|2[0-3])([0-5]\d)\s*(?:h(?:rs|ours)?\b)?")
EN_CLOCK_AT = re.compile(r"(?:\bat|\band|&|,|\bby|\baround)\s*(\d{1,2})\b" + _NOT_AFTER_NUMBER)
EN_CLOCK_PART = re.compile(r"\b" + _PART_RE + r"\s+(\d{1,2})\b" + _NOT_AFTER_NUMBER)
EN_LEAD_NUMBER = re.compile(r"^\s*(\d{1,2})\b" + _NOT_AFTER_NUMBER)
# a part of the day right after a clock time: "9 in the morning", "10 at night", "8 tonight", "7 every evening"
EN_AFTER_CLOCK = re.compile(r"^\s*(?:o'?\s*clock\s*)?(?:in\s+the|at|this|every|each|on|)\s*" + _PART_RE + r"\b")
EN_BEFORE_CLOCK = re.compile(_PART_RE + r"s?\b\W*(?:at|around|about|by)?\s*$")
EN_PART = re.compile(r"\b(morning|mane|noon|midday|lunchtime|afternoon|evening|night|nightly|tonight|nocte|"
                     r"bedtime|bed|qhs|hs)s?\b")
EN_PRN = re.compile(r"\bas\s+(?:needed|required|necessary)\b|\bas\s+and\s+when\b|\bwhen(?:ever)?\s+(?:needed|necessary|"
                    r"required|i\s+need|you\s+need|needed)\b|\bprn\b|\bsos\b|\bif\s+(?:needed|necessary|required)\b"
                    r"|\bonly\s+when\b|\bno\s+schedule\b|\bon\s+demand\b|^\s*(?:only\s+)?(?:if|whenever)\b")


def _en_normalize(text: str) -> str:
    for pattern, word in _EN_SPELLING.items():
        text = re.sub(rf"\b(?:{pattern})\b", word, text)
    words = sorted(_EN_NUMBERS, key=len, reverse=True)
    text = re.sub(r"\b(" + "|".join(words) + r")\b", lambda m: str(_EN_NUMBERS[m.group(1)]), text)
    return re.sub(r"\b(\d+)(?=(?:day|week|hour|hr|h|x)s?\b)", r"\1 ", text)


def _en_part_of(text: str, start: int, end: int, t: _Text) -> str | None:
    """The part of the day said with a clock time ("9 in the morning", "morning 8"); its span is claimed."""
    after = EN_AFTER_CLOCK.match(t.text[end:])
    if after:
        t.blank(end + after.start(1), end + after.end(1))
        return after.group(1)
    before = EN_BEFORE_CLOCK.search(t.text[max(0, start - 24):start])
    if before:
        offset = max(0, start - 24)
        t.blank(offset + before.start(1), offset + before.end(1))
        return before.group(1)
    return None


def read_en(raw: str) -> Reading:
    t, r = _Text(_en_normalize(canonical(raw))), Reading()
    t.take(EN_AMOUNT)
    for m in t.take(EN_START):
        r.start_in_days = 1
        r.because.append(f"start: {m.group(0)}")
    for m in t.take(EN_CYCLE):
        g = m.groups()
        on, on_unit, off, off_unit = (g[0], g[1], g[2], g[3] or g[1]) if g[0] else (g[4], g[5], g[6], g[7])
        r.cycle = (_unit_days(int(on), on_unit), _unit_days(int(off), off_unit))
        r.because.append(f"cycle: {m.group(0)}")
    for m in t.take(EN_HOURS):
        r.every_hours = int(m.group(1) or m.group(2) or 1)
        r.because.append(f"every_hours: {m.group(0)}")
    for m in t.take(EN_EVERY_OTHER):
        r.every_days = 2
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(EN_DAYS):
        r.every_days = _unit_days(int(m.group(1)), m.group(2))
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(EN_PER_WEEK):  # "twice a week": which days is not said; asked again, never guessed
        r.because.append(f"unread: {m.group(0)}")
    for m in t.take(EN_WEEKLY):
        r.every_days = 7
        r.because.append(f"every_days: {m.group(0)}")
    for m in t.take(EN_COURSE):
        n = re.search(r"\d+", m.group(0))
        r.for_days = _unit_days(int(n.group(0)) if n else 1, m.group(1))
        r.because.append(f"for_days: {m.group(0)}")
    for m in t.take(EN_PER_DAY):
        word = m.group(1) or m.group(4) or m.group(5)
        r.per_day = _EN_COUNT[word] if word else int(m.group(2) or m.group(3))
        r.because.append(f"per_day: {m.group(0).strip()}")
    t.take(EN_DAILY)
    for m in t.take(EN_WORKDAYS):
        r.weekdays += ["mo", "tu", "we", "th", "fr"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(EN_WEEKENDS):
        r.weekdays += ["sa", "su"]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(EN_WEEKDAY):
        r.weekdays.append(_EN_DAYS[m.group(1)])
        r.because.append(f"weekday: {m.group(0)}")
    for m in t.take(EN_LETTER_DAYS):
        r.weekdays += [_EN_LETTER_DAY[x] for x in re.findall(r"th|tu|sa|su|[mtwrf]", m.group(0))]
        r.because.append(f"weekdays: {m.group(0)}")
    for m in t.take(EN_NOON):
        r.times.append("00:00" if m.group(1) == "midnight" else "12:00")
        r.because.append(f"time: {m.group(0)}")
    clocks = [(m, m.group(1), m.group(2), m.group(3)) for m in t.take(EN_CLOCK_SUFFIX)]
    clocks += [(m, m.group(1), m.group(2), "") for m in t.take(EN_CLOCK_COLON)]
    clocks += [(m, m.group(1), m.group(2), "24") for m in t.take(EN_CLOCK_24)]
    clocks += [(m, m.group(2), None, "") for m in t.take(EN_CLOCK_PART)]
    clocks += [(m, m.group(1), None, "") for m in t.take(EN_CLOCK_AT) + t.take(EN_LEAD_NUMBER)]
    for m, h, mm, suffix in sorted(clocks, key=lambda c: c[0].start()):
        hour, minute, suffix = int(h), int(mm or 0), suffix.replace(".", "").replace(" ", "")
        part = m.group(1) if m.re is EN_CLOCK_PART else None
        if not suffix.startswith(("a", "p", "24")):
            part = part or _en_part_of(t.text, m.start(), m.end(), t)
        if suffix.startswith("p") or (part in _EN_PM and hour < 12 and not (part == "night" and hour < 5)):
            hour += 12 if hour < 12 else 0
        elif part in _EN_PM + ("midnight",) and hour == 12:
            hour = 0
        elif suffix.startswith("a") and hour == 12:
            hour = 0
        vague = not suffix.startswith(("a", "p", "24")) and part is None and 1 <= hour <= 11 and not h.startswith("0")
        _clock(r, hour, minute, m.group(0), ambiguous=vague)
    for m in t.take(EN_MEAL_REL):
        rel = {"before": "before", "after": "after", "following": "after"}.get(m.group(1), "with")
        r.relation = r.relation or rel
        what = m.group(2)
        if what in _EN_MEAL:
            r.times.append(_EN_MEAL[what])
        r.because.append(f"meals: {m.group(0)}")
        generic = what not in _EN_MEAL
        if generic:
            r.because.append("meals: each meal unless a part of the day says which")
    for m in t.take(EN_EMPTY):
        r.relation = r.relation or "before"
        r.because.append(f"meals: {m.group(0)}")
    for m in t.take(EN_MEAL):
        r.times.append(_EN_MEAL[m.group(1)])
        r.because.append(f"meal: {m.group(0)}")
    parts = [_EN_PART[m.group(1)] for m in t.take(EN_PART)]
    if r.relation and not any(x in r.times for x in MEALS3):
        # "with food in the morning": the meal of that part of the day; "with meals": each meal
        meal_of = {"morning": "breakfast", "noon": "lunch", "afternoon": "lunch", "evening": "dinner",
                   "night": "dinner"}
        meals = [meal_of[p] for p in parts if p in meal_of]
        parts = [p for p in parts if p not in meal_of]
        r.times += list(dict.fromkeys(meals)) or ([] if r.times else MEALS3)
    for p in parts:
        r.times.append(p)
        r.because.append(f"day_part: {p}")
    if not r.understood:
        for m in t.take(EN_PRN):
            r.prn = True
            r.because.append(f"prn: {m.group(0)}")
    return r


def read_schedule(text: str, locale: str = "") -> Reading:
    """Read a typed schedule: a text with Chinese in it is read as Chinese, any other as English
    ("q8h", "8:30" and "21:00" mean the same in both, so the conversation's locale does not decide)."""
    r = read_zh(text) if re.search(r"[\u3400-\u9fff]", text) else read_en(text)
    if r.ambiguous and any(":" in x and int(x[:2]) >= 13 for x in r.times):
        r.ambiguous = False  # "8点和20点", "7 and 19": the writer counts the hours of a whole day
    return r
