"""Clock times in operator YAML ("08:00") and the one daily time window behind business hours,
quiet hours and roster shifts (排班), which may cross midnight (20:00-08:00)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

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
