"""Clock times in operator YAML ("08:00") and the one daily time window behind business hours,
quiet hours and roster shifts (排班), which may cross midnight (20:00-08:00)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Callable, Iterable

from pydantic import AfterValidator, BaseModel, ConfigDict


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time; write HH:MM, e.g. 08:00 or 22:00") from None
    return value


HHMM = Annotated[str, AfterValidator(_hhmm)]


class TimeWindow(BaseModel):
    """Every day from `start` up to (not including) `end`, on a local clock. An end before the
    start runs across midnight: 20:00-08:00 holds 23:00 and 03:00, not 08:00. An end equal to the
    start is the whole day (a 24-hour service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: HHMM
    end: HHMM

    def contains(self, t: time) -> bool:
        """Is the clock time `t` (no time zone: already local) inside the window?"""
        a, b = time.fromisoformat(self.start), time.fromisoformat(self.end)
        t = t.replace(tzinfo=None)
        if a < b:
            return a <= t < b
        return t >= a or t < b  # across midnight, or the whole day when a == b

    def opened(self, local: datetime) -> datetime | None:
        """When the window that `local` falls in opened (so a night shift belongs to the day it
        starts), or None when `local` is outside the window."""
        if not self.contains(local.time()):
            return None
        a = time.fromisoformat(self.start)
        start = local.replace(hour=a.hour, minute=a.minute, second=0, microsecond=0)
        return start if start <= local else start - timedelta(days=1)

    def closes(self, local: datetime) -> datetime | None:
        """When the window that `local` falls in closes, or None when `local` is outside it."""
        opened = self.opened(local)
        if opened is None:
            return None
        b = time.fromisoformat(self.end)
        end = opened.replace(hour=b.hour, minute=b.minute)
        return end if end > opened else end + timedelta(days=1)


def _duration(value: str) -> str:
    from bot.flow.compiler import parse_duration

    parse_duration(value)  # raises ValueError naming what is valid
    return value


Duration = Annotated[str, AfterValidator(_duration)]  # "30s", "10m", "2h", "1d", "1h30m"


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def on_days(days: list[str] | tuple[str, ...], start: str, end: str, local: datetime) -> bool:
    """Is the local time inside a weekly window (`days`, start-end)? A window across midnight
    (20:00-08:00) belongs to the day it starts: Monday's night shift covers Tuesday 03:00."""
    opened = TimeWindow(start=start, end=end).opened(local)
    return opened is not None and DAY_NAMES[opened.weekday()] in days


def uncovered_week(covered: Callable[[datetime], bool], changes: Iterable[str] | None = None) -> list[str]:
    """The stretches of a week (minute by minute, local time) for which `covered` is False, as
    "Tue 02:00–08:00". A stretch that runs past Sunday midnight into Monday is one stretch.

    `changes`: the clock times ("HH:MM") at which coverage can change besides midnight (the rosters'
    starts and ends). Given them, `covered` is asked once per stretch between two of them, not for
    each of the week's 10,080 minutes (which cost ~0.1 s of every start)."""
    monday = datetime(2024, 1, 1)  # any Monday: only weekday and clock time matter
    week = 7 * 24 * 60
    clock = [time.fromisoformat(t) for t in changes] if changes is not None else []
    if changes is None or any(t.second or t.microsecond for t in clock):
        gaps = [m for m in range(week) if not covered(monday + timedelta(minutes=m))]
    else:
        cuts = sorted({0} | {t.hour * 60 + t.minute for t in clock})
        starts = [day * 24 * 60 + cut for day in range(7) for cut in cuts]
        gaps = [m for a, b in zip(starts, starts[1:] + [week])
                if not covered(monday + timedelta(minutes=a)) for m in range(a, b)]
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
