"""scripts/second_opinion.py: agreement of the writer, a second reader and triage on a blind file."""
import importlib.util
import json
from pathlib import Path

import pytest

from bot.triage.cli import build_screener

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("second_opinion", ROOT / "scripts" / "second_opinion.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_figures_count_agreement_between_writer_reader_and_triage(tmp_path, monkeypatch):
    script = load_script()
    monkeypatch.setattr(script, "ROOT", tmp_path)
    cases = [("emergency_ambulance", "A", "my dad collapsed and is not breathing"),
             ("emergency", "A", "sudden crushing chest pain for 30 minutes, sweating"),
             ("emergency", "E", "i think my waters broke at 33 weeks"),
             ("emergency_ambulance", "E", "lip is a bit swollen after peanuts, breathing fine")]
    write(tmp_path / "blind.yml", ["locale: en", "cases:"] + [
        "  - " + json.dumps({"expect": e, "condition": "x", "text": t}) for e, _, t in cases]
        + ["  - " + json.dumps({"expect": "ordinary", "kind": "everyday", "text": "sore throat"})])
    second = write(tmp_path / "second.yml", ["locale: en", "source: blind.yml", "reader: t", "cases:"] + [
        "  - " + json.dumps({"level": r, "text": t}) for _, r, t in cases])
    row = script.figures(second, build_screener(None))
    assert row["red_flags"] == 4 and row["both_readers_agree"] == 2
    assert row["writer_vs_second_opinion_pct"] == 50.0
    assert 0 <= row["ours_vs_writer_pct"] <= 100 and 0 <= row["ours_where_both_agree_pct"] <= 100


def test_a_red_flag_without_a_second_opinion_is_named(tmp_path, monkeypatch):
    script = load_script()
    monkeypatch.setattr(script, "ROOT", tmp_path)
    write(tmp_path / "blind.yml", ["locale: en", "cases:",
                                   '  - {"expect": "emergency", "condition": "x", "text": "chest pain"}'])
    second = write(tmp_path / "second.yml", ["locale: en", "source: blind.yml", "reader: t", "cases: []"])
    with pytest.raises(SystemExit, match="1 red flags of blind.yml have no second opinion.*chest pain"):
        script.figures(second, build_screener(None))
