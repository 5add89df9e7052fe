"""Time comes from a clock object so tests and `carebot chat` can move it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


_SHIFT = timedelta(0)


def shift_wall_clock(seconds: float) -> None:
    """Test support: every real `Clock` reads the wall clock moved by `seconds` (the suite runs at a
    pinned time of day, whatever hour CI starts it). Never called by the product itself."""
    global _SHIFT
    _SHIFT = timedelta(seconds=seconds)


class Clock:
    def __init__(self, tz: str | tzinfo = "Asia/Shanghai"):
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz

    def now(self) -> datetime:
        return (datetime.now(timezone.utc) + _SHIFT).astimezone(self.tz)


class ManualClock(Clock):
    """A clock that only moves when told to; `advance` returns the new time."""

    def __init__(self, start: datetime | None = None, tz: str | tzinfo = "Asia/Shanghai"):
        super().__init__(tz)
        self._now = (start or datetime.now(timezone.utc)).astimezone(self.tz)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move on by elapsed time (in UTC: across a DST change 1d is 24 hours, not a wall-clock day)."""
        self._now = (self._now.astimezone(timezone.utc) + delta).astimezone(self.tz)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(self.tz)


class OffsetClock(Clock):
    """Real time plus an offset: `carebot chat` uses it so `/advance 2h` fires timers."""

    def __init__(self, tz: str | tzinfo = "Asia/Shanghai"):
        super().__init__(tz)
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    def advance(self, delta: timedelta) -> datetime:
        self.offset += delta
        return self.now()
