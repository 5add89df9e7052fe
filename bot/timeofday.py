"""Clock times in operator YAML ("08:00") and windows that may cross midnight (22:00-08:00)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Callable

from pydantic import AfterValidator


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time; write HH:MM, e.g. 08:00 or 22:00") from None
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]


def in_window(start: str, end: str, t: time) -> bool:
    """Is `t` in [start, end)? A window whose end is before its start runs across midnight."""
    a, b = time.fromisoformat(start), time.fromisoformat(end)
    return (a <= t < b) if a <= b else (t >= a or t < b)


def _duration(value: str) -> str:
    from bot.flow.compiler import parse_duration

    parse_duration(value)  # raises ValueError naming what is valid
    return value


Duration = Annotated[str, AfterValidator(_duration)]  # "30s", "10m", "2h", "1d", "1h30m"


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def on_days(days: list[str] | tuple[str, ...], start: str, end: str, local: datetime) -> bool:
    """Is the local time inside a weekly window (`days`, start-end)? A window across midnight
    (20:00-08:00) belongs to the day it starts: Monday's night shift covers Tuesday 03:00."""
    t = local.time()
    if not in_window(start, end, t):
        return False
    started = local if t >= time.fromisoformat(start) else local - timedelta(days=1)
    return DAY_NAMES[started.weekday()] in days


def uncovered_week(covered: Callable[[datetime], bool]) -> list[str]:
    """The stretches of a week (minute by minute, local time) for which `covered` is False, as
    "Tue 02:00–08:00". A stretch that runs past Sunday midnight into Monday is one stretch."""
    monday = datetime(2024, 1, 1)  # any Monday: only weekday and clock time matter
    week = 7 * 24 * 60
    gaps = [m for m in range(week) if not covered(monday + timedelta(minutes=m))]
    if not gaps:
        return []
    runs: list[list[int]] = []
    for m in gaps:
        if runs and runs[-1][1] == m:
            runs[-1][1] = m + 1
        else:
            runs.append([m, m + 1])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == week:  # Sunday night into Monday
        runs[0][0] = runs.pop()[0] - week

    def label(minute: int) -> str:
        at = monday + timedelta(minutes=minute)
        return f"{at.strftime('%a')} {at.strftime('%H:%M')}"

    out = []
    for a, b in runs:
        if b - a >= week:
            return ["every hour of the week"]
        end = monday + timedelta(minutes=b)
        out.append(f"{label(a)}–{'24:00' if end.strftime('%H:%M') == '00:00' else end.strftime('%H:%M')}"
                   if b - a < 24 * 60 else f"{label(a)}–{label(b)}")
    return out
