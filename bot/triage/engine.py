"""Deterministic red-flag triage: one patient message in, one `Assessment` out.

`assess` is pure (no I/O, no clock, no randomness) and runs on every inbound message, so everything
it uses was compiled by `load_triage`. How it reads a message:

1. Normalize (NFKC, lower case) and find every symptom's keywords/patterns in the whole text.
2. Drop the matches that are negated: a negation cue ("没有", "不", "no", "denies" …) in the same
   clause, at most the cue's reach (in tokens: one CJK character or one ASCII word) before the match.
   A cue that is itself part of a matched term ("不能说话", "not breathing") negates nothing.
3. Read the patient from the text (age such as "3个月大的宝宝" / "my 6 week old", pregnancy such as
   "怀孕20周") and merge it with the caller's `PatientContext`, always towards the safer reading.
4. Fire every rule whose symptoms, combinations and patient conditions hold. The level is the highest
   level of any fired rule: a weaker rule never lowers it. No rule fired → the file's default_level.
5. Route to a department: the top fired rule's department, else the weighted lexicon.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path

from bot.triage.model import (
    AGE_UNITS_IN_MONTHS, EMERGENCY_LEVELS, LEVEL_RANK, LEVELS, NotNow, PatientInText, Rule, TriageRules,
)
from bot.triage.phrases import Hits, Span, normalize
from bot.triage.rules import default_content_dir, load_triage
from bot.understand.normalize import zh_number

_TOKEN = re.compile(r"[a-z0-9']+|[^\x00-\x7f\s]")
# "不正常", "not normal": an after-cue that is itself negated says nothing
_NEGATED_AFTER = re.compile(r"(?:不|没|无|非|未).?$|\b(?:not|no|isn't|aren't|wasn't|never)\s+(?:\w+\s+)?$")
# what may stand between a clause-final denial and the clause's end ("见红没有呢 …")
_CLAUSE_TAIL = re.compile(r"[了呢啊吧的哦呀哈嘛\s，。,.;；!！?？、~～…]*")
_EN_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}


@dataclass(frozen=True)
class PatientContext:
    """What the caller already knows about the patient (profile, intake answers)."""

    age_months: int | None = None
    sex: str | None = None
    pregnant: bool | None = None


@dataclass(frozen=True)
class Match:
    rule: str
    level: str
    span: str  # the text that matched; "a + b" for a combination


@dataclass(frozen=True)
class Assessment:
    level: str  # one of LEVELS
    department: str  # department id or "" when unknown
    department_confidence: float
    emergency_numbers: tuple[str, ...]  # () when not an emergency level
    matched: tuple[Match, ...]
    reply_key: str  # content key of the reply to send
    ask_department: bool = False  # confidence below the lexicon's min_confidence: ask the patient
    symptoms: tuple[str, ...] = ()  # the symptoms present (not negated, not "not now"), fired or not

    @property
    def is_emergency(self) -> bool:
        return self.level in EMERGENCY_LEVELS


def max_level(a: str, b: str) -> str:
    """The more severe of two levels."""
    return a if LEVEL_RANK[a] >= LEVEL_RANK[b] else b


class _Negation:
    """Negation cues and clause boundaries of one message, scanned once."""

    def __init__(self, text: str, hits: Hits, rules: TriageRules, term_spans: list[Span]):
        self.text = text
        negation = rules.negation
        skip = negation.not_negation.spans(hits)
        breaks = [m.end() for m in negation.punctuation.finditer(text)]
        breaks += [e for s, e in negation.clause_breaks.spans(hits) if not _overlaps(s, e, skip)]
        self.break_ends = sorted(breaks)
        # A cue inside a not_negation phrase negates nothing; a cue inside a matched term ("不能说话",
        # "not breathing") does not negate that term nor what overlaps it — but it still negates a
        # symptom elsewhere (a long pattern spanning "…胎动正常 没见红…" does not shield 见红).
        # a term that runs over clauses (a long pattern) is no phrase of its own: it shields nothing
        whole = [(s, e) for s, e in term_spans if self.clause(s) == self.clause(e - 1)]
        self.cues = [
            (start, end, reach, [(s, e) for s, e in whole if s <= start and end <= e])
            for terms, reach in negation.cues
            for start, end in terms.spans(hits)
            if not any(s <= start and end <= e for s, e in skip)
        ]
        self.after = [
            (start, end, reach)
            for terms, reach in negation.after
            for start, end in terms.spans(hits)
            if not _NEGATED_AFTER.search(text[max(0, start - 20):start])
            and not any(s <= start and end <= e for s, e in skip)
        ] + [
            (start, end, reach)
            for terms, reach in negation.after_final
            for start, end in terms.spans(hits)
            if not any(s <= start and end <= e for s, e in skip) and self._ends_clause(end)
        ]

    def _ends_clause(self, position: int) -> bool:
        """Nothing but particles and punctuation from `position` to the end of its clause."""
        i = bisect_right(self.break_ends, position)
        clause_end = self.break_ends[i] if i < len(self.break_ends) else len(self.text)
        return _CLAUSE_TAIL.fullmatch(self.text, position, clause_end) is not None

    def clause(self, position: int) -> int:
        """The index of the clause a position is in."""
        return bisect_right(self.break_ends, position)

    def negated(self, start: int, end: int | None = None) -> bool:
        if not self.cues and not self.after:
            return False
        end = start + 1 if end is None else end
        i = bisect_right(self.break_ends, start)
        clause_start = self.break_ends[i - 1] if i else 0
        if self.after:
            clause_end = self.break_ends[i] if i < len(self.break_ends) else len(self.text)
            for cue_start, cue_end, window in self.after:
                if end <= cue_start and cue_end <= clause_end \
                        and len(_TOKEN.findall(self.text, end, cue_start)) <= window:
                    return True
        for cue_start, cue_end, window, shields in self.cues:
            if clause_start <= cue_start and cue_end <= start:
                if shields and any(s < end and start < e for s, e in shields):
                    continue
                if len(_TOKEN.findall(self.text, cue_end, start)) <= window:
                    return True
        return False


def _overlaps(start: int, end: int, spans: list[Span]) -> bool:
    return any(s < end and start < e for s, e in spans)


def _number(word: str) -> float | None:
    word = word.strip()
    if word.isdigit():
        return float(word)
    if word in _EN_NUMBERS:
        return float(_EN_NUMBERS[word])
    n = zh_number(word)  # mostly digits already: the canonical form converts numerals next to units
    return float(n) if n is not None else None


def _ages_in_text(text: str, hits: Hits, found: PatientInText) -> list[float]:
    ages: list[float] = []
    for pattern in found.age:
        for m in pattern.regex.finditer(text):
            n = _number(m.group("n"))
            unit = pattern.unit
            if not unit:
                word = " ".join(m.group("unit").split())
                unit = found.age_units.get(word) or found.age_units.get(word.rstrip("s"), "")
            if n is not None and unit:
                ages.append(n * AGE_UNITS_IN_MONTHS[unit])
    if found.newborn.spans(hits):
        ages.append(0.0)
    return ages


def assess(text: str, rules: TriageRules, context: PatientContext | None = None) -> Assessment:
    """Triage one patient message. Pure and deterministic; never lowers a fired rule's level."""
    context = context or PatientContext()
    norm = normalize(text)

    hits = rules.phrases.scan(norm)
    candidates, prefixes = rules.candidates(norm, hits)
    found = {s.name: spans for s in candidates if (spans := s.find(norm, hits, prefixes))}
    pregnancy = rules.patient_in_text.pregnant
    pregnancy_spans = pregnancy.find(norm, hits, prefixes) if pregnancy is not None else []
    by_term = rules.departments.by_term
    dept_hits = [
        (dept_id, weight, span)
        for key, spans in hits.items() if key in by_term
        for dept_id, weight in by_term[key]
        for span in spans
    ]
    if not found and not dept_hits and not pregnancy_spans and context.age_months is None and not context.pregnant:
        return rules.quiet  # nothing medical in it ("好的", "7"): the default, at once
    not_now = rules.not_now
    if not_now is not None and not_now.hyperbole is not None and found:
        shield = not_now.hyperbole.find(norm, hits, prefixes)
        if shield:
            found = {n: kept for n, spans in found.items() if (kept := [sp for sp in spans if not _overlaps(*sp, shield)])}
    term_spans = [sp for spans in found.values() for sp in spans] + pregnancy_spans
    term_spans += [span for _, _, span in dept_hits]
    negation = _Negation(norm, hits, rules, term_spans)

    present: dict[str, tuple[int, int]] = {}
    for name, spans in found.items():
        span = next((sp for sp in spans if not negation.negated(*sp)), None)
        if span is not None:
            present[name] = span

    lowered = _not_now(norm, hits, rules, negation, present, found, prefixes) \
        if present and not_now is not None else None

    ages = tuple(_ages_in_text(norm, hits, rules.patient_in_text))
    if context.age_months is not None:
        ages += (float(context.age_months),)
    pregnant = bool(context.pregnant) or any(not negation.negated(s, e) for s, e in pregnancy_spans)

    fired: list[tuple[int, Rule, str]] = []
    by_symptom = rules.rules_by_symptom
    # every rule needs a symptom: only the rules a present symptom triggers are tried, in file order
    for order in sorted({order for name in present for order in by_symptom.get(name, ())}):
        rule = rules.rules[order]
        trigger = next((present[s] for s in rule.symptoms if s in present), None)
        if trigger is None:
            continue
        spans = [trigger]
        if rule.requires_any:
            extra = next((present[s] for s in rule.requires_any if s in present), None)
            if extra is None:
                continue
            spans.append(extra)
        if rule.requires_all:
            if not all(s in present for s in rule.requires_all):
                continue
            spans.extend(present[s] for s in rule.requires_all)
        if rule.unless_any and any(s in present for s in rule.unless_any):
            continue
        if rule.patient is not None and not rule.patient.holds(ages, pregnant):
            continue
        span = " + ".join(dict.fromkeys(norm[a:b] for a, b in spans))
        fired.append((order, rule, span))

    passed = None
    if not_now is not None and not_now.passed is not None and any(r.passed_level for _, r, _ in fired):
        fired, passed = _passed(norm, hits, not_now, fired, prefixes)
    fired.sort(key=lambda f: (-LEVEL_RANK[f[1].level], f[0]))
    level = fired[0][1].level if fired else rules.default_level
    top = [rule for _, rule, _ in fired if rule.level == level]
    reply_key = next((r.reply for r in top if r.reply), rules.replies[level])

    numbers: tuple[str, ...] = ()
    if level in EMERGENCY_LEVELS:
        names = ["default"] + [n for _, r, _ in fired if r.level in EMERGENCY_LEVELS for n in r.numbers]
        numbers = tuple(dict.fromkeys(num for name in names for num in rules.emergency_numbers.get(name, ())))

    rule_department = next((r.department for r in top if r.department), "")
    if rule_department:
        department, confidence = rule_department, 1.0
    else:
        department, confidence = _route(rules, dept_hits, negation, ages, pregnant)
    return Assessment(
        level=level,
        department=department,
        department_confidence=confidence,
        emergency_numbers=numbers,
        matched=tuple(Match(rule.id, rule.level, span) for _, rule, span in fired) + ((lowered,) if lowered else ())
        + ((passed,) if passed else ()),
        reply_key=reply_key,
        ask_department=confidence < rules.departments.min_confidence,
        symptoms=tuple(present),
    )


