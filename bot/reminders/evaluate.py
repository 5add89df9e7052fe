"""`carebot reminders eval FILE… [--json]`: how well typed schedules are read, on a labelled set.

A set file (tests/reminders/blind/<split>/<locale>.yml) has `locale` and `cases` of
`{text, expect}`; `expect` labels what the text says in a schema that knows nothing of the parser:

    kind      daily | every_hours | weekdays | every_days | cycle | meals | prn | unclear
    times     clock times said, ["08:00", "20:00"]      per_day   doses a day (3 for "tid")
    hours     every N hours                              days      every N days
    weekdays  ["mon", "wed", "fri"]                      on_days, off_days   a cycle
    meals     ["breakfast", "dinner", "bedtime"]         relation  before | with | after
    for_days  a course of N days                         start     "tomorrow"
    ambiguous true when a clock time could be morning or evening

A case is right when every labelled field matches the reading mapped onto that schema (`label`);
fields the writer left out are the product's to decide (what time "twice a day" means) and are not
compared. Misses are listed for development sets only: files under a `test/` directory are blind
and their texts are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, ConfigProblem
from bot.reminders.parse import Reading, read_schedule
from bot.yamlsrc import load_yaml

KINDS = ("daily", "every_hours", "weekdays", "every_days", "cycle", "meals", "prn", "unclear")
MEALS = ("breakfast", "lunch", "dinner", "bedtime")
_WEEKDAY = {"mo": "mon", "tu": "tue", "we": "wed", "th": "thu", "fr": "fri", "sa": "sat", "su": "sun"}
_WEEK_ORDER = list(_WEEKDAY.values())
FIELDS = {"kind", "times", "per_day", "hours", "days", "weekdays", "on_days", "off_days", "meals", "relation",
          "for_days", "start", "ambiguous"}


def label(r: Reading) -> dict[str, Any]:
    """The reading in the label schema: what a person would have written for it."""
    if not r.understood:
        return {"kind": "unclear"}
    clocks = sorted({t for t in r.times if ":" in t})
    meals = [m for m in MEALS if m in r.times]
    slots = list(dict.fromkeys(r.times))
    out: dict[str, Any] = {"times": clocks, "per_day": r.per_day or len(slots) or None,
                           "ambiguous": r.ambiguous}
    if r.prn and r.every_hours is None and not r.times:
        out["kind"] = "prn"
    elif r.every_hours is not None:
        out.update(kind="every_hours", hours=r.every_hours)
    elif r.cycle:
        out.update(kind="cycle", on_days=r.cycle[0], off_days=r.cycle[1])
    elif r.weekdays:
        days = {_WEEKDAY[d] for d in r.weekdays}
        out.update(kind="weekdays", weekdays=[d for d in _WEEK_ORDER if d in days])
    elif r.every_days > 1:
        out.update(kind="every_days", days=r.every_days)
    elif meals or r.relation:
        out.update(kind="meals", meals=meals, relation=r.relation)
    else:
        out["kind"] = "daily"
    if r.for_days:
        out["for_days"] = r.for_days
    if r.start_in_days == 1:
        out["start"] = "tomorrow"
    return out


def _same(name: str, want: Any, got: Any) -> bool:
    if name in ("times", "meals", "weekdays") and isinstance(want, list) and isinstance(got, list):
        return sorted(want) == sorted(got)
    if name == "ambiguous":
        return bool(want) == bool(got)
    return want == got


@dataclass
class SetScore:
    """One file's figures."""

    file: str
    locale: str
    blind: bool
    cases: int = 0
    right: int = 0
    per_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    misses: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "locale": self.locale, "cases": self.cases, "right": self.right,
                "accuracy": round(self.right / self.cases, 4) if self.cases else None,
                "per_kind": {k: {"right": v[0], "cases": v[1], "accuracy": round(v[0] / v[1], 4)}
                             for k, v in sorted(self.per_kind.items(), key=lambda kv: KINDS.index(kv[0])
                                                if kv[0] in KINDS else 99)},
                "misses": None if self.blind else self.misses}


def _cases(file: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    src = load_yaml(file)
    data = src.data
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError([src.problem((), "expected a mapping with `locale` and a list `cases` of "
                                            "{text, expect}")])
    locale = str(data.get("locale") or "")
    if locale not in ("en", "zh-CN"):
        raise ConfigError([src.problem(("locale",), f"locale {locale!r}: use en or zh-CN")])
    out = []
    for i, case in enumerate(data["cases"]):
        expect = case.get("expect") if isinstance(case, dict) else None
        if not isinstance(expect, dict) or not isinstance(case.get("text"), str):
            raise ConfigError([src.problem(("cases", i), "a case is {text: \"…\", expect: {kind: …}}")])
        unknown = set(expect) - FIELDS
        if unknown or expect.get("kind") not in KINDS:
            raise ConfigError([src.problem(("cases", i, "expect"),
                                           f"fields {sorted(unknown)} unknown or kind {expect.get('kind')!r} "
                                           f"not one of {', '.join(KINDS)}; fields: {', '.join(sorted(FIELDS))}")])
        out.append((case["text"], expect))
    return locale, out


def evaluate(files: list[str]) -> list[SetScore]:
    scores = []
    for file in files:
        locale, cases = _cases(file)
        score = SetScore(file, locale, blind="test" in Path(file).parts)
        for text, expect in cases:
            got = label(read_schedule(text, locale))
            wrong = {k: got.get(k) for k, v in expect.items() if not _same(k, v, got.get(k))}
            score.cases += 1
            score.right += not wrong
            score.per_kind[expect["kind"]][0] += not wrong
            score.per_kind[expect["kind"]][1] += 1
            if wrong:
                score.misses.append({"text": text, "expect": expect, "got": {k: got.get(k) for k in expect}})
        scores.append(score)
    return scores


def run_eval_cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="carebot reminders eval",
                                description="accuracy of the typed-schedule reader on labelled sets")
    p.add_argument("files", nargs="+", help="e.g. tests/reminders/blind/dev/en.yml")
    p.add_argument("--json", action="store_true", help="one JSON object per run, on the last line")
    args = p.parse_args(argv)
    try:
        scores = evaluate(args.files)
    except ConfigError as exc:
        print("\n".join(str(pr) for pr in exc.problems), file=sys.stderr)
        return 1
    except OSError as exc:
        print(ConfigProblem(str(exc.filename or ""), 0, "", f"cannot read: {exc.strerror}"), file=sys.stderr)
        return 1
    total, right = sum(s.cases for s in scores), sum(s.right for s in scores)
    overall = round(right / total, 4) if total else None
    if args.json:
        print(json.dumps({"sets": [s.to_dict() for s in scores], "cases": total, "right": right,
                          "accuracy": overall}, ensure_ascii=False))
        return 0
    for s in scores:
        d = s.to_dict()
        print(f"== {s.file} ({s.locale}): {s.right}/{s.cases} right ({d['accuracy']:.1%})")
        for kind, v in d["per_kind"].items():
            print(f"   {kind:<12} {v['right']:>3}/{v['cases']:<3} {v['accuracy']:.0%}")
        if s.blind:
            print("   (blind test set: misses not shown)")
        for m in s.misses if not s.blind else []:
            print(f"   miss: {m['text']!r}\n         expect {json.dumps(m['expect'], ensure_ascii=False)}"
                  f"\n         got    {json.dumps(m['got'], ensure_ascii=False)}")
    print(f"== overall: {right}/{total} ({overall:.1%})" if total else "== no cases")
    return 0

