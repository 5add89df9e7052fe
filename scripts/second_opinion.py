"""How far the blind writers' levels agree with an independent reading of RED-FLAGS.md, and how far
triage agrees with each: the ceiling that label noise puts on the "exact level" figure.

    .venv/bin/python scripts/second_opinion.py tests/triage/blind/second_opinion/en_r8.yml [--json]

A second-opinion file (YAML) holds `locale`, `source` (the blind file it reads) and `cases` of
`{text, level}` (level A or E), written by a reader who saw only RED-FLAGS.md and the messages — not
the writer's label, nor the rules, nor our output. Every red flag of the source file is read once.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.triage.cli import build_screener  # noqa: E402
from bot.triage.evaluate import load_cases  # noqa: E402
from bot.yamlsrc import parse_yaml  # noqa: E402

SHORT = {"emergency_ambulance": "A", "emergency": "E"}


def figures(path: Path, screener) -> dict:
    doc = parse_yaml(path.read_text(encoding="utf-8"))
    second = {c["text"]: c["level"] for c in doc["cases"]}
    red = [c for c in load_cases(ROOT / doc["source"]) if c.expect != "ordinary"]
    missing = [c.text for c in red if c.text not in second]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} red flags of {doc['source']} have no second opinion, e.g. {missing[0]!r}")
    n = len(red)
    writer_vs_second = ours_vs_writer = ours_vs_second = agreed = ours_on_agreed = 0
    for c in red:
        writer = SHORT[c.expect]
        reader = second[c.text]
        a = screener.screen(c.text, c.locale).assessment
        ours = SHORT.get(a.level, "-") if a.emergency_numbers else "-"
        writer_vs_second += writer == reader
        ours_vs_writer += ours == writer
        ours_vs_second += ours == reader
        if writer == reader:
            agreed += 1
            ours_on_agreed += ours == writer
    pct = lambda a, b: round(100 * a / b, 1) if b else None  # noqa: E731
    return {"file": str(path.relative_to(ROOT)), "locale": doc["locale"], "red_flags": n,
            "writer_vs_second_opinion_pct": pct(writer_vs_second, n),
            "ours_vs_writer_pct": pct(ours_vs_writer, n), "ours_vs_second_opinion_pct": pct(ours_vs_second, n),
            "both_readers_agree": agreed, "ours_where_both_agree_pct": pct(ours_on_agreed, agreed)}


def main(argv: list[str]) -> int:
    files = [Path(a).resolve() for a in argv if not a.startswith("--")]
    screener = build_screener(None)
    rows = [figures(p, screener) for p in files]
    for r in rows:
        print(f"{r['file']}: {r['red_flags']} red flags; writer = second opinion {r['writer_vs_second_opinion_pct']}%; "
              f"triage = writer {r['ours_vs_writer_pct']}%, = second opinion {r['ours_vs_second_opinion_pct']}%, "
              f"= both where they agree ({r['both_readers_agree']}) {r['ours_where_both_agree_pct']}%")
    if "--json" in argv:
        print(json.dumps(rows, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
