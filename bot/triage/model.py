"""The compiled form of one locale's triage rules and department lexicon (built by `rules.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

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
    def _prefixes(self) -> tuple[frozenset[str] | None, ...]:
        return tuple(None if (p := (pattern.prefixes if isinstance(pattern, LazyRegex) else literal_prefixes(pattern)))
                     is None else frozenset(p) for pattern in self.patterns)

    def _pattern_may_match(self, i: int, text: str, found: frozenset[str] | set[str] | None) -> bool:
        prefixes = self._prefixes[i]
        if prefixes is None:
            return True
        return not prefixes.isdisjoint(found) if found is not None else any(p in text for p in prefixes)

    def may_match(self, hits: Hits, text: str, found: frozenset[str] | set[str] | None = None) -> bool:
        """False when neither a keyword was found nor any pattern can match (cheap: substring checks,
        or with `found`, the prefixes present, a set lookup)."""
        if self.keywords.key in hits:
            return True
        return any(self._pattern_may_match(i, text, found) for i in range(len(self.patterns)))

    def find(self, text: str, hits: Hits, found: frozenset[str] | set[str] | None = None) -> list[Span]:
        """Spans of this symptom in normalized text (scanned into hits), in order of position.
        A pattern runs only when one of the literal prefixes its every match starts with is in the
        text (`literal_prefixes`; `found`, when given, is the set of prefixes present, from
        `TriageRules.candidates`): most of a locale's hundreds of regexes are skipped unrun."""
        spans = list(hits.get(self.keywords.key, ()))  # `self.keywords.spans(hits)`, inlined: hot
        for pattern, prefixes in zip(self.patterns, self._prefixes):  # `_pattern_may_match`, inlined: hot
            if prefixes is None or (not prefixes.isdisjoint(found) if found is not None
                                    else any(p in text for p in prefixes)):
                for m in pattern.finditer(text):
                    start, end = m.span()
                    if end > start:
                        spans.append((start, end))
        if not spans:
            return spans
        if self.exclude.phrases:
            blocked = self.exclude.spans(hits)
            spans = [s for s in spans if not any(b0 < s[1] and s[0] < b1 for b0, b1 in blocked)]
        spans.sort()
        return spans


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
    # the level when the message says the signs have passed (not_now.passed) and nothing says they are
    # still there (not_now.ongoing): a TIA that has passed is `emergency`, not an ambulance (RED-FLAGS.md)
    passed_level: str = ""
    # and none of these: "a seizure" is an ambulance unless the message says it is a known epileptic's
    # usual fit (another rule takes that case, with its own passed_level)
    unless_any: tuple[str, ...] = ()


@dataclass(frozen=True)
class Negation:
    cues: tuple[tuple[Terms, int], ...]  # cue phrases grouped by reach (tokens before a term)
    not_negation: Terms  # phrases with a cue inside that negate nothing
    clause_breaks: Terms
    punctuation: re.Pattern[str]  # always ends a clause
    # cues *after* a symptom in its clause that say it is fine ("喘气也正常", "breathing is fine"),
    # grouped by reach (tokens after the term); void when negated themselves ("不正常")
    after: tuple[tuple[Terms, int], ...] = ()
    # cues after a symptom that deny it only when they end its clause ("见红没有", "破水也没有"; not
    # "出血没有止住"), grouped by reach
    after_final: tuple[tuple[Terms, int], ...] = ()


