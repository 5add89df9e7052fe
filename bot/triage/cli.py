"""`carebot triage TEXT --locale LOCALE [--json] [--age-months N] [--pregnant] [--content DIR]`.

Lets an operator try a message against the rules they are editing:

    $ carebot triage "宝宝两个月发烧38度5" --locale zh-CN
    level:       emergency
    department:  paediatrics (儿科), confidence 1.00
    call:        120
    matched:     infant_under_3_months_fever [emergency] "发烧"
    reply:       triage.infant_fever
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from dataclasses import asdict

from bot.care.config import load_care
from bot.errors import ConfigError
from bot.triage.engine import Assessment, PatientContext
from bot.triage.evaluate import Case, Verdict, evaluate, load_cases, render
from bot.triage.model import TriageRules
from bot.triage.rules import default_content_dir, load_all_triage
from bot.triage.screen import Screener, Screening, shipped_model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot triage", description="Triage one patient message.")
    parser.add_argument("text", help="the patient's message")
    parser.add_argument("--locale", required=True, help="rules to use, e.g. zh-CN or en")
    parser.add_argument("--json", action="store_true", help="print the assessment as JSON")
    parser.add_argument("--age-months", type=int, default=None, help="patient's age in months")
    parser.add_argument("--pregnant", action="store_true", default=None, help="the patient is pregnant")
    parser.add_argument("--content", default=None,
                        help="content directory (default: ./content, else the one shipped with carebot)")
    parser.add_argument("--no-model", action="store_true", help="rules only: leave the learned layer out")
    return parser


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot triage eval",
                                     description="Score triage on labelled files (tests/triage/blind/…).")
    parser.add_argument("files", nargs="+", help="labelled YAML files: locale + cases of {expect, text, condition|kind}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (last line)")
    parser.add_argument("--no-model", action="store_true", help="rules only: leave the learned layer out")
    parser.add_argument("--show", type=int, default=20, help="misses and false alarms to list per locale")
    parser.add_argument("--content", default=None, help="content directory (default: ./content)")
    return parser


def build_screener(content: str | None, with_model: bool = True) -> Screener:
    """Every locale's rules plus (unless told not to) the shipped learned model."""
    directory = Path(content) if content else default_content_dir()
    rules = load_all_triage(directory)
    region = None
    if (directory / "care.yml").is_file():
        care = load_care(directory)
        region = care.region.number_lists() if care.region.numbers.ambulance else None
    return Screener(rules, shipped_model() if with_model else None, region=region)


def assessment_to_dict(result: Assessment, screening: Screening | None = None) -> dict:
    """The JSON shape printed by `--json`; `layers` says which layer decided what."""
    return {
        "level": result.level,
        "is_emergency": result.is_emergency,
        "department": result.department,
        "department_confidence": result.department_confidence,
        "ask_department": result.ask_department,
        "emergency_numbers": list(result.emergency_numbers),
        "matched": [asdict(m) for m in result.matched],
        "reply_key": result.reply_key,
        "layers": screening.explain() if screening is not None else [],
    }


def _plain(result: Assessment, rules: TriageRules) -> str:
    if result.department:
        name = rules.department_name(result.department)
        ask = " — ask the patient" if result.ask_department else ""
        department = f"{result.department} ({name}), confidence {result.department_confidence:.2f}{ask}"
    else:
        department = "unknown — ask the patient"
    lines = [f"level:       {result.level}", f"department:  {department}"]
    if result.emergency_numbers:
        lines.append(f"call:        {', '.join(result.emergency_numbers)}")
    for i, match in enumerate(result.matched):
        label = "matched:" if i == 0 else ""
        lines.append(f"{label:<12} {match.rule} [{match.level}] \"{match.span}\"")
    if not result.matched:
        lines.append("matched:     (no rule; default level)")
    lines.append(f"reply:       {result.reply_key}")
    return "\n".join(lines)


def run_triage_cli(argv: list[str]) -> int:
    """Run the triage command; returns the process exit code (2 for a rules file problem)."""
    if argv and argv[0] == "eval":
        return run_eval(argv[1:])
    args = _parser().parse_args(argv)
    try:
        screener = build_screener(args.content, not args.no_model)
        if screener.rules_for(args.locale) is None or args.locale not in screener.rules:
            raise ConfigError([f"no triage rules for locale {args.locale!r}; available: {', '.join(sorted(screener.rules))}"])
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    context = PatientContext(age_months=args.age_months, pregnant=args.pregnant)
    screening = screener.screen(args.text, args.locale, context)
    result = screening.assessment
    if args.json:
        print(json.dumps(assessment_to_dict(result, screening), ensure_ascii=False, indent=2))
    else:
        print(_plain(result, screener.rules[args.locale]))
        for layer in screening.explain():
            print(f"layer:       {json.dumps(layer, ensure_ascii=False)}")
    return 0


def run_eval(argv: list[str]) -> int:
    """`carebot triage eval FILE…`: the figures of docs/triage.md; exit 2 on a bad file."""
    args = _eval_parser().parse_args(argv)
    try:
        screener = build_screener(args.content, not args.no_model)
        cases = [case for path in args.files for case in load_cases(path)]
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2

    def judge(case: Case) -> Verdict:
        screening = screener.screen(case.text, case.locale)
        a = screening.assessment
        why = "; ".join(f"{layer['layer']}={layer['level']}" + (f" {layer.get('matched')}" if layer.get("matched") else "")
                        + (f" p={layer['red_flag']}" if "red_flag" in layer else "")
                        for layer in screening.explain())
        return Verdict(a.level, a.emergency_numbers, why, asked=screener.wants_question(screening))

    reports = evaluate(cases, judge)
    print(render(reports, show=args.show))
    if args.json:
        print(json.dumps({loc: {k: v for k, v in r.figures().items() if k not in ("per_condition", "confusion")}
                          for loc, r in sorted(reports.items())}, ensure_ascii=False))
    return 0
