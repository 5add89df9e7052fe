#!/usr/bin/env python3
"""Leave one writer out: how the learned layers do on a writer they were not trained on.

    .venv/bin/python scripts/holdout.py                 # triage and typed requests, a table per locale
    .venv/bin/python scripts/holdout.py --triage --json # triage only; the figures as JSON (last line)

Every file of tests/triage/blind/dev/ is one writer. For each writer W the triage model is trained
(scripts/train_understanding.py, same features and settings) on everything but W, its thresholds are
chosen by the same rules on held-out scores of the other writers (each scored by the model that did
not see that writer), and W's messages are screened with every shipped rule set plus that model:
- `rules`: the rules alone (tuned on every dev writer, W included: not a held-out figure for them);
- `fired`: the learned layer raising only where a rule fired (what shipped until session 5);
- `alone`: the learned layer may also raise where no rule fired but a rule set saw a present symptom
  (a rule's trigger, not a modifier such as an age): what ships.
The difference between `rules` and the other two is the learned layer's held-out effect.

Typed requests: for each file of tests/understand/dev/, the intent model is trained on the other
files (its threshold chosen leaving one of those out) and the file is read with the cues plus that
model, and with the cues alone (the cues were written with every dev file in sight).

Never reads a `test/` directory. Needs scikit-learn (the `train` extra). Deterministic; slow on a
busy machine (one model pair per writer group).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

import train_understanding as tu  # noqa: E402
from bot.triage.evaluate import Case, Report, Verdict, load_cases  # noqa: E402
from bot.triage.rules import load_all_triage  # noqa: E402
from bot.triage.screen import Screener  # noqa: E402
from bot.understand.cli import evaluate as understand_eval  # noqa: E402
from bot.understand.learned import intent_model_from_dict, model_from_dict  # noqa: E402

POLICIES = ("rules", "fired", "alone")


def _group(name: str) -> str:
    """Rows of typed requests are held out per locale (all rounds together); others per file."""
    if name.startswith("understand:"):
        return "understand:" + name.split(":", 1)[1].split("_")[0]
    return name


def triage_holdout() -> dict:
    rules = load_all_triage(ROOT / "content")  # the rules as they are now (read before the long training)
    rows = tu.corpus()
    texts = [t for t, _, _ in rows]
    labels = [label for _, label, _ in rows]
    groups = np.array([_group(g) for _, _, g in rows])
    red = np.array([label in tu.RED for label in labels], dtype=int)
    amb = np.array([label == "emergency_ambulance" for label in labels], dtype=int)
    writers = sorted(p.stem for p in (ROOT / "tests/triage/blind/dev").glob("*.yml"))
    key = hashlib.sha256(json.dumps([rows, tu.PARAMS, tu.MAX_FALSE_ALARM], ensure_ascii=False).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"carebot-holdout-{key}.json"
    if cache.is_file():  # the same corpus and settings: the same models (training is deterministic)
        saved = json.loads(cache.read_text(encoding="utf-8"))
        oof_red, oof_amb, heads = np.array(saved["oof_red"]), np.array(saved["oof_amb"]), saved["heads"]
    else:
        oof_red, oof_amb, heads = np.zeros(len(rows)), np.zeros(len(rows)), {}
        for g in sorted(set(groups)):
            train, held = np.flatnonzero(groups != g), np.flatnonzero(groups == g)
            x, vec = tu.matrix([texts[i] for i in train])
            x_held, _ = tu.matrix([texts[i] for i in held], vec)
            m_red, m_amb = tu.fit(x, red[train]), tu.fit(x, amb[train])
            oof_red[held] = m_red.predict_proba(x_held)[:, 1]
            oof_amb[held] = m_amb.predict_proba(x_held)[:, 1]
            if g in writers:  # thresholds are set below, from the other writers' held-out scores
                heads[g] = {"red_flag": tu.packed(m_red, vec, 1.0), "ambulance": tu.packed(m_amb, vec, 1.0)}
            print(f"  fitted without {g}", file=sys.stderr)
        cache.write_text(json.dumps({"oof_red": oof_red.tolist(), "oof_amb": oof_amb.tolist(), "heads": heads}),
                         encoding="utf-8")
    reports: dict[str, dict[str, Report]] = {p: {} for p in POLICIES}
    per_writer: dict[str, dict] = {}
    model_alone: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # red caught, red, ordinary fired, ordinary
    for w in writers:
        others = groups != w
        t_red, question, t_amb = tu.thresholds(oof_red[others], red[others], oof_amb[others], amb[others])
        h = heads[w]
        mine_rows = groups == w
        counts = model_alone["zh-CN" if w.startswith("zh") else "en"]
        counts[0] += int(np.sum((oof_red[mine_rows] >= t_red) & (red[mine_rows] == 1)))
        counts[1] += int(np.sum(red[mine_rows] == 1))
        counts[2] += int(np.sum((oof_red[mine_rows] >= t_red) & (red[mine_rows] == 0)))
        counts[3] += int(np.sum(red[mine_rows] == 0))
        model = model_from_dict({"name": "triage", "heads": {
            "red_flag": {**h["red_flag"], "threshold": round(t_red, 4), "question": round(min(question, t_red), 4)},
            "ambulance": {**h["ambulance"], "threshold": round(t_amb, 4)}}})
        screeners = {"rules": Screener(rules, None), "fired": Screener(rules, model, alone=False),
                     "alone": Screener(rules, model, alone=True)}
        cases = load_cases(ROOT / "tests/triage/blind/dev" / f"{w}.yml")
        per_writer[w] = {}
        for policy, screener in screeners.items():
            mine = Report(cases[0].locale)
            for case in cases:
                screening = screener.screen(case.text, case.locale)
                a = screening.assessment
                verdict = Verdict(a.level, a.emergency_numbers, asked=screener.wants_question(screening))
                mine.add(case, verdict)
                reports[policy].setdefault(case.locale, Report(case.locale)).add(case, verdict)
            per_writer[w][policy] = _brief(mine)
    return {"per_locale": {p: {loc: _brief(r) for loc, r in sorted(reps.items())} for p, reps in reports.items()},
            "model_alone": {loc: {"red_flag_recall_pct": round(100.0 * c[0] / c[1], 1),
                                  "false_alarm_pct": round(100.0 * c[2] / c[3], 1)} for loc, c in sorted(model_alone.items())},
            "per_writer": per_writer,
            "misses": {loc: [c.text for c, _ in r.misses] for loc, r in reports["alone"].items()}}


def _brief(report: Report) -> dict:
    f = report.figures()
    return {k: f[k] for k in ("red_flags", "ordinary", "recall_emergency_pct", "exact_level_pct", "false_alarm_pct",
                              "route_shown_pct", "ordinary_asked_pct")}


def intents_holdout() -> dict:
    files = sorted((ROOT / "tests/understand/dev").glob("*.yml"))
    content, flows = ROOT / "content", ROOT / "flows"
    out: dict[str, dict] = {"per_file": {}, "per_locale": {}}
    totals: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for held in files:
        model = intent_model_from_dict(tu.intent_model(tu.intent_rows([f for f in files if f != held])))
        out["per_file"][held.stem] = {}
        for name, m in (("cues", None), ("cues+model", model)):
            (score,) = understand_eval([str(held)], content, flows, model=m)
            d = score.to_dict()
            out["per_file"][held.stem][name] = {"accuracy": d["accuracy"], "requests_right_flow": d["requests_right_flow"]}
            t = totals[score.locale][name]
            t[0] += d["right"]
            t[1] += d["cases"]
        print(f"  intents without {held.stem}", file=sys.stderr)
    for loc, by in sorted(totals.items()):
        out["per_locale"][loc] = {name: round(100.0 * r / n, 1) for name, (r, n) in by.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triage", action="store_true", help="only the triage model")
    parser.add_argument("--intents", action="store_true", help="only the intent model")
    parser.add_argument("--json", action="store_true", help="the figures as JSON (last line)")
    args = parser.parse_args(argv)
    both = not args.triage and not args.intents
    result: dict = {}
    if args.triage or both:
        result["triage"] = tri = triage_holdout()
        print("triage, leave one writer out (recall at emergency+ with a number / exact / ordinary raised / route shown):")
        for policy, by_locale in tri["per_locale"].items():
            for loc, f in by_locale.items():
                print(f"  {policy:<8} {loc:<6} {f['recall_emergency_pct']:>5}% {f['exact_level_pct']:>5}% "
                      f"{f['false_alarm_pct']:>4}% {f['route_shown_pct']:>5}% (asked {f['ordinary_asked_pct']}% of ordinary)")
        for loc, f in tri["model_alone"].items():
            print(f"  the model alone, held out, {loc}: {f['red_flag_recall_pct']}% of red flags over its threshold, "
                  f"{f['false_alarm_pct']}% of ordinary messages")
        for w, by in tri["per_writer"].items():
            print(f"  {w:<16} " + "  ".join(f"{p}: {f['recall_emergency_pct']}/{f['exact_level_pct']}/{f['false_alarm_pct']}"
                                             for p, f in by.items()))
    if args.intents or both:
        result["intents"] = it = intents_holdout()
        print("typed requests, leave one file out (all right):")
        for loc, f in it["per_locale"].items():
            print(f"  {loc:<6} " + "  ".join(f"{k}: {v}%" for k, v in f.items()))
    if args.json:
        result.get("triage", {}).pop("misses", None)
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
