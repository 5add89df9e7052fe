"""The compiled form of one locale's triage rules and department lexicon (built by `rules.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from bot.triage.phrases import Hits, PhraseIndex, Span, Terms

LEVELS = ("self_care", "consultation", "consultation_24", "emergency", "emergency_ambulance")
EMERGENCY_LEVELS = ("emergency", "emergency_ambulance")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}

AGE_UNITS_IN_MONTHS = {"days": 12 / 365.25, "weeks": 12 / 52.18, "months": 1.0, "years": 12.0}


@dataclass(frozen=True)
class PatientCondition:
    """A rule's `patient:` block: every given field must hold."""

    age_months_under: float | None = None
    age_months_at_least: float | None = None
    pregnant: bool | None = None

    def holds(self, ages: tuple[float, ...], pregnant: bool) -> bool:
        if self.pregnant is not None and self.pregnant != pregnant:
            return False
        if self.age_months_under is not None or self.age_months_at_least is not None:
            # Any known age satisfying the condition counts: the message may be about a child while
            # the profile belongs to the parent, and the safe reading is the one that escalates.
            def fits(age: float) -> bool:
                if self.age_months_under is not None and not age < self.age_months_under:
                    return False
                return self.age_months_at_least is None or age >= self.age_months_at_least

            return any(fits(age) for age in ages)
        return True


@dataclass(frozen=True)
class Symptom:
    """A named detector: keywords and regexes compiled into one pattern.

    A match that overlaps an `exclude` phrase is dropped: 不想活动 is not 不想活, 胸椎疼 is not chest pain.
    """

    name: str
    keywords: Terms
    patterns: tuple[re.Pattern[str], ...]
    exclude: Terms

    @cached_property
    def _starts(self) -> tuple[frozenset[str] | None, ...]:
        return tuple(first_chars(p) for p in self.patterns)

    @cached_property
    def _any_start(self) -> frozenset[str] | None:
        """Every character one of the patterns can start with (None: some pattern can start anywhere)."""
        if not self.patterns or any(s is None for s in self._starts):
            return None
        return frozenset().union(*self._starts)  # type: ignore[arg-type]

    def may_match(self, hits: Hits, chars: frozenset[str]) -> bool:
        if self.keywords.key in hits:
            return True
        if not self.patterns:
            return False
        starts = self._any_start
        return starts is None or not starts.isdisjoint(chars)

    def find(self, text: str, hits: Hits, chars: frozenset[str] | None = None) -> list[Span]:
        """Spans of this symptom in normalized text (scanned into hits), in order of position.
        `chars`, the set of the text's characters, lets most regexes be skipped without running:
        a pattern whose every match begins with one of a few characters cannot match a text that
        has none of them."""
        spans = list(self.keywords.spans(hits))
        for pattern, starts in zip(self.patterns, self._starts):
            if starts is not None and chars is not None and starts.isdisjoint(chars):
                continue
            spans += [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
        if spans and self.exclude.phrases:
            blocked = self.exclude.spans(hits)
            spans = [s for s in spans if not any(b0 < s[1] and s[0] < b1 for b0, b1 in blocked)]
        return sorted(spans)


@dataclass(frozen=True)
class Rule:
    id: str
    level: str
    symptoms: tuple[str, ...]  # any one of these triggers the rule
    requires_any: tuple[str, ...]  # and, when given, one of these too
    requires_all: tuple[str, ...]  # and, when given, all of these
    patient: PatientCondition | None
    department: str
    reply: str
    numbers: tuple[str, ...]  # names of extra lists in emergency_numbers


@dataclass(frozen=True)
class Negation:
    cues: tuple[tuple[Terms, int], ...]  # cue phrases grouped by reach (tokens before a term)
    not_negation: Terms  # phrases with a cue inside that negate nothing
    clause_breaks: Terms
    punctuation: re.Pattern[str]  # always ends a clause


@dataclass(frozen=True)
class AgePattern:
    regex: re.Pattern[str]
    unit: str  # fixed unit, or "" to read the `unit` group through age_units


@dataclass(frozen=True)
class PatientInText:
    age: tuple[AgePattern, ...]
    age_units: dict[str, str]
    newborn: Terms
    pregnant: Symptom | None


@dataclass(frozen=True)
class Department:
    id: str
    names: dict[str, str]
    keywords: tuple[tuple[Terms, float], ...]  # keywords grouped by weight
    bonuses: tuple[tuple[PatientCondition, float], ...]


@dataclass(frozen=True)
class DepartmentLexicon:
    min_confidence: float
    full_confidence_score: float
    departments: tuple[Department, ...]

    @cached_property
    def by_term(self) -> dict[int, tuple[tuple[str, float], ...]]:
        """Terms key → (department id, weight): a message's hits find their departments directly."""
        index: dict[int, list[tuple[str, float]]] = {}
        for dept in self.departments:
            for terms, weight in dept.keywords:
                index.setdefault(terms.key, []).append((dept.id, weight))
        return {k: tuple(v) for k, v in index.items()}

    def get(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)


@dataclass(frozen=True)
class TriageRules:
    """Compiled triage rules and department lexicon for one locale. Build with `load_triage`."""

    locale: str
    default_level: str
    emergency_numbers: dict[str, tuple[str, ...]]
    replies: dict[str, str]
    negation: Negation
    patient_in_text: PatientInText
    symptoms: tuple[Symptom, ...]
    rules: tuple[Rule, ...]
    departments: DepartmentLexicon
    phrases: PhraseIndex
    source: str

    @cached_property
    def always_scan(self) -> tuple[Symptom, ...]:
        """Symptoms with regex patterns run on every message; the others only when their keywords
        were among the message's phrase hits."""
        return tuple(s for s in self.symptoms if s.patterns)

    @property
    def min_department_confidence(self) -> float:
        return self.departments.min_confidence

    def department_name(self, department_id: str, locale: str | None = None) -> str:
        """Display name of a department in `locale` (default: this rules' locale), else its id."""
        dept = self.departments.get(department_id)
        if dept is None:
            return department_id
        return dept.names.get(locale or self.locale) or dept.names.get("en") or department_id


def first_chars(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """The characters every match of `pattern` starts with, or None when that is not a short
    literal set (a pattern starting with `.`, a negated class, an optional part …)."""
    try:
        import re._parser as sre_parse  # Python 3.11+
        from re._constants import AT, BRANCH, IN, LITERAL, SUBPATTERN
    except ImportError:  # pragma: no cover - older Pythons
        return None

    def of(items: list) -> set[str] | None:  # type: ignore[type-arg]
        for op, arg in items:
            if op is AT:  # \b, ^ … take no characters
                continue
            if op is LITERAL:
                return {chr(arg)}
            if op is IN:
                chars = set()
                for sub_op, sub_arg in arg:
                    if sub_op is not LITERAL:
                        return None
                    chars.add(chr(sub_arg))
                return chars
            if op is SUBPATTERN:
                return of(list(arg[-1]))
            if op is BRANCH:
                out: set[str] = set()
                for branch in arg[1]:
                    got = of(list(branch))
                    if got is None:
                        return None
                    out |= got
                return out
            return None
        return None

    try:
        found = of(list(sre_parse.parse(pattern.pattern, pattern.flags)))
    except Exception:
        return None
    if found is None or len(found) > 40 or pattern.flags & re.IGNORECASE:
        return None
    return frozenset(found)