@dataclass(frozen=True)
class NotNow:
    """Readings that say a message is not a present emergency (docs/triage.md, "Not now").

    `hyperbole` phrases shield the symptom words inside them ("gonna give me a heart attack", 饿死了).
    `past` events that are over and `general` questions about a disease lower a message's rule level to
    the default — only when no `present` cue (刚才, 突然, right now, again…) says it is happening now.
    They cover the clauses they span; a `frame` (a drill, a course, homework, a joke, a pet) covers the
    whole message, each clause with a present cue still excepted.
    """

    past: Symptom | None
    general: Symptom | None
    hyperbole: Symptom | None
    present: Symptom | None
    passed: Symptom | None = None  # "20分钟就好了", "back to normal": signs that have gone (rules opt in)
    ongoing: Symptom | None = None  # "还是", "still": they have not
    frame: Symptom | None = None  # "消防演习", "开个玩笑": the whole message is not a patient now


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

    @cached_property
    def order(self) -> dict[str, int]:
        """Department id → its place in the lexicon (ties in the vote go to the earlier one)."""
        return {d.id: i for i, d in reversed(list(enumerate(self.departments)))}

    @cached_property
    def bonuses(self) -> tuple[tuple[str, Any, float], ...]:
        """Every department's (id, patient condition, weight) bonuses, flattened once."""
        return tuple((d.id, condition, weight) for d in self.departments for condition, weight in d.bonuses)

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
    not_now: NotNow | None = None

    def compile_all(self) -> list[str]:
        """Compile every lazily compiled pattern now; the problems (for `carebot validate`)."""
        problems = []
        for symptom in self.symptoms:
            for i, pattern in enumerate(symptom.patterns):
                if isinstance(pattern, LazyRegex):
                    try:
                        pattern.compiled()
                    except re.error as err:
                        problems.append(f"{self.source}: symptoms.{symptom.name}.patterns[{i}]: "
                                        f"invalid regex {pattern.pattern!r}: {err}")
        return problems

    @cached_property
    def quiet(self) -> Any:
        """The assessment of a message in which nothing at all was found (the default level)."""
        from bot.triage.engine import Assessment  # the engine imports this module

        level = self.default_level
        return Assessment(level=level, department="", department_confidence=0.0, emergency_numbers=(),
                          matched=(), reply_key=self.replies[level], ask_department=True)

    @cached_property
    def rules_by_symptom(self) -> dict[str, tuple[int, ...]]:
        """Symptom name → the indices (file order) of the rules it triggers: a message's present
        symptoms pick their few rules instead of every rule being tried."""
        index: dict[str, list[int]] = {}
        for order, rule in enumerate(self.rules):
            for name in dict.fromkeys(rule.symptoms):
                index.setdefault(name, []).append(order)
        return {name: tuple(orders) for name, orders in index.items()}

    @cached_property
    def _symptom_index(self) -> tuple[dict[int, list[int]], Any, tuple[int, ...]]:
        """Which symptoms a message can touch: by the keyword groups found in it, and by the literal
        prefixes of their patterns (one Aho-Corasick pass); patterns without such a prefix always run."""
        import ahocorasick

        by_key: dict[int, list[int]] = {}
        by_prefix: dict[str, set[int]] = {}
        always: list[int] = []
        for i, symptom in enumerate(self.symptoms):
            by_key.setdefault(symptom.keywords.key, []).append(i)
            for prefixes in symptom._prefixes:
                if prefixes is None:
                    always.append(i)
                    break
                for prefix in prefixes:
                    by_prefix.setdefault(prefix, set()).add(i)
        # the pregnancy and not-now readings run on every message: their prefixes are looked for in the
        # same pass (a reading's pattern runs when one of its prefixes is in the set `candidates` returns)
        nn = self.not_now
        readings = [self.patient_in_text.pregnant] + ([nn.past, nn.general, nn.hyperbole, nn.present, nn.passed,
                                                        nn.ongoing, nn.frame] if nn is not None else [])
        for reading in readings:
            for prefixes in reading._prefixes if reading is not None else ():
                for prefix in prefixes or ():
                    by_prefix.setdefault(prefix, set())
        automaton = ahocorasick.Automaton()
        for prefix, ids in by_prefix.items():
            automaton.add_word(prefix, (prefix, tuple(ids)))
        if by_prefix:
            automaton.make_automaton()
        return by_key, automaton, tuple(always)

    def candidates(self, text: str, hits: Hits) -> tuple[list[Symptom], set[str]]:
        """The symptoms worth running on this message, in file order (most of hundreds are skipped),
        and the pattern prefixes present in it (for `Symptom.find` of those, of the pregnancy reading
        and of the not-now readings)."""
        by_key, automaton, always = self._symptom_index
        ids = set(always)
        for key in hits:
            ids.update(by_key.get(key, ()))
        prefixes: set[str] = set()
        if len(automaton):
            for _end, (prefix, found) in automaton.iter(text):
                prefixes.add(prefix)
                ids.update(found)
        return [self.symptoms[i] for i in sorted(ids)], prefixes

    @property
    def min_department_confidence(self) -> float:
        return self.departments.min_confidence

    def department_name(self, department_id: str, locale: str | None = None) -> str:
        """Display name of a department in `locale` (default: this rules' locale), else its id."""
        dept = self.departments.get(department_id)
        if dept is None:
            return department_id
        return dept.names.get(locale or self.locale) or dept.names.get("en") or department_id