def _passed(norm: str, hits: Hits, nn: NotNow, fired: list[tuple[int, Rule, str]],
            prefixes: set[str] | None = None) -> tuple[list[tuple[int, Rule, str]], Match | None]:
    """Rules with a `passed_level` take it when the message says the signs have passed and nothing says
    they are still there ("左手麻了二十来分钟就好了" is a TIA: emergency, not an ambulance). The second
    value, `not_now:passed` with the cue's words, says so when a rule was lowered: the learned layer
    then leaves the level where RED-FLAGS.md puts it (screen.py)."""
    assert nn.passed is not None
    if not (nn.passed.may_match(hits, norm, prefixes) and (cues := nn.passed.find(norm, hits, prefixes))):
        return fired, None
    if nn.ongoing is not None and nn.ongoing.may_match(hits, norm, prefixes) and nn.ongoing.find(norm, hits, prefixes):
        return fired, None
    lowered = [(order, replace(rule, level=rule.passed_level) if rule.passed_level
                and LEVEL_RANK[rule.passed_level] < LEVEL_RANK[rule.level] else rule, span)
               for order, rule, span in fired]
    levels = [rule.level for (_, rule, _), (_, was, _) in zip(lowered, fired) if rule is not was]
    if not levels:
        return fired, None
    a, b = cues[0]
    return lowered, Match("not_now:passed", max(levels, key=LEVEL_RANK.__getitem__), norm[a:b])


