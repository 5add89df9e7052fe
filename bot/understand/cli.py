"""`carebot understand TEXT --locale L [--json]` and `carebot understand eval FILE… [--json]`.

    $ carebot understand "can I talk to a real person" --locale en
    flow:    human
    intent:  human
    slots:   -
    why:     human scored 4, runner-up consult 1 (needs ≥ 2 and a lead of 0.5): routes
    cues:    consult +1 'talk to' [en.yml:50]
             human +4 'real person' [en.yml:56]

Eval files are those under tests/understand/: `locale`, then `cases` of {expect, text}. `expect` is
an intent label (the flow it should start is the intent's `flow` in content/understand/<locale>.yml)
or `question:value` for a typed answer, where `question` names a question in flows/ by its slot
(`patient_is`), its survey question id (`satisfaction`) or its type (`yes_no`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.understand.learned import IntentModel
from bot.engine.answers import Invalid
from bot.errors import ConfigError
from bot.flow.compiler import AskSpec
from bot.flow.content import Content, load_content
from bot.flow.loader import load_flows
from bot.understand.intents import Intents, default_content_dir, load_intents
from bot.yamlsrc import load_yaml

# the eval's shorthand for questions whose slot says less than their meaning
_QUESTION_ALIASES = {"who": "patient_is"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carebot understand", description="Which flow a typed request starts.")
    p.add_argument("text", help="the patient's message")
    p.add_argument("--locale", required=True, help="the conversation's locale, e.g. zh-CN or en")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--content", default=None, help="content directory (default: ./content)")
    return p


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carebot understand eval", description="Score labelled typed requests.")
    p.add_argument("files", nargs="+", help="YAML files: locale + cases of {expect, text}")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--content", default=None, help="content directory (default: ./content)")
    p.add_argument("--flows", default=None, help="flows directory (default: ./flows)")
    p.add_argument("--show", type=int, default=30, help="wrong cases to list per locale")
    p.add_argument("--no-model", action="store_true", help="cues only: leave the learned intent model out")
    return p


def _dirs(content: str | None, flows: str | None = None) -> tuple[Path, Path]:
    c = Path(content) if content else (Path("content") if Path("content/understand").is_dir() else default_content_dir())
    f = Path(flows) if flows else (Path("flows") if Path("flows").is_dir() else c.parent / "flows")
    return c, f


def run_understand_cli(argv: list[str]) -> int:
    if argv and argv[0] == "eval":
        return _run_eval(_eval_parser().parse_args(argv[1:]))
    args = _parser().parse_args(argv)
    content_dir, _ = _dirs(args.content)
    try:
        intents = load_intents(content_dir)
    except ConfigError as exc:
        print("\n".join(str(p) for p in exc.problems), file=sys.stderr)
        return 1
    result = intents.classify(args.text, args.locale)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"flow:    {result.flow if result.confident else '- (not confident: the bot asks again)'}")
    print(f"intent:  {result.intent or '-'}")
    print(f"slots:   {json.dumps(result.slots, ensure_ascii=False) if result.slots else '-'}")
    print(f"why:     {result.why()}")
    for i, e in enumerate(result.evidence):
        print(f"{'cues:' if i == 0 else '':<9}{e}")
    return 0


# -- evaluation ----------------------------------------------------------------------------------

@dataclass
class LocaleScore:
    locale: str
    total: int = 0
    right_flow: int = 0  # requests: the right flow (and the complaint kept when it should be)
    requests: int = 0
    answers: int = 0
    right_answer: int = 0
    per_label: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    wrong: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        right = self.right_flow + self.right_answer
        return {
            "locale": self.locale, "cases": self.total,
            "right": right, "accuracy": round(right / self.total, 4) if self.total else None,
            "requests": self.requests,
            "requests_right_flow": round(self.right_flow / self.requests, 4) if self.requests else None,
            "answers": self.answers,
            "answers_right": round(self.right_answer / self.answers, 4) if self.answers else None,
            "per_label": {k: {"right": v[0], "cases": v[1], "accuracy": round(v[0] / v[1], 4)}
                          for k, v in sorted(self.per_label.items())},
            "confusion": [{"expected": e, "got": g, "count": n} for (e, g), n in self.confusion.most_common()],
        }


def _questions(flows_dir: Path, content: Content) -> dict[str, AskSpec]:
    fs = load_flows([flows_dir], content)
    out: dict[str, AskSpec] = {}
    for cf in fs.flows.values():
        for ins in cf.code:
            if ins.op != "ask":
                continue
            spec: AskSpec = ins.a["spec"]
            out.setdefault(spec.slot, spec)
            if spec.slot.startswith("_survey_"):
                out.setdefault(spec.slot.rsplit("_", 1)[-1], spec)
            out.setdefault(spec.type, spec)
    return out


def _answer(intents: Intents, spec: AskSpec, text: str, content: Content, locale: str) -> str:
    labels = {c.value: content.render(c.label, locale, {}) for c in spec.choices}
    try:
        value = intents.read_answer(spec, "text", text, "", None, labels, datetime.now(timezone.utc))
    except Invalid:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def evaluate(files: list[str], content_dir: Path, flows_dir: Path, model: bool | IntentModel = True) -> list[LocaleScore]:
    intents = load_intents(content_dir, model=model)
    content = load_content([content_dir])
    questions = _questions(flows_dir, content)
    keep_slots = {spec.keep_text for lc in intents.locales.values() for spec in lc.lexicon.intents.values()
                  if spec.keep_text}
    scores: dict[str, LocaleScore] = {}
    for file in files:
        data = load_yaml(file).data
        locale = data["locale"]
        score = scores.setdefault(locale, LocaleScore(locale))
        for case in data["cases"]:
            expect, text = str(case["expect"]), str(case["text"])
            score.total += 1
            if ":" in expect:
                question, want = expect.split(":", 1)
                spec = questions.get(_QUESTION_ALIASES.get(question, question))
                if spec is None:
                    raise SystemExit(f"{file}: no question {question!r} in flows/")
                got = _answer(intents, spec, text, content, locale)
                ok = got == want
                score.answers += 1
                score.right_answer += ok
                label, got_label = expect, f"{question}:{got}"
            else:
                result = intents.classify(text, locale)
                spec_flow = intents.spec_of(expect, locale)
                want_flow = spec_flow.flow if spec_flow else expect
                got_flow = result.flow if result.confident else None
                keeps = bool(spec_flow and spec_flow.keep_text)
                # the text kept where the intent keeps it (a symptom), and nowhere else; what `fills:`
                # readers find (a reminder's medicine) is not scored here
                kept_text = any(slot in result.slots for slot in keep_slots)
                ok = got_flow == want_flow and kept_text == keeps
                score.requests += 1
                score.right_flow += ok
                label, got_label = expect, (result.intent if result.confident else f"none({result.intent})")
            score.per_label[label.split(":")[0] if ":" in label else label][0] += ok
            score.per_label[label.split(":")[0] if ":" in label else label][1] += 1
            if not ok:
                score.confusion[(label, got_label)] += 1
                score.wrong.append({"expect": label, "got": got_label, "text": text})
    return list(scores.values())


def _pct(share: float | None) -> str:
    """A share as a percentage; a file without such cases has none ("–"), not a crash."""
    return "–" if share is None else f"{share:.1%}"


def _run_eval(args: argparse.Namespace) -> int:
    content_dir, flows_dir = _dirs(args.content, args.flows)
    try:
        results = evaluate(args.files, content_dir, flows_dir, model=not args.no_model)
    except ConfigError as exc:
        print("\n".join(str(p) for p in exc.problems), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({s.locale: s.to_dict() for s in results}, ensure_ascii=False, indent=2))
        return 0
    for s in results:
        d = s.to_dict()
        print(f"== {s.locale}: {d['right']}/{d['cases']} right ({_pct(d['accuracy'])}); "
              f"requests to the right flow {s.right_flow}/{s.requests} ({_pct(d['requests_right_flow'])}); "
              f"typed answers {s.right_answer}/{s.answers} ({_pct(d['answers_right'])})")
        for label, v in d["per_label"].items():
            print(f"   {label:<16} {v['right']:>3}/{v['cases']:<3} {v['accuracy']:.0%}")
        if s.confusion:
            print("   confusion (expected → got: count):")
            for (e, g), n in s.confusion.most_common():
                print(f"     {e} → {g}: {n}")
        for w in s.wrong[:args.show]:
            print(f"   ✗ {w['expect']} → {w['got']}: {w['text']}")
    return 0
