"""Load and validate triage rules for one locale, with its department lexicon.

`content/triage/<locale>.yml` holds symptoms, rules, negation cues, emergency numbers and reply keys;
`content/departments/<locale>.yml` holds the weighted department lexicon (read by `departments.py`).
Both are compiled once into a `TriageRules` so that `assess` does no parsing and no I/O. Every problem an operator can make
is reported as a `ConfigProblem` naming file, line, field and what would be valid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, ConfigProblem
from bot.triage.departments import DepartmentsFile
from bot.triage.model import (
    AGE_UNITS_IN_MONTHS, LEVELS, AgePattern, DepartmentLexicon, Negation, NotNow, PatientInText, Rule, Symptom,
    TriageRules,
)
from bot.triage.phrases import PhraseIndex, normalize
from bot.triage.yamlcheck import ID, YamlChecker

_TRIAGE_KEYS = (
    "locale", "default_level", "emergency_numbers", "replies", "negation",
    "patient_in_text", "not_now", "symptoms", "rules",
)
_NOT_NOW_KEYS = ("past", "general", "frame", "hyperbole", "present", "passed", "ongoing")
_SYMPTOM_KEYS = ("keywords", "patterns", "exclude")
_RULE_KEYS = (
    "id", "level", "passed_level", "symptoms", "keywords", "patterns", "exclude", "requires_any", "requires_all",
    "unless_any", "patient", "department", "reply", "numbers",
)
_NEGATION_KEYS = ("cues", "after", "after_final", "not_negation", "clause_breaks")
_PATIENT_TEXT_KEYS = ("age", "age_units", "newborn", "pregnant")
# Sentence punctuation always ends a clause (a full stop between digits is a decimal point), and so
# does a space between two Chinese characters: "没有发烧 胸口疼" is two clauses.
_CLAUSE_PUNCTUATION = re.compile(r"[,，。;；!！?？\n:：]|\.(?!\d)|(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])")


def default_content_dir() -> Path:
    """`content/` in the working directory when it has triage rules, else the one shipped with carebot."""
    here = Path.cwd() / "content"
    if (here / "triage").is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "content"


def load_triage(content_dir: str | Path, locale: str) -> TriageRules:
    """Load `triage/<locale>.yml` and `departments/<locale>.yml` under content_dir; raise ConfigError."""
    content = Path(content_dir)
    triage_file = content / "triage" / f"{locale}.yml"
    dept_file = content / "departments" / f"{locale}.yml"
    if not triage_file.is_file():
        available = sorted(p.stem for p in (content / "triage").glob("*.yml"))
        raise ConfigError([ConfigProblem(str(triage_file), 0, "locale",
                                         f"no triage rules for locale {locale!r}; available: {', '.join(available) or '(none)'}")])
    problems: list[ConfigProblem] = []
    phrases = PhraseIndex()
    lexicon = DepartmentsFile(dept_file, problems, phrases).lexicon()
    rules = _Loader(triage_file, problems, phrases).triage(locale, lexicon)
    if problems or rules is None:
        raise ConfigError(problems or [ConfigProblem(str(triage_file), 0, "", "could not be loaded")])
    return rules


# what the compiled rules are built by: a change to any of these builds them afresh (bot/buildcache.py)
_BUILT_BY = (
    "triage/rules.py", "triage/model.py", "triage/phrases.py", "triage/departments.py", "triage/yamlcheck.py",
    "understand/normalize.py", "understand/sounds.py", "understand/data/zh_sounds.json",
    "understand/data/zh_sound_words.txt", "yamlsrc.py", "errors.py", "buildcache.py",
)


def load_all_triage(content_dir: str | Path, cache: bool = True) -> dict[str, TriageRules]:
    """Every locale with a file in content_dir/triage/, keyed by locale; all problems raised together.
    With `cache`, rules compiled by an earlier start from the same files and code are reused
    (bot/buildcache.py: keyed by their hash, checked, never written when a file has a problem)."""
    if not cache:
        return _load_all_triage(content_dir)
    from importlib.metadata import version

    from bot import buildcache

    content = Path(content_dir)
    try:
        files = sorted(content.glob("triage/**/*.yml")) + sorted(content.glob("departments/*.yml"))
        key = buildcache.key_of("triage", files, _BUILT_BY, extra=(
            str(content_dir), version("OpenCC"), version("pyahocorasick")))
    except Exception:  # noqa: BLE001 - an unreadable file or package: load the files, which reports it
        return _load_all_triage(content_dir)
    return buildcache.cached("triage", key, lambda: _load_all_triage(content_dir), _all_rules)


def _all_rules(value: object) -> bool:
    return isinstance(value, dict) and bool(value) and all(
        isinstance(k, str) and isinstance(v, TriageRules) and v.locale == k for k, v in value.items())


def _load_all_triage(content_dir: str | Path) -> dict[str, TriageRules]:
    loaded: dict[str, TriageRules] = {}
    problems: list[ConfigProblem] = []
    for path in sorted((Path(content_dir) / "triage").glob("*.yml")):
        try:
            loaded[path.stem] = load_triage(content_dir, path.stem)
        except ConfigError as err:
            problems.extend(err.problems)
    if problems:
        raise ConfigError(problems)
    return loaded


class _Loader(YamlChecker):
    """Reads `triage/<locale>.yml` (and its extra files) into `TriageRules`."""

    # --- triage/<locale>.yml ----------------------------------------------------------------------

    def triage(self, locale: str, lexicon: DepartmentLexicon | None) -> TriageRules | None:
        doc = self.read()
        if doc is None or self.mapping(doc, "", _TRIAGE_KEYS, 1) is None:
            return None
        if doc.get("locale", locale) != locale:
            self.problem(self.line(doc, "locale"), "locale", f"says {doc.get('locale')!r} but the file is for {locale!r}")
        default_level = self.level(doc, "default_level", "default_level") if "default_level" in doc else "consultation"
        numbers = self._numbers(doc)
        replies = self._replies(doc)
        negation = self._negation(doc)
        patient_in_text = self._patient_in_text(doc)
        not_now = self._not_now(doc)
        symptoms = self._symptoms(doc)
        extras = self._extra_files(locale, symptoms)
        declared = set(symptoms)
        rules = self._rules(doc, symptoms, numbers, lexicon, declared, required=True)
        for loader, extra in extras:
            rules += loader._rules(extra, symptoms, numbers, lexicon, declared, required=False)
        ids = [r.id for r in rules]
        for rule_id in sorted({i for i in ids if ids.count(i) > 1}):
            self.problem(0, "rules", f"rule id {rule_id!r} is used in more than one file of triage/{locale}")
        if None in (default_level, negation, patient_in_text, lexicon) or self.problems:
            return None
        return TriageRules(
            locale=locale, default_level=default_level, emergency_numbers=numbers, replies=replies,
            negation=negation, patient_in_text=patient_in_text, symptoms=tuple(symptoms.values()),
            rules=tuple(rules), departments=lexicon, phrases=self.phrases, source=self.file, not_now=not_now,
        )

    def _not_now(self, doc: Any) -> NotNow | None:
        node = doc.get("not_now")
        if node is None or self.mapping(node, "not_now", _NOT_NOW_KEYS, self.line(doc, "not_now")) is None:
            return None
        parts: dict[str, Symptom | None] = {}
        for key in _NOT_NOW_KEYS:
            body, field = node.get(key), f"not_now.{key}"
            parts[key] = None
            if body is not None and self.mapping(body, field, _SYMPTOM_KEYS, self.line(node, key)) is not None:
                parts[key] = self.symptom(f"not_now:{key}", body, field, self.line(node, key))
        return NotNow(**parts)

    def _numbers(self, doc: Any) -> dict[str, tuple[str, ...]]:
        node = doc.get("emergency_numbers")
        line = self.line(doc, "emergency_numbers")
        if not isinstance(node, dict) or not node.get("default"):
            self.problem(line, "emergency_numbers",
                         'needs at least default: ["120"] (the numbers given with every emergency level)')
            return {"default": ()}
        return {str(k): tuple(self.strings(node, k, f"emergency_numbers.{k}")) for k in node}

    def _replies(self, doc: Any) -> dict[str, str]:
        replies = {level: f"triage.{level}" for level in LEVELS}
        node = doc.get("replies")
        if node is None:
            return replies
        if self.mapping(node, "replies", LEVELS, self.line(doc, "replies")) is None:
            return replies
        for level, key in node.items():
            if not isinstance(key, str) or not key:
                self.problem(self.line(node, level), f"replies.{level}", "must be a content key, e.g. triage.emergency")
            elif level in LEVELS:
                replies[level] = key
        return replies

    def _negation(self, doc: Any) -> Negation | None:
        node = doc.get("negation")
        line = self.line(doc, "negation")
        if self.mapping(node, "negation", _NEGATION_KEYS, line) is None:
            return None
        cues = node.get("cues")
        if not isinstance(cues, dict) or not cues:
            self.problem(self.line(node, "cues"), "negation.cues", "must map each cue to its reach in tokens, e.g. {没有: 6, 不: 2}")
            return None
        by_reach = self._reaches(cues, "negation.cues")
        after = node.get("after") or {}
        if not isinstance(after, dict):
            self.problem(self.line(node, "after"), "negation.after", "must map each cue to its reach in tokens, e.g. {正常: 3}")
            after = {}
        after_by_reach = self._reaches(after, "negation.after")
        final = node.get("after_final") or {}
        if not isinstance(final, dict):
            self.problem(self.line(node, "after_final"), "negation.after_final",
                         "must map each cue to its reach in tokens, e.g. {没有: 1}")
            final = {}
        final_by_reach = self._reaches(final, "negation.after_final")
        skip = self.strings(node, "not_negation", "negation.not_negation")
        breaks = self.strings(node, "clause_breaks", "negation.clause_breaks")
        return Negation(
            cues=tuple((self.phrases.add(words), reach) for reach, words in sorted(by_reach.items())),
            not_negation=self.phrases.add(skip),
            clause_breaks=self.phrases.add(breaks),
            punctuation=_CLAUSE_PUNCTUATION,
            after=tuple((self.phrases.add(words), reach) for reach, words in sorted(after_by_reach.items())),
            after_final=tuple((self.phrases.add(words), reach) for reach, words in sorted(final_by_reach.items())),
        )

    def _reaches(self, cues: dict, where: str) -> dict[int, list[str]]:
        by_reach: dict[int, list[str]] = {}
        for cue, window in cues.items():
            if not isinstance(window, int) or isinstance(window, bool) or window < 0:
                self.problem(self.line(cues, cue), f"{where}.{cue}", "reach must be a whole number of tokens ≥ 0, e.g. 4")
            else:
                by_reach.setdefault(window, []).append(str(cue))
        return by_reach

    def _patient_in_text(self, doc: Any) -> PatientInText | None:
        node = doc.get("patient_in_text")
        line = self.line(doc, "patient_in_text")
        if node is None:
            return PatientInText((), {}, self.phrases.add([]), None)
        if self.mapping(node, "patient_in_text", _PATIENT_TEXT_KEYS, line) is None:
            return None
        units = node.get("age_units") or {}
        age_units: dict[str, str] = {}
        if not isinstance(units, dict):
            self.problem(self.line(node, "age_units"), "patient_in_text.age_units", "must map a unit word to days, weeks, months or years")
        else:
            for word, unit in units.items():
                if unit not in AGE_UNITS_IN_MONTHS:
                    self.problem(self.line(units, word), f"patient_in_text.age_units.{word}",
                                 f"unknown unit {unit!r}; valid units: {', '.join(AGE_UNITS_IN_MONTHS)}")
                else:
                    age_units[normalize(str(word)).strip()] = unit
        ages = []
        for i, item in enumerate(node.get("age") or []):
            field, iline = f"patient_in_text.age[{i}]", self.line(node["age"], i)
            if self.mapping(item, field, ("pattern", "unit"), iline) is None:
                continue
            regex = self.compile(str(item.get("pattern", "")), iline, f"{field}.pattern")
            unit = item.get("unit", "")
            if unit and unit not in AGE_UNITS_IN_MONTHS:
                self.problem(iline, f"{field}.unit", f"unknown unit {unit!r}; valid units: {', '.join(AGE_UNITS_IN_MONTHS)}")
            elif regex is not None:
                if "n" not in regex.groupindex or (not unit and "unit" not in regex.groupindex):
                    self.problem(iline, f"{field}.pattern",
                                 "needs a group (?P<n>...) for the number and either (?P<unit>...) or unit: months")
                else:
                    ages.append(AgePattern(regex, unit))
        newborn_terms = self.strings(node, "newborn", "patient_in_text.newborn")
        newborn = self.phrases.add(newborn_terms)
        pregnant = None
        if node.get("pregnant") is not None:
            pnode = node["pregnant"]
            pline = self.line(node, "pregnant")
            if self.mapping(pnode, "patient_in_text.pregnant", _SYMPTOM_KEYS, pline) is not None:
                pregnant = self.symptom("pregnant", pnode, "patient_in_text.pregnant", pline)
        return PatientInText(tuple(ages), age_units, newborn, pregnant)

    def _symptoms(self, doc: Any) -> dict[str, Symptom]:
        node = doc.get("symptoms") or {}
        symptoms: dict[str, Symptom] = {}
        if not isinstance(node, dict):
            self.problem(self.line(doc, "symptoms"), "symptoms", "must map a symptom name to its keywords/patterns")
            return symptoms
        for name, body in node.items():
            field, line = f"symptoms.{name}", self.line(node, name)
            if not isinstance(name, str) or not ID.match(name):
                self.problem(line, field, "symptom names are lower-case ASCII with underscores, e.g. chest_pain")
                continue
            if self.mapping(body, field, _SYMPTOM_KEYS, line) is None:
                continue
            symptom = self.symptom(name, body, field, line)
            if symptom is not None:
                symptoms[name] = symptom
        return symptoms

    def _extra_files(self, locale: str, symptoms: dict[str, Symptom]) -> list[tuple[_Loader, Any]]:
        """`triage/<locale>/*.yml`: more symptoms and rules (one file per group of conditions), sharing
        the main file's symptoms, negation, numbers and patient reading. Symptom names are one namespace."""
        extras = []
        for path in sorted((self.path.parent / locale).glob("*.yml")):
            loader = _Loader(path, self.problems, self.phrases)
            doc = loader.read()
            if doc is None or loader.mapping(doc, "", ("symptoms", "rules"), 1) is None:
                continue
            for name, symptom in loader._symptoms(doc).items():
                if name in symptoms:
                    node = doc["symptoms"]
                    loader.problem(loader.line(node, name), f"symptoms.{name}",
                                   f"symptom {name!r} is already declared in another triage/{locale} file; "
                                   "add keywords there or pick another name")
                symptoms[name] = symptom
            extras.append((loader, doc))
        return extras

    def _rules(self, doc: Any, symptoms: dict[str, Symptom], numbers: dict[str, tuple[str, ...]],
               lexicon: DepartmentLexicon | None, declared: set[str], required: bool) -> list[Rule]:
        node = doc.get("rules")
        if node is None and not required:
            return []
        if not isinstance(node, list) or (required and not node):
            self.problem(self.line(doc, "rules"), "rules", "must be a non-empty list of rules")
            return []
        rules, seen = [], set()
        for i, body in enumerate(node):
            field, line = f"rules[{i}]", self.line(node, i)
            if self.mapping(body, field, _RULE_KEYS, line) is None:
                continue
            rule_id = body.get("id")
            if not isinstance(rule_id, str) or not ID.match(rule_id):
                self.problem(line, f"{field}.id", "needs an id in lower-case ASCII with underscores, e.g. chest_pain_sweating")
                continue
            field = f"rules[{i}]({rule_id})"
            if rule_id in seen:
                self.problem(line, f"{field}.id", f"duplicate rule id {rule_id!r}")
            seen.add(rule_id)
            level = self.level(body, "level", f"{field}.level")
            named = self.strings(body, "symptoms", f"{field}.symptoms")
            triggers = list(named)
            if body.get("keywords") or body.get("patterns"):
                inline = self.symptom(f"rule:{rule_id}", body, field, line)
                if inline is not None:
                    symptoms[inline.name] = inline
                    triggers.append(inline.name)
            elif body.get("exclude"):
                self.problem(self.line(body, "exclude"), f"{field}.exclude",
                             "exclude only applies to the rule's own keywords/patterns; put it under the symptom")
            if not triggers and not (body.get("keywords") or body.get("patterns")):
                self.problem(line, field, "needs symptoms: [names] or its own keywords: [...] / patterns: [...]")
            requires_any = self.strings(body, "requires_any", f"{field}.requires_any")
            requires_all = self.strings(body, "requires_all", f"{field}.requires_all")
            unless_any = self.strings(body, "unless_any", f"{field}.unless_any")
            for key, names in (("symptoms", named), ("requires_any", requires_any),
                               ("requires_all", requires_all), ("unless_any", unless_any)):
                for name in names:
                    if name not in declared:
                        self.problem(self.line(body, key), f"{field}.{key}",
                                     f"unknown symptom {name!r}; declared symptoms: {', '.join(sorted(declared)) or '(none)'}")
            patient = self.patient(body["patient"], f"{field}.patient", self.line(body, "patient")) if "patient" in body else None
            department = body.get("department", "")
            if department and lexicon is not None and lexicon.get(department) is None:
                self.problem(self.line(body, "department"), f"{field}.department",
                             f"unknown department {department!r}; valid: {', '.join(d.id for d in lexicon.departments)}")
            extra = tuple(self.strings(body, "numbers", f"{field}.numbers"))
            for name in extra:
                if name not in numbers:
                    self.problem(self.line(body, "numbers"), f"{field}.numbers",
                                 f"unknown number list {name!r}; lists in emergency_numbers: {', '.join(numbers)}")
            reply = body.get("reply", "")
            if not isinstance(reply, str):
                self.problem(self.line(body, "reply"), f"{field}.reply", "must be a content key, e.g. triage.suicide")
                reply = ""
            passed_level = self.level(body, "passed_level", f"{field}.passed_level") if "passed_level" in body else ""
            if level is not None:
                rules.append(Rule(rule_id, level, tuple(triggers), tuple(requires_any), tuple(requires_all),
                                  patient, str(department or ""), reply, extra, passed_level or "",
                                  tuple(unless_any)))
        return rules
