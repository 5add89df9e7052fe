"""Hand-off pieces on their own: the machine quality rules, the roster, handoff.yml validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConfigError
from bot.handoff import quality
from bot.handoff.config import HandoffSettings, Quality, Roster, Shift, load_handoff

RULES = Quality()
QUESTION = "我脸上长了很多痘痘，用了阿达帕林凝胶两周了，反而更红更干，还要不要继续用？需要加别的药吗？"


def test_too_short_unrelated_duplicate_and_slow():
    slow = timedelta(minutes=30)
    assert quality.check_reply(RULES, "继续用。", QUESTION, [], None, slow) == ["too_short"]
    relevant = "阿达帕林刚开始用会发红发干，属于常见反应，可以隔天用并加保湿，不建议自行加药。"
    assert quality.check_reply(RULES, relevant, QUESTION, [], timedelta(minutes=5), slow) == []
    unrelated = "请按时服用降压药，每天早上测量血压并记录下来，下次复诊带上记录本。"
    assert "unrelated" in quality.check_reply(RULES, unrelated, QUESTION, [], None, slow)
    assert quality.check_reply(RULES, relevant, QUESTION, [relevant.replace("。", "！")], None, slow) == ["duplicate"]
    assert quality.check_reply(RULES, relevant, QUESTION, [], timedelta(hours=2), slow) == ["slow"]
    # English works on words
    q = "I have had a dry cough for three weeks and it gets worse at night, should I get a chest x-ray?"
    assert quality.check_reply(RULES, "A cough for three weeks that is worse at night deserves a chest x-ray, yes.",
                               q, [], None, slow) == []


def test_the_review_sample_is_stable_and_near_its_rate():
    picks = [quality.sampled(f"T{i:06d}", 0.1) for i in range(5000)]
    assert picks == [quality.sampled(f"T{i:06d}", 0.1) for i in range(5000)]
    assert 0.08 < sum(picks) / len(picks) < 0.12


def test_roster_day_and_night_shifts_in_the_roster_time_zone():
    roster = Roster(timezone="Asia/Shanghai", shifts=[
        Shift(staff="day", department="im", days=["mon"], start="08:00", end="20:00"),
        Shift(staff="night", department="im", days=["mon"], start="20:00", end="08:00")])
    tz = ZoneInfo("Asia/Shanghai")
    assert roster.on_duty("im", datetime(2026, 3, 2, 9, 0, tzinfo=tz)) == ["day"]  # Monday morning
    assert roster.on_duty("im", datetime(2026, 3, 2, 23, 0, tzinfo=tz)) == ["night"]
    assert roster.on_duty("im", datetime(2026, 3, 3, 7, 0, tzinfo=tz)) == ["night"]  # Monday's night shift
    assert roster.on_duty("im", datetime(2026, 3, 3, 9, 0, tzinfo=tz)) == []  # Tuesday: nobody
    assert roster.on_duty("im", datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)) == ["day"]  # 09:00 in Shanghai


def test_handoff_yml_problems_name_file_line_and_what_is_valid(tmp_path):
    (tmp_path / "handoff.yml").write_text(
        "departments:\n"
        "  psychiatry: { mode: team, team: nobody }\n"
        "  dermatology: { mode: grab, backup: nowhere }\n"
        "sla:\n"
        "  normal: { first_response: 2 hours, next_response: 4h, resolution: 48h }\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_handoff(tmp_path)
    text = str(err.value)
    assert "handoff.yml:5: sla.normal.first_response:" in text and "'2 hours' is not a duration" in text
    with pytest.raises(ValueError, match="team 'nobody' is not under teams"):
        HandoffSettings.model_validate({"departments": {"psychiatry": {"mode": "team", "team": "nobody"}}})
    with pytest.raises(ValueError, match="backup 'nowhere', which is not under departments"):
        HandoffSettings.model_validate({"departments": {"dermatology": {"backup": "nowhere"}}})


def test_every_refusal_reads_in_both_languages() -> None:
    """A refused staff action is said in the staff member's language; the English text stays the
    exception's message (CLI, logs)."""
    from bot.handoff.staff import REFUSALS, HandoffError

    values = {"status": "closed", "ticket": "t1", "conversation": "c1", "verdicts": "ok, minor",
              "staff": "d_x", "role": "wizard", "roles": "admin, doctor", "canned": "hi", "known": "bye"}
    for key, (zh, en) in REFUSALS.items():
        exc = HandoffError(key, **{k: v for k, v in values.items() if "{" + k in zh + en})
        assert str(exc) == exc.text("en") and "{" not in str(exc)
        assert exc.text("zh-CN") != exc.text("en") and "{" not in exc.text("zh-CN")
    assert HandoffError("no_staff", staff="d_x").text("zh-CN") == "没有工号为「d_x」的员工。"
    assert str(HandoffError("no_staff", staff="d_x")) == "no staff member 'd_x'"
