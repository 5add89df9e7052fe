"""Load and validate triage rules and the department lexicon for one locale.

`content/triage/<locale>.yml` holds symptoms, rules, negation cues, emergency numbers and reply keys;
`content/departments/<locale>.yml` holds the weighted department lexicon. Both are compiled once here
into a `TriageRules` so that `assess` does no parsing and no I/O. Every problem an operator can make
is reported as a `ConfigProblem` naming file, line, field and what would be valid.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.yamlsrc import parse_yaml

from bot.errors import ConfigError, ConfigProblem
from bot.triage.model import (
    AGE_UNITS_IN_MONTHS, LEVELS, AgePattern, Department, DepartmentLexicon, LazyRegex, Negation, NotNow, PatientCondition,
    PatientInText, Rule, Symptom, TriageRules,
)
from bot.triage.phrases import PhraseIndex, normalize

_TRIAGE_KEYS = (
    "locale", "default_level", "emergency_numbers", "replies", "negation",
    "patient_in_text", "not_now", "symptoms", "rules",
)
_NOT_NOW_KEYS = ("past", "general", "hyperbole", "present")
_SYMPTOM_KEYS = ("keywords", "patterns", "exclude")
_RULE_KEYS = (
    "id", "level", "symptoms", "keywords", "patterns", "exclude", "requires_any", "requires_all",
    "patient", "department", "reply", "numbers",
)
_PATIENT_KEYS = ("age_months_under", "age_months_at_least", "pregnant")
_NEGATION_KEYS = ("cues", "not_negation", "clause_breaks")
_PATIENT_TEXT_KEYS = ("age", "age_units", "newborn", "pregnant")
_DEPT_FILE_KEYS = ("min_confidence", "full_confidence_score", "departments")
_DEPT_KEYS = ("id", "name", "keywords", "patient_bonus")
_BONUS_KEYS = ("when", "weight")
# Sentence punctuation always ends a clause (a full stop between digits is a decimal point), and so
# does a space between two Chinese characters: "没有发烧 胸口疼" is two clauses.
_CLAUSE_PUNCTUATION = re.compile(r"[,，。;；!！?？\n:：]|\.(?!\d)|(?<=[\u3400-\u9fff]) (?=[\u3400-\u9fff])")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


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
    lexicon = _Loader(dept_file, problems, phrases).departments()
    rules = _Loader(triage_file, problems, phrases).triage(locale, lexicon)
    if problems or rules is None:
        raise ConfigError(problems or [ConfigProblem(str(triage_file), 0, "", "could not be loaded")])
    return rules


def load_all_triage(content_dir: str | Path) -> dict[str, TriageRules]:
    """Every locale with a file in content_dir/triage/, keyed by locale; all problems raised together."""
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


class _Loader:
    """Reads one YAML file and validates it, appending problems instead of stopping at the first."""

    def __init__(self, path: Path, problems: list[ConfigProblem], phrases: PhraseIndex):
        self.phrases = phrases
        self.path = path
        self.file = str(path)
        self.problems = problems

    # --- plumbing ---------------------------------------------------------------------------------

    def _read(self) -> Any:
        if not self.path.is_file():
            self.problem(0, "", f"file not found (expected {self.path.name} in {self.path.parent})")
            return None
        try:
            return parse_yaml(self.path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            self.problem(mark.line + 1 if mark else 0, "", f"not valid YAML: {err.problem or err}")
            return None

    def problem(self, line: int, field: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, field, message))

    @staticmethod
    def line(node: Any, key: Any = None) -> int:
        lc = getattr(node, "lc", None)
        if lc is None:
            return 0
        try:
            if key is None:
                return lc.line + 1
            if isinstance(key, int):
                return lc.item(key)[0] + 1
            return lc.key(key)[0] + 1
        except (KeyError, IndexError, TypeError):
            return lc.line + 1

    def mapping(self, node: Any, field: str, allowed: tuple[str, ...], line: int) -> dict | None:
        if not isinstance(node, dict):
            self.problem(line, field, f"must be a mapping with keys {', '.join(allowed)}")
            return None
        for key in node:
            if key not in allowed:
                self.problem(self.line(node, key), f"{field}.{key}".lstrip("."),
                             f"unknown key {key!r}; valid keys: {', '.join(allowed)}")
        return node

    def strings(self, parent: Any, key: Any, field: str) -> list[str]:
        value = parent.get(key) if isinstance(parent, dict) else None
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            self.problem(self.line(parent, key), field, "must be a list of strings, e.g. [胸痛, 胸口疼]")
            return []
        return [str(v) for v in value]

    def level(self, parent: Any, key: str, field: str) -> str | None:
        value = parent.get(key)
        if value not in LEVELS:
            what = "missing level" if value is None else f"unknown level {value!r}"
            self.problem(self.line(parent, key), field, f"{what}; valid levels: {', '.join(LEVELS)}")
            return None
        return value

    def compile(self, regex: str, line: int, field: str, lazy: bool = False) -> Any:
        try:
            # No IGNORECASE: text is lower-cased before matching, and case-sensitive patterns let the
            # regex engine skip ahead to positions where the first character can match.
            return LazyRegex(regex) if lazy else re.compile(regex)
        except re.error as err:
            self.problem(line, field, f"invalid regex {regex!r}: {err}")
            return None

    def symptom(self, name: str, node: Any, field: str, line: int) -> Symptom | None:
        keywords = self.strings(node, "keywords", f"{field}.keywords")
        patterns = []
        for i, p in enumerate(self.strings(node, "patterns", f"{field}.patterns")):
            pline = self.line(node["patterns"], i) if isinstance(node.get("patterns"), list) else line
            patterns.append(self.compile(p, pline, f"{field}.patterns[{i}]", lazy=True))
        if None in patterns:
            return None
        if not keywords and not patterns:
            self.problem(line, field, "needs at least one of keywords: [...] or patterns: [...]")
            return None
        exclude = self.phrases.add(self.strings(node, "exclude", f"{field}.exclude"))
        return Symptom(name, self.phrases.add(keywords), tuple(patterns), exclude)

    def patient(self, node: Any, field: str, line: int) -> PatientCondition | None:
        if self.mapping(node, field, _PATIENT_KEYS, line) is None:
            return None
        values: dict[str, Any] = {}
        for key in ("age_months_under", "age_months_at_least"):
            if key in node:
                if not isinstance(node[key], (int, float)) or isinstance(node[key], bool) or node[key] < 0:
                    self.problem(self.line(node, key), f"{field}.{key}", "must be a number of months ≥ 0, e.g. 3")
                else:
                    values[key] = float(node[key])
        if "pregnant" in node:
            if not isinstance(node["pregnant"], bool):
                self.problem(self.line(node, "pregnant"), f"{field}.pregnant", "must be true or false")
            else:
                values["pregnant"] = node["pregnant"]
        if not values:
            self.problem(line, field, f"needs one of {', '.join(_PATIENT_KEYS)}")
            return None
        return PatientCondition(**values)

    # --- departments/<locale>.yml -----------------------------------------------------------------

    def departments(self) -> DepartmentLexicon | None:
        doc = self._read()
        if doc is None or self.mapping(doc, "", _DEPT_FILE_KEYS, 1) is None:
            return None
        min_conf = doc.get("min_confidence", 0.5)
        if not isinstance(min_conf, (int, float)) or not 0 <= min_conf <= 1:
            self.problem(self.line(doc, "min_confidence"), "min_confidence", "must be a number from 0 to 1, e.g. 0.5")
            min_conf = 0.5
        full = doc.get("full_confidence_score", 3)
        if not isinstance(full, (int, float)) or full <= 0:
            self.problem(self.line(doc, "full_confidence_score"), "full_confidence_score",
                         "must be a positive number, e.g. 3")
            full = 3
        entries = doc.get("departments")
        if not isinstance(entries, list) or not entries:
            self.problem(self.line(doc, "departments"), "departments", "must be a non-empty list of departments")
            return None
        departments, seen = [], set()
        for i, node in enumerate(entries):
            field, line = f"departments[{i}]", self.line(entries, i)
            if self.mapping(node, field, _DEPT_KEYS, line) is None:
                continue
            dept_id = node.get("id")
            if not isinstance(dept_id, str) or not _ID.match(dept_id):
                self.problem(line, f"{field}.id", "needs an ASCII id in lower case, e.g. dermatology")
                continue
            if dept_id in seen:
                self.problem(line, f"{field}.id", f"duplicate department id {dept_id!r}")
            seen.add(dept_id)
            names = node.get("name")
            if not isinstance(names, dict) or not names or not all(isinstance(v, str) for v in names.values()):
                self.problem(self.line(node, "name"), f"{field}.name", "must map locale to display name, e.g. {zh-CN: 皮肤科, en: Dermatology}")
                names = {}
            weights: dict[float, list[str]] = {}
            keywords = node.get("keywords") or {}
            if not isinstance(keywords, dict):
                self.problem(self.line(node, "keywords"), f"{field}.keywords", "must map keyword to weight, e.g. {痘痘: 3, 痒: 1}")
                keywords = {}
            for kw, weight in keywords.items():
                if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
                    self.problem(self.line(keywords, kw), f"{field}.keywords.{kw}", "weight must be a positive number, e.g. 2")
                    continue
                weights.setdefault(float(weight), []).append(str(kw))
            bonuses = []
            for j, bonus in enumerate(node.get("patient_bonus") or []):
                bfield, bline = f"{field}.patient_bonus[{j}]", self.line(node["patient_bonus"], j)
                if self.mapping(bonus, bfield, _BONUS_KEYS, bline) is None:
                    continue
                cond = self.patient(bonus.get("when"), f"{bfield}.when", bline)
                weight = bonus.get("weight")
                if not isinstance(weight, (int, float)) or weight <= 0:
                    self.problem(bline, f"{bfield}.weight", "must be a positive number, e.g. 2")
                elif cond is not None:
                    bonuses.append((cond, float(weight)))
            grouped = tuple((self.phrases.add(kws), weight) for weight, kws in sorted(weights.items(), reverse=True))
            departments.append(Department(dept_id, dict(names), grouped, tuple(bonuses)))
        return DepartmentLexicon(float(min_conf), float(full), tuple(departments))

    # --- triage/<locale>.yml ----------------------------------------------------------------------

    def triage(self, locale: str, lexicon: DepartmentLexicon | None) -> TriageRules | None:
        doc = self._read()
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
        by_reach: dict[int, list[str]] = {}
        for cue, window in cues.items():
            if not isinstance(window, int) or isinstance(window, bool) or window < 0:
                self.problem(self.line(cues, cue), f"negation.cues.{cue}", "reach must be a whole number of tokens ≥ 0, e.g. 4")
            else:
                by_reach.setdefault(window, []).append(str(cue))
        skip = self.strings(node, "not_negation", "negation.not_negation")
        breaks = self.strings(node, "clause_breaks", "negation.clause_breaks")
        return Negation(
            cues=tuple((self.phrases.add(words), reach) for reach, words in sorted(by_reach.items())),
            not_negation=self.phrases.add(skip),
            clause_breaks=self.phrases.add(breaks),
            punctuation=_CLAUSE_PUNCTUATION,
        )

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
            if not isinstance(name, str) or not _ID.match(name):
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
            doc = loader._read()
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
            if not isinstance(rule_id, str) or not _ID.match(rule_id):
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
            for key, names in (("symptoms", named), ("requires_any", requires_any),
                               ("requires_all", requires_all)):
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
            if level is not None:
                rules.append(Rule(rule_id, level, tuple(triggers), tuple(requires_any), tuple(requires_all),
                                  patient, str(department or ""), reply, extra))
        return rules
