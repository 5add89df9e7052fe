"""Load and validate `content/departments/<locale>.yml`, the weighted department lexicon.

Each department has an id, a display name per locale, keywords with weights and optional bonuses
for a kind of patient (an infant, a pregnancy); `min_confidence` and `full_confidence_score` say how
sure the lexicon must be before it names a department. Compiled once into a `DepartmentLexicon`.
"""

from __future__ import annotations

from bot.triage.model import Department, DepartmentLexicon
from bot.triage.yamlcheck import ID, YamlChecker

_DEPT_FILE_KEYS = ("min_confidence", "full_confidence_score", "departments")
_DEPT_KEYS = ("id", "name", "keywords", "patient_bonus")
_BONUS_KEYS = ("when", "weight")


class DepartmentsFile(YamlChecker):
    def lexicon(self) -> DepartmentLexicon | None:
        """The file's lexicon, or None with the problems appended."""
        doc = self.read()
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
            if not isinstance(dept_id, str) or not ID.match(dept_id):
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
