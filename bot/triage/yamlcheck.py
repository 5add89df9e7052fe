"""Reading one operator-written YAML file of triage content, reporting every problem at once.

`YamlChecker` holds the plumbing the triage rules (`rules.py`) and the department lexicon
(`departments.py`) share: read the file, report a problem with file, line and field, check a
mapping's keys, a list of strings, a level, a regex, a symptom's words and a patient condition.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigProblem
from bot.triage.model import LEVELS, LazyRegex, PatientCondition, Symptom
from bot.triage.phrases import PhraseIndex
from bot.yamlsrc import parse_yaml

PATIENT_KEYS = ("age_months_under", "age_months_at_least", "pregnant")
ID = re.compile(r"^[a-z][a-z0-9_]*$")  # rule, symptom and department ids


class YamlChecker:
    """Reads one YAML file and validates it, appending problems instead of stopping at the first."""

    def __init__(self, path: Path, problems: list[ConfigProblem], phrases: PhraseIndex):
        self.phrases = phrases
        self.path = path
        self.file = str(path)
        self.problems = problems

    def read(self) -> Any:
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
        if None in patterns:  # reported already; keep the symptom declared so its rules don't cascade
            patterns = [p for p in patterns if p is not None]
            if not keywords and not patterns:
                return Symptom(name, self.phrases.add([]), (), self.phrases.add([]))
        if not keywords and not patterns:
            self.problem(line, field, "needs at least one of keywords: [...] or patterns: [...]")
            return None
        exclude = self.phrases.add(self.strings(node, "exclude", f"{field}.exclude"))
        return Symptom(name, self.phrases.add(keywords), tuple(patterns), exclude)

    def patient(self, node: Any, field: str, line: int) -> PatientCondition | None:
        if self.mapping(node, field, PATIENT_KEYS, line) is None:
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
            self.problem(line, field, f"needs one of {', '.join(PATIENT_KEYS)}")
            return None
        return PatientCondition(**values)