def _not_now(norm: str, hits: Hits, rules: TriageRules, negation: _Negation,
             present: dict[str, tuple[int, int]], found: dict[str, list[Span]],
             prefixes: set[str] | None = None) -> Match | None:
    """Drop (in place) the symptoms said in a clause that is about the past or a disease in general, or
    in any clause of a message framed as no patient's now (a drill, homework, a joke), when the clause
    has no present cue ("2019年心梗过一次", "what are the signs of a stroke"); the Match that says so.
    A symptom said again in a clause of now stays ("I read that chest pain can be serious, I've had
    chest pain for an hour"): its span moves to that clause."""
    nn = rules.not_now
    assert nn is not None
    cues = [(kind, span) for kind, d in (("past", nn.past), ("general", nn.general), ("frame", nn.frame))
            if d is not None and d.may_match(hits, norm, prefixes) for span in d.find(norm, hits, prefixes)]
    if not cues:
        return None
    now = nn.present.find(norm, hits, prefixes) \
        if nn.present is not None and nn.present.may_match(hits, norm, prefixes) else []
    # a present cue inside a not-now reading is part of it ("万一抽搐了怎么办", "是不是要马上洗胃")
    cue_spans = [span for _, span in cues]
    now = [(s, e) for s, e in now if not _overlaps(s, e, cue_spans)]
    current = {negation.clause(s) for s, _ in now}
    # a reading covers every clause it spans (如果有人|突然心脏骤停 cpr怎么做: 突然 starts a clause);
    # a frame covers them all (公司搞消防演练 | 需要模拟有人窒息), and only in a message with no present
    # cue at all (演习 | 刚才突然 | 有个同事真的晕倒了: 突然 ends a clause, the fall is in the next)
    if now:
        cues = [(kind, span) for kind, span in cues if kind != "frame"]
    last = negation.clause(len(norm))
    over = {clause: (kind, span) for kind, span in cues
            for clause in (range(last + 1) if kind == "frame" else
                           range(negation.clause(span[0]), negation.clause(span[1] - 1) + 1))}
    lowered = None
    for name, (start, _end) in list(present.items()):
        clause = negation.clause(start)
        if clause in over and clause not in current:
            later = next((sp for sp in found.get(name, ()) if sp[0] > start and not negation.negated(*sp)
                          and ((c := negation.clause(sp[0])) not in over or c in current)), None)
            if later is not None:
                present[name] = later
                continue
            del present[name]
            kind, (a, b) = over[clause]
            lowered = Match(f"not_now:{kind}", rules.default_level, norm[a:b])
    return lowered


