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
from dataclasses import asdict

from bot.errors import ConfigError
from bot.triage.engine import Assessment, PatientContext, assess
from bot.triage.model import TriageRules
from bot.triage.rules import default_content_dir, load_triage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carebot triage", description="Triage one patient message.")
    parser.add_argument("text", help="the patient's message")
    parser.add_argument("--locale", required=True, help="rules to use, e.g. zh-CN or en")
    parser.add_argument("--json", action="store_true", help="print the assessment as JSON")
    parser.add_argument("--age-months", type=int, default=None, help="patient's age in months")
    parser.add_argument("--pregnant", action="store_true", default=None, help="the patient is pregnant")
    parser.add_argument("--content", default=None,
                        help="content directory (default: ./content, else the one shipped with carebot)")
    return parser


def assessment_to_dict(result: Assessment) -> dict:
    """The JSON shape printed by `--json`."""
    return {
        "level": result.level,
        "is_emergency": result.is_emergency,
        "department": result.department,
        "department_confidence": result.department_confidence,
        "ask_department": result.ask_department,
        "emergency_numbers": list(result.emergency_numbers),
        "matched": [asdict(m) for m in result.matched],
        "reply_key": result.reply_key,
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
    args = _parser().parse_args(argv)
    try:
        rules = load_triage(args.content or default_content_dir(), args.locale)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    context = PatientContext(age_months=args.age_months, pregnant=args.pregnant)
    result = assess(args.text, rules, context)
    if args.json:
        print(json.dumps(assessment_to_dict(result), ensure_ascii=False, indent=2))
    else:
        print(_plain(result, rules))
    return 0
