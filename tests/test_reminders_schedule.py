"""bot/reminders/schedule.py: when doses fall. Properties (Hypothesis) in several zones across DST:
`next_after` is strictly increasing, never skips a wall-clock dose and never doubles one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from bot.reminders.schedule import Schedule, doses_per_day, next_after, occurrences

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Shanghai", "America/Santiago"]
SLOTS = {"morning": "08:00", "evening": "20:00", "breakfast": "07:30"}
BASE = date(2026, 1, 1)

clock_times = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), times=st.lists(clock_times, min_size=1, max_size=4, unique=True),
       start=st.integers(0, 330), days=st.integers(20, 40))
def test_fixed_times_fall_once_a_day_each_on_the_wall_clock_across_dst(zone, times, start, days):
    tz = ZoneInfo(zone)
    s = Schedule(start=BASE + timedelta(days=start), times=times)
    begin = datetime.combine(s.start, time(), tzinfo=tz) - timedelta(seconds=1)
    end = datetime.combine(s.start + timedelta(days=days), time(), tzinfo=tz) - timedelta(seconds=1)
    got = occurrences(s, zone, begin, end, SLOTS)
    instants = [o.at for o in got]
    assert instants == sorted(set(instants))  # strictly increasing: never doubled
    per_day: dict[date, set[str]] = {}
    for at in instants:
        local = at.astimezone(tz)
        per_day.setdefault(local.date(), set()).add(local.strftime("%H:%M"))
    for n in range(days):
        day = s.start + timedelta(days=n)
        said = per_day.get(day, set())
        for t in times:
            wall = datetime.combine(day, time.fromisoformat(t), tzinfo=tz)
            exists = wall.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) == wall.replace(tzinfo=None)
            if exists:  # a time the spring-forward skips is sent at the instant zoneinfo gives it
                assert t in said, (day, t, sorted(said))
    assert len(instants) <= days * len(times)
    # every dose a day is a distinct instant unless two times name one instant (a DST gap)
    assert len(instants) >= days * len(times) - 2 * len(times)


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), hours=st.sampled_from([1, 4, 6, 8, 12, 24, 36]),
       first=clock_times, start=st.integers(0, 330), probe=st.integers(0, 60 * 24 * 30))
def test_every_n_hours_is_elapsed_time_and_next_after_is_monotonic(zone, hours, first, start, probe):
    s = Schedule(start=BASE + timedelta(days=start), times=[first], every_hours=hours)
    t0 = next_after(s, zone, datetime(2025, 1, 1, tzinfo=timezone.utc), SLOTS)
    assert t0 is not None
    after = t0.at + timedelta(minutes=probe)
    a = next_after(s, zone, after, SLOTS)
    b = next_after(s, zone, a.at, SLOTS)  # type: ignore[union-attr]
    assert a is not None and b is not None
    assert after < a.at <= after + timedelta(hours=hours)
    assert b.at - a.at == timedelta(hours=hours)
    assert (a.at - t0.at) % timedelta(hours=hours) == timedelta(0)


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES), every=st.integers(2, 9), on=st.integers(1, 10), off=st.integers(1, 10),
       start=st.integers(0, 300), t=clock_times)
def test_calendar_patterns_never_double_and_keep_their_rhythm(zone, every, on, off, start, t):
    tz = ZoneInfo(zone)
    begin_day = BASE + timedelta(days=start)
    for s in (Schedule(start=begin_day, times=[t], every_days=every),
              Schedule(start=begin_day, times=[t], cycle={"on_days": on, "off_days": off})):
        got = occurrences(s, zone, datetime.combine(begin_day, time(), tzinfo=tz) - timedelta(seconds=1),
                          datetime.combine(begin_day + timedelta(days=60), time(), tzinfo=tz), SLOTS)
        days = [o.at.astimezone(tz).date() for o in got]
        assert len(days) == len(set(days))  # one dose a dose day
        for d in days:
            offset = (d - begin_day).days
            if s.cycle is None:
                assert offset % every == 0
            else:
                assert offset % (on + off) < on


@pytest.mark.parametrize("zone, spring, fall", [
    ("Europe/London", date(2026, 3, 29), date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
])
def test_dst_days_in_two_zones(zone, spring, fall):
    tz = ZoneInfo(zone)
    for day in (spring, fall):
        gap = "01:30" if zone == "Europe/London" else "02:30"  # inside the spring-forward's missing hour
        s = Schedule(start=day - timedelta(days=1), times=[gap if day == spring else "01:30", "08:00"])
        got = occurrences(s, zone, datetime.combine(day, time(), tzinfo=tz) - timedelta(seconds=1),
                          datetime.combine(day, time(23, 59), tzinfo=tz), SLOTS)
        # spring: the missing time is sent at the instant zoneinfo gives it (an hour on); fall: 01:30
        # happens twice on the clock and is sent once
        assert [o.at.astimezone(tz).strftime("%H:%M") for o in got] == (
            ["02:30" if zone == "Europe/London" else "03:30", "08:00"] if day == spring else ["01:30", "08:00"])
    # every 8 hours across the spring-forward: the wall clock moves, the interval does not
    s = Schedule(start=spring - timedelta(days=1), times=["22:00"], every_hours=8)
    got = occurrences(s, zone, datetime.combine(spring - timedelta(days=1), time(), tzinfo=tz),
                      datetime.combine(spring + timedelta(days=1), time(), tzinfo=tz), SLOTS)
    gaps = {b.at - a.at for a, b in zip(got, got[1:])}
    assert gaps == {timedelta(hours=8)}


def test_taper_weekdays_slots_and_ends():
    s = Schedule(start=date(2026, 3, 2), taper=[{"days": 2, "times": ["morning", "evening"], "dose": "2 tablets"},
                                                {"days": 2, "times": ["morning"], "dose": "1 tablet"}])
    got = occurrences(s, "Asia/Shanghai", datetime(2026, 3, 1, tzinfo=timezone.utc),
                      datetime(2026, 4, 1, tzinfo=timezone.utc), SLOTS)
    assert [(o.at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M"), o.step, o.dose) for o in got] == [
        ("03-02 08:00", 0, "2 tablets"), ("03-02 20:00", 0, "2 tablets"), ("03-03 08:00", 0, "2 tablets"),
        ("03-03 20:00", 0, "2 tablets"), ("03-04 08:00", 1, "1 tablet"), ("03-05 08:00", 1, "1 tablet")]
    mwf = Schedule(start=date(2026, 3, 2), times=["breakfast"], weekdays=["mo", "we", "fr"], end=date(2026, 3, 8))
    got = occurrences(mwf, "UTC", datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc),
                      SLOTS)
    assert [o.at.strftime("%a %H:%M") for o in got] == ["Mon 07:30", "Wed 07:30", "Fri 07:30"]
    assert next_after(Schedule(start=date(2026, 3, 2), prn=True), "UTC", datetime(2026, 3, 2, tzinfo=timezone.utc),
                      SLOTS) is None
    assert doses_per_day(mwf) == pytest.approx(3 / 7)
    assert doses_per_day(Schedule(start=date(2026, 3, 2), times=["08:00"], every_hours=8)) == 3


@pytest.mark.parametrize("fields, says", [
    ({"times": ["25:00"]}, "not a time"),
    ({"times": ["8 am"]}, "neither HH:MM nor a slot"),
    ({}, "exactly one of"),
    ({"times": ["08:00"], "prn": True}, "exactly one of"),
    ({"times": ["08:00"], "end": "2026-03-01"}, "before start"),
    ({"times": ["08:00", "20:00"], "every_hours": 8}, "at most one time"),
])
def test_a_bad_schedule_says_what_would_be_valid(fields, says):
    with pytest.raises(ValidationError, match=says):
        Schedule(start=date(2026, 3, 2), **fields)
