"""Score triage on labelled files: `carebot triage eval FILE… [--json]`.

A labelled file (tests/triage/blind/) is YAML with `locale` and `cases`, each case
`{expect: emergency_ambulance | emergency | ordinary, condition: …, kind: …, text: …}`.
The figures the issue asks for: red flags at an emergency level with a number (recall), at their
exact level, ordinary messages raised to an emergency level (false alarms), per-condition recall,
a confusion matrix of levels, and the dangerous misses themselves (a red flag below `emergency`,
or at an emergency level without a number).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from bot.errors import ConfigError
from bot.triage.model import EMERGENCY_LEVELS, LEVELS

RED = frozenset(EMERGENCY_LEVELS)


@dataclass(frozen=True)
class Case:
    locale: str
    expect: str  # a level or "ordinary"
    text: str
    condition: str = ""
    kind: str = ""
    source: str = ""


@dataclass(frozen=True)
class Verdict:
    level: str
    numbers: tuple[str, ...]
    explain: str = ""
    asked: bool = False  # a safety question (with the emergency number) instead of an emergency level


@dataclass
class Report:
    locale: str
    red: int = 0
    red_caught: int = 0  # at an emergency level and with a number
    red_exact: int = 0
    ordinary: int = 0
    false_alarms: int = 0
    red_asked: int = 0  # red flags below an emergency level that got the safety question
    ordinary_asked: int = 0
    by_condition: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    confusion: Counter = field(default_factory=Counter)  # (expected, got) -> n
    misses: list[tuple[Case, Verdict]] = field(default_factory=list)
    alarms: list[tuple[Case, Verdict]] = field(default_factory=list)

    def add(self, case: Case, verdict: Verdict) -> None:
        self.confusion[(case.expect, verdict.level)] += 1
        if case.expect == "ordinary":
            self.ordinary += 1
            if verdict.level in RED:
                self.false_alarms += 1
                self.alarms.append((case, verdict))
            self.ordinary_asked += verdict.asked
            return
        self.red += 1
        caught = verdict.level in RED and bool(verdict.numbers)
        self.red_caught += caught
        self.red_exact += verdict.level == case.expect
        counts = self.by_condition[case.condition or "?"]
        counts[0] += caught
        counts[1] += 1
        if not caught:
            self.red_asked += verdict.asked
            self.misses.append((case, verdict))

    def figures(self) -> dict:
        def pct(a: int, b: int) -> float:
            return round(100.0 * a / b, 1) if b else 0.0

        return {
            "locale": self.locale, "red_flags": self.red, "ordinary": self.ordinary,
            "recall_emergency_pct": pct(self.red_caught, self.red),
            "exact_level_pct": pct(self.red_exact, self.red),
            "false_alarm_pct": pct(self.false_alarms, self.ordinary),
            "route_shown_pct": pct(self.red_caught + self.red_asked, self.red),
            "ordinary_asked_pct": pct(self.ordinary_asked, self.ordinary),
            "dangerous_misses": len(self.misses),
            "conditions": len(self.by_condition),
            "per_condition": {c: {"caught": n[0], "of": n[1]} for c, n in sorted(self.by_condition.items())},
            "confusion": {f"{e}->{g}": n for (e, g), n in sorted(self.confusion.items())},
        }


def load_cases(path: str | Path) -> list[Case]:
    """Read one labelled file; a malformed case is a ConfigError naming the file and the case."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data.get("locale"):
        raise ConfigError([f"{path}: expected a mapping with `locale` and a list `cases`"])
    cases, problems = [], []
    for i, raw in enumerate(data["cases"], 1):
        expect = raw.get("expect") if isinstance(raw, dict) else None
        if expect not in (*LEVELS, "ordinary") or not isinstance(raw.get("text"), str):
            problems.append(f"{path}: case {i}: needs `text` and `expect` (one of {', '.join(LEVELS)}, ordinary)")
            continue
        cases.append(Case(str(raw.get("locale", data["locale"])), expect, raw["text"],
                          str(raw.get("condition", "")), str(raw.get("kind", "")), f"{path.name}:{i}"))
    if problems:
        raise ConfigError(problems)
    return cases


def evaluate(cases: list[Case], judge: Callable[[Case], Verdict]) -> dict[str, Report]:
    """Run `judge` on every case; one report per locale."""
    reports: dict[str, Report] = {}
    for case in cases:
        reports.setdefault(case.locale, Report(case.locale)).add(case, judge(case))
    return reports


def render(reports: dict[str, Report], show: int = 30) -> str:
    """A plain-text summary for a terminal."""
    lines = []
    for locale, r in sorted(reports.items()):
        f = r.figures()
        lines += [f"== {locale}: {r.red} red flags over {f['conditions']} conditions, {r.ordinary} ordinary",
                  f"   red flags at emergency+ with a number: {r.red_caught}/{r.red} = {f['recall_emergency_pct']}%",
                  f"   at their exact level:                  {r.red_exact}/{r.red} = {f['exact_level_pct']}%",
                  f"   ordinary raised to an emergency:       {r.false_alarms}/{r.ordinary} = {f['false_alarm_pct']}%",
                  f"   red flags shown the route (emergency or safety question): {f['route_shown_pct']}%; "
                  f"ordinary asked the safety question: {f['ordinary_asked_pct']}%"]
        weak = sorted(((n[0] / n[1], c, n) for c, n in r.by_condition.items() if n[0] < n[1]))[:12]
        if weak:
            lines.append("   weakest conditions: " + ", ".join(f"{c} {n[0]}/{n[1]}" for _, c, n in weak))
        for case, v in r.misses[:show]:
            lines.append(f"   MISS  [{case.expect} {case.condition}] got {v.level}: {case.text}  ({v.explain})")
        for case, v in r.alarms[:show]:
            lines.append(f"   ALARM [{case.kind}] got {v.level}: {case.text}  ({v.explain})")
    return "\n".join(lines)
