"""The typed-schedule reader (bot/reminders/parse.py) and its evaluation (`carebot reminders eval`)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bot.cli import main
from bot.reminders.evaluate import evaluate, label
from bot.reminders.parse import read_schedule

DEV = Path(__file__).parent / "reminders" / "blind" / "dev"


def test_the_blind_dev_sets_are_read_well_per_locale_and_kind(capsys):
    """Floors below the measured figure (docs/reminders.md): a regression shows, noise does not."""
    scores = {s.locale: s for s in evaluate([str(DEV / "en.yml"), str(DEV / "zh-CN.yml")])}
    assert set(scores) == {"en", "zh-CN"}
    for score in scores.values():
        assert score.cases >= 80
        assert score.right / score.cases >= 0.95, score.misses
        for kind, (right, cases) in score.per_kind.items():
            assert right / cases >= 0.75, (score.locale, kind, score.misses)
    assert main(["reminders", "eval", str(DEV / "en.yml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["cases"] == scores["en"].cases and out["right"] == scores["en"].right
    assert set(out["sets"][0]["per_kind"]) >= {"daily", "every_hours", "prn", "unclear"}
    assert isinstance(out["sets"][0]["misses"], list)


def test_a_blind_test_set_never_shows_its_texts(tmp_path, capsys):
    blind = tmp_path / "test"
    blind.mkdir()
    (blind / "en.yml").write_text('locale: en\ncases:\n  - {"text": "secret phrase at 7pm", '
                                  '"expect": {"kind": "daily", "times": ["08:00"]}}\n', encoding="utf-8")
    assert main(["reminders", "eval", str(blind / "en.yml")]) == 0
    out = capsys.readouterr().out
    assert "0/1" in out and "secret" not in out
    assert main(["reminders", "eval", str(blind / "en.yml"), "--json"]) == 0
    out = capsys.readouterr().out
    assert "secret" not in out and json.loads(out)["sets"][0]["misses"] is None


def test_a_bad_set_file_names_the_file_line_and_what_is_valid(tmp_path, capsys):
    bad = tmp_path / "en.yml"
    bad.write_text('locale: en\ncases:\n  - {"text": "7am", "expect": {"kind": "dialy"}}\n', encoding="utf-8")
    assert main(["reminders", "eval", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and "dialy" in err and "daily" in err


@pytest.mark.parametrize("text, expect", [
    ("8am and 8pm", {"kind": "daily", "times": ["08:00", "20:00"], "ambiguous": False}),
    ("ten at night", {"kind": "daily", "times": ["22:00"]}),
    ("at 5 in the afternoon", {"kind": "daily", "times": ["17:00"]}),
    ("1930", {"kind": "daily", "times": ["19:30"]}),
    ("at 7", {"kind": "daily", "times": ["07:00"], "ambiguous": True}),
    ("7 and 19", {"kind": "daily", "times": ["07:00", "19:00"], "ambiguous": False}),
    ("2 tabs three times a day for a week", {"kind": "daily", "per_day": 3, "for_days": 7}),
    ("q12h", {"kind": "every_hours", "hours": 12}),
    ("every 3 weeks", {"kind": "every_days", "days": 21}),
    ("tue/thu at 6pm", {"kind": "weekdays", "weekdays": ["tue", "thu"], "times": ["18:00"]}),
    ("3 weeks on, 1 week off", {"kind": "cycle", "on_days": 21, "off_days": 7}),
    ("after lunch", {"kind": "meals", "meals": ["lunch"], "relation": "after"}),
    ("before bed", {"kind": "meals", "meals": ["bedtime"]}),
    ("when needed for pain", {"kind": "prn"}),
    ("twice a week", {"kind": "unclear"}),
    ("下午两点半", {"kind": "daily", "times": ["14:30"]}),
    ("晚上12点", {"kind": "daily", "times": ["00:00"]}),
    ("9点", {"kind": "daily", "times": ["09:00"], "ambiguous": True}),
    ("每天三次 连续服用两周", {"kind": "daily", "per_day": 3, "for_days": 14}),
    ("每隔6小时", {"kind": "every_hours", "hours": 6}),
    ("两天一次", {"kind": "every_days", "days": 2}),
    ("周末上午10点", {"kind": "weekdays", "weekdays": ["sat", "sun"], "times": ["10:00"]}),
    ("服两周停一周", {"kind": "cycle", "on_days": 14, "off_days": 7}),
    ("午饭后", {"kind": "meals", "meals": ["lunch"], "relation": "after"}),
    ("头疼的时候吃", {"kind": "prn"}),
    ("每周两次", {"kind": "unclear"}),
])
def test_typed_schedules_in_both_languages(text, expect):
    got = label(read_schedule(text))
    assert {k: got.get(k) for k in expect} == expect, read_schedule(text).because


def test_a_reading_becomes_schedule_fields_with_course_and_start():
    today = date(2026, 3, 2)
    fields = read_schedule("3pm for 5 days starting tomorrow").schedule_fields(today)
    assert fields == {"times": ["15:00"], "every_days": 1, "start": date(2026, 3, 3), "end": date(2026, 3, 7)}
    weekly = read_schedule("once a week on friday at 9am").schedule_fields(today)
    assert weekly is not None and weekly["weekdays"] == ["fr"] and weekly["every_days"] == 1
    assert read_schedule("every other day").schedule_fields(today)["times"] == ["morning"]  # type: ignore[index]
    assert read_schedule("as needed").schedule_fields(today) == {"prn": True}
    assert read_schedule("not sure").schedule_fields(today) is None
    because = read_schedule("每8小时一次").because
    assert because == ["every_hours: 每8小时"]