class LazyRegex:
    """A pattern checked at load (parsed: a syntax error is reported with its file and line) and
    compiled on first use. A locale has hundreds of triage patterns and most never run on a given
    day (their literal is absent), so start-up does not pay for compiling them.
    `carebot validate` compiles every one (`TriageRules.compile_all`)."""

    __slots__ = ("pattern", "prefixes", "_compiled", "finditer")

    def __init__(self, pattern: str):
        import re._parser as sre_parse  # Python 3.11+

        tree = sre_parse.parse(pattern, 0)  # raises re.error, as re.compile would
        self.pattern = pattern
        self.prefixes = literal_prefixes(tree)
        self._compiled: re.Pattern[str] | None = None
        # until the first use, `finditer` compiles; then it is the compiled pattern's own (C) method,
        # so a symptom's scan calls the regex engine directly (`Symptom.find` runs on every message)
        self.finditer = self._first_finditer

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
            self.finditer = self._compiled.finditer
        return self._compiled

    def _first_finditer(self, text: str):  # type: ignore[no-untyped-def]
        return self.compiled().finditer(text)

    def __getstate__(self) -> tuple[str, tuple[str, ...] | None]:  # the start-up cache (bot/buildcache.py)
        return self.pattern, self.prefixes

    def __setstate__(self, state: tuple[str, tuple[str, ...] | None]) -> None:
        self.pattern, self.prefixes = state
        self._compiled = None
        self.finditer = self._first_finditer


def literal_prefixes(pattern: re.Pattern[str] | Any) -> tuple[str, ...] | None:
    """Literal strings one of which every match of `pattern` contains — its leading literal, or
    failing that its most selective mandatory literal part — or None when there is no such short set.
    '(胸口|心口)[^，]{0,4}疼' → ('胸口', '心口'); 'chest\\s+pain' → ('chest',); '\\d+分钟' → ('分钟',)."""
    try:
        import re._parser as sre_parse  # Python 3.11+
        from re._constants import AT, BRANCH, IN, LITERAL, SUBPATTERN
    except ImportError:  # pragma: no cover - older Pythons
        return None

    def options(op, arg) -> set[str] | None:  # type: ignore[no-untyped-def]
        """The literal strings a mandatory item starts with (None: not a literal item)."""
        if op is IN:
            chars = set()
            for sub_op, sub_arg in arg:
                if sub_op is not LITERAL:
                    return None
                chars.add(chr(sub_arg))
            return chars
        if op is SUBPATTERN:
            return leading(list(arg[-1]))
        if op is BRANCH:
            out: set[str] = set()
            for branch in arg[1]:
                got = leading(list(branch))
                if got is None:
                    return None
                out |= got
            return out
        return None

    def leading(items: list) -> set[str] | None:  # type: ignore[type-arg]
        run = ""
        for op, arg in items:
            if op is AT and not run:  # \b, ^ … take no characters
                continue
            if op is LITERAL:
                run += chr(arg)
                continue
            return {run} if run else options(op, arg)
        return {run} if run else None

    def gates(items: list) -> list[set[str]]:  # type: ignore[type-arg]
        """Every mandatory literal part of a top-level sequence (each a set of alternatives)."""
        found, run = [], ""
        for op, arg in items:
            if op is LITERAL:
                run += chr(arg)
                continue
            if run:
                found.append({run})
                run = ""
            got = options(op, arg)
            if got:
                found.append(got)
        if run:
            found.append({run})
        return found

    if isinstance(pattern, re.Pattern):
        if pattern.flags & re.IGNORECASE:
            return None
        try:
            items = list(sre_parse.parse(pattern.pattern, pattern.flags))
        except Exception:
            return None
    else:  # an already parsed tree (LazyRegex)
        if pattern.state.flags & re.IGNORECASE:
            return None
        items = list(pattern)
    first = leading(items)
    candidates = [g for g in ([first] if first else []) + gates(items) if g and "" not in g and len(g) <= 60]
    if not candidates:
        return None
    best = max(candidates, key=lambda g: (min(len(x) for x in g), -len(g)))
    return tuple(sorted(best))