def _route(rules: TriageRules, hits: list[tuple[str, float, Span]], negation: _Negation, ages: tuple[float, ...],
           pregnant: bool) -> tuple[str, float]:
    """Weighted keyword vote; each distinct keyword counts once. Confidence = share × saturation."""
    counted: set[tuple[str, str]] = set()
    scores: dict[str, float] = {}
    for dept_id, weight, (start, end) in hits:
        keyword = (dept_id, negation.text[start:end])
        if keyword in counted or negation.negated(start, end):
            continue
        counted.add(keyword)
        scores[dept_id] = scores.get(dept_id, 0.0) + weight
    if not any(scores.values()):
        return "", 0.0
    for dept_id, condition, weight in rules.departments.bonuses:
        if condition.holds(ages, pregnant):
            scores[dept_id] = scores.get(dept_id, 0.0) + weight
    order = rules.departments.order
    best = max(scores, key=lambda d: (scores[d], -order[d]))
    share = scores[best] / sum(scores.values())
    saturation = min(1.0, scores[best] / rules.departments.full_confidence_score)
    return best, round(share * saturation, 3)


_BENCH_TEXT = {
    "zh-CN": (
        "医生您好，我妈妈今年六十八岁，这两天一直说胸口压着疼，有时候还出冷汗，左边胳膊也有点麻，"
        "昨天晚上咳嗽了好几次，没有发烧，血压平时有点高，一直在吃降压药，想问一下需要去医院看看吗，"
        "挂什么科比较好，还是先在家观察一下，谢谢医生，麻烦您了，她现在在家休息，精神还可以。"
    ),
    "en": (
        "Hi doctor, my mother is 68 and for two days she says her chest feels tight and heavy, she is "
        "sweating a bit and her left arm feels numb. No fever. She takes blood pressure pills. Should "
        "we go to the hospital or wait?"
    ),
}


def bench_triage(n: int = 10_000, content_dir: str | Path | None = None, locale: str = "zh-CN") -> float:
    """Assessments per second on a ~200-character message (for `carebot bench`)."""
    rules = load_triage(content_dir or default_content_dir(), locale)
    text = _BENCH_TEXT.get(locale, _BENCH_TEXT["en"])
    started = time.perf_counter()
    for _ in range(n):
        assess(text, rules)
    return n / (time.perf_counter() - started)


__all__ = ["LEVELS", "Assessment", "Match", "PatientContext", "assess", "bench_triage", "max_level"]
