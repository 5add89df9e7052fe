"""The one daily time window behind business hours, quiet hours and roster shifts, across midnight."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from dataclasses import replace
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.app import load_config
from bot.care.config import Proactive, QuietHours
from bot.handoff.config import HandoffSettings, Shift
from bot.runtime.proactive import ProactivePolicy
from bot.settings import Settings
from bot.testing.transcript import TranscriptRunner, collect
from bot.timeofday import TimeWindow
from tests.conftest import ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
clock_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
hhmm = clock_times.map(lambda t: t.strftime("%H:%M"))
local_times = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)).map(lambda d: d.replace(tzinfo=SHANGHAI))


def minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def walk_contains(start: str, end: str, t: time) -> bool:
    """The reference: walk forward minute by minute from `start`; `t` is inside when it is met
    before `end` is (a window of equal ends is the whole day)."""
    a, b, x = minutes(time.fromisoformat(start)), minutes(time.fromisoformat(end)), minutes(t)
    length = (b - a) % 1440 or 1440
    return (x - a) % 1440 < length


@given(hhmm, hhmm, st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)))
def test_contains_is_the_minute_walk(start: str, end: str, t: time) -> None:
    assert TimeWindow(start=start, end=end).contains(t) == walk_contains(start, end, t.replace(second=0))


@given(hhmm, hhmm, local_times)
def test_opened_and_closes_bracket_the_moment(start: str, end: str, local: datetime) -> None:
    window = TimeWindow(start=start, end=end)
    opened, closes = window.opened(local), window.closes(local)
    if not window.contains(local.time()):
        assert opened is None and closes is None
        return
    assert opened is not None and closes is not None
    assert opened <= local < closes
    assert opened.strftime("%H:%M") == start and closes.strftime("%H:%M") == end
    assert timedelta(0) < closes.replace(tzinfo=None) - opened.replace(tzinfo=None) <= timedelta(days=1)


def test_windows_across_midnight() -> None:
    night = TimeWindow(start="20:00", end="08:00")
    assert night.contains(time(23, 0)) and night.contains(time(3, 0)) and night.contains(time(20, 0))
    assert not night.contains(time(8, 0)) and not night.contains(time(12, 0))
    assert TimeWindow(start="00:00", end="00:00").contains(time(12, 0))  # a 24-hour service


def test_business_hours_across_midnight_in_the_roster_time_zone() -> None:
    evening_clinic = HandoffSettings(business_hours=TimeWindow(start="20:00", end="08:00"))
    assert evening_clinic.in_business_hours(datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI))
    assert evening_clinic.in_business_hours(datetime(2026, 3, 2, 19, 30, tzinfo=ZoneInfo("UTC")))  # 03:30
    assert not evening_clinic.in_business_hours(datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))
    assert HandoffSettings().in_business_hours(datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI))


def test_quiet_hours_hold_until_the_morning() -> None:
    policy = ProactivePolicy(Proactive(quiet_hours=QuietHours(start="22:00", end="08:00")))
    assert policy.postpone_until(datetime(2026, 3, 2, 23, 30, tzinfo=SHANGHAI)) == \
        datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    assert policy.postpone_until(datetime(2026, 3, 3, 3, 0, tzinfo=SHANGHAI)) == \
        datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
    assert policy.postpone_until(datetime(2026, 3, 3, 12, 0, tzinfo=SHANGHAI)) is None
    lunch = ProactivePolicy(Proactive(quiet_hours=QuietHours(start="12:00", end="14:00")))
    assert lunch.postpone_until(datetime(2026, 3, 3, 13, 0, tzinfo=SHANGHAI)) == \
        datetime(2026, 3, 3, 14, 0, tzinfo=SHANGHAI)


def test_a_night_shift_belongs_to_the_day_it_starts() -> None:
    friday_night = Shift(staff="d_wu", department="im", days=["fri"], start="20:00", end="08:00")
    assert friday_night.on_duty(datetime(2026, 3, 6, 23, 0, tzinfo=SHANGHAI))  # Friday 23:00
    assert friday_night.on_duty(datetime(2026, 3, 7, 3, 0, tzinfo=SHANGHAI))  # Saturday 03:00
    assert not friday_night.on_duty(datetime(2026, 3, 6, 3, 0, tzinfo=SHANGHAI))  # Thursday's night


HANDOFF_AT_NIGHT = """
tests:
  - name: an evening clinic at 23:00 is open — no out-of-hours notice
    locale: zh-CN
    now: "2026-03-02T23:00:00+08:00"
    steps:
      - user: 人工
      - user: 是
      - user: 是
      - user: 否
      - user: 内科
      - expect: { key: handoff.queued }
      - expect: { none: true }
  - name: the same clinic at 10:00 is closed
    locale: zh-CN
    now: "2026-03-02T10:00:00+08:00"
    steps:
      - user: 人工
      - user: 是
      - user: 是
      - user: 否
      - user: 内科
      - expect: { key: handoff.queued_after_hours, contains: "20:00" }
      - expect: { none: true }
"""


def test_a_patient_is_told_out_of_hours_by_the_business_hours_across_midnight(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    handoff = content / "handoff.yml"
    text = handoff.read_text(encoding="utf-8")
    assert 'business_hours: { start: "08:00", end: "20:00" }' in text
    handoff.write_text(text.replace('business_hours: { start: "08:00", end: "20:00" }',
                                    'business_hours: { start: "20:00", end: "08:00" }'), encoding="utf-8")
    (tmp_path / "night.yml").write_text(textwrap.dedent(HANDOFF_AT_NIGHT), encoding="utf-8")
    settings = replace(Settings(), flows_dir=ROOT / "flows", content_dir=content)
    runner = TranscriptRunner(settings, load_config(settings))
    try:
        results = [asyncio.run(runner.run(case)) for case in collect([tmp_path / "night.yml"])]
    finally:
        runner.close()
    assert [(r.name, r.failure) for r in results if not r.passed] == []
    assert len(results) == 2
