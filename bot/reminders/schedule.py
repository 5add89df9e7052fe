"""When a medication plan's doses fall: dateutil's rrule picks the days, zoneinfo places the times.

A plan's `Schedule` is what the prescription says, never more:
- fixed times of day (`times: ["08:00", "20:00"]`, or named slots: `breakfast`, `evening` …) on the
  patient's own wall clock — 08:00 stays 08:00 across a DST change;
- every N hours (`every_hours: 8`): elapsed time from the first dose, so a DST change moves the
  wall-clock times, never the interval;
- every N days (`every_days: 2`), chosen weekdays (`weekdays: [mo, we, fr]`), a cycle
  (`cycle: {on_days: 21, off_days: 7}`), a date range (`start`, `end`), taper steps
  (`taper: [{days: 7, times: [...], dose: "2 tablets"}, ...]`, one after another from `start`);
- as needed (`prn: true`): no reminders, the patient logs each dose.

DST: a time that does not exist on the spring-forward day (01:30 in London) is sent at the instant
zoneinfo gives it (fold=0: 01:30 GMT, which the clocks show as 02:30 BST); a time that happens twice
on the fall-back day is sent once, at its first occurrence. `next_after` is strictly after its
argument, so two slots that land on one instant are one dose, never two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, FR, MO, SA, SU, TH, TU, WE, rrule
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mo", "tu", "we", "th", "fr", "sa", "su"]
WEEKDAYS: tuple[Weekday, ...] = ("mo", "tu", "we", "th", "fr", "sa", "su")
_RRULE_DAY = {"mo": MO, "tu": TU, "we": WE, "th": TH, "fr": FR, "sa": SA, "su": SU}
HORIZON_DAYS = 800  # how far ahead `next_after` looks for the next dose day


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _slot(value: str) -> str:
    """A clock time HH:MM or a slot name (checked against the operator's slots when resolved)."""
    value = value.strip()
    if ":" in value:
        try:
            return time.fromisoformat(value).strftime("%H:%M")
        except ValueError:
            raise ValueError(f"{value!r} is not a time; write HH:MM (e.g. 08:00) or a slot such as breakfast") from None
    if not value.isidentifier():
        raise ValueError(f"{value!r} is neither HH:MM nor a slot name such as breakfast or evening")
    return value


class Cycle(_M):
    on_days: int = Field(ge=1, le=365)
    off_days: int = Field(ge=1, le=365)


class TaperStep(_M):
    days: int = Field(ge=1, le=365)
    times: list[str] = Field(min_length=1, max_length=12)
    dose: str = Field("", max_length=60, description="the prescribed amount for this step, as written")

    @field_validator("times")
    @classmethod
    def _times(cls, v: list[str]) -> list[str]:
        return [_slot(t) for t in v]


class Schedule(_M):
    start: date
    end: date | None = None
    times: list[str] = Field([], max_length=12)
    every_hours: int | None = Field(None, ge=1, le=72)
    every_days: int = Field(1, ge=1, le=90)
    weekdays: list[Weekday] = []
    cycle: Cycle | None = None
    taper: list[TaperStep] = []
    prn: bool = False

    @field_validator("times")
    @classmethod
    def _times(cls, v: list[str]) -> list[str]:
        return [_slot(t) for t in v]

    @model_validator(mode="after")
    def _one_pattern(self) -> Schedule:
        patterns = [bool(self.times) and self.every_hours is None, self.every_hours is not None, bool(self.taper),
                    self.prn]
        if sum(patterns) != 1:
            raise ValueError("a schedule is exactly one of: times (with optional weekdays, every_days, cycle), "
                             "every_hours (with an optional first time), taper steps, or prn")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.every_hours is not None and len(self.times) > 1:
            raise ValueError("every_hours takes at most one time: the first dose")
        return self

    @property
    def taper_days(self) -> int:
        return sum(s.days for s in self.taper)


@dataclass(frozen=True)
class Occurrence:
    at: datetime  # aware, UTC
    step: int | None = None  # the taper step it belongs to
    dose: str = ""  # that step's prescribed amount, as written


def _clock(slot: str, slots: dict[str, str]) -> time:
    if ":" in slot:
        return time.fromisoformat(slot)
    if slot not in slots:
        raise ValueError(f"unknown time slot {slot!r}; known: {sorted(slots)}")
    return time.fromisoformat(slots[slot])


def _wall(day: date, t: time, tz: ZoneInfo) -> datetime:
    """The instant a wall-clock time names in `tz` (fold=0: the first of two, or just past a gap)."""
    return datetime.combine(day, t, tzinfo=tz).astimezone(timezone.utc)


def _dose_days(s: Schedule, from_day: date) -> rrule:
    """Every day a dose may fall on, from `from_day`: the calendar part, by dateutil's rrule."""
    until = s.end
    if s.taper:
        last = s.start + timedelta(days=s.taper_days - 1)
        until = last if until is None else min(until, last)
    byweekday = tuple(_RRULE_DAY[d] for d in s.weekdays) or None
    dtstart = datetime.combine(s.start, time())
    rule = rrule(DAILY, interval=s.every_days, byweekday=byweekday, dtstart=dtstart,
                 until=datetime.combine(until, time()) if until else None)
    return rule


def _in_cycle(s: Schedule, day: date) -> bool:
    if s.cycle is None:
        return True
    period = s.cycle.on_days + s.cycle.off_days
    return (day - s.start).days % period < s.cycle.on_days


def _taper_step(s: Schedule, day: date) -> int | None:
    offset = (day - s.start).days
    for i, step in enumerate(s.taper):
        if offset < step.days:
            return i
        offset -= step.days
    return None


def next_after(s: Schedule, tz: str | ZoneInfo, after: datetime, slots: dict[str, str]) -> Occurrence | None:
    """The first dose strictly after `after` (aware), or None when the plan has no more doses."""
    if s.prn:
        return None
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    after = after.astimezone(timezone.utc)
    if s.every_hours is not None:
        return _next_elapsed(s, zone, after, slots)
    local_day = after.astimezone(zone).date()
    from_day = max(s.start, local_day - timedelta(days=1))  # a day back: an early slot may cross midnight in UTC
    days = _dose_days(s, from_day)
    horizon = from_day + timedelta(days=HORIZON_DAYS)
    for dt in days.xafter(datetime.combine(from_day, time()), inc=True):
        day = dt.date()
        if day > horizon:
            return None
        if not _in_cycle(s, day):
            continue
        step = _taper_step(s, day) if s.taper else None
        if s.taper and step is None:
            return None
        names = s.taper[step].times if step is not None else s.times
        for at in sorted({_wall(day, _clock(n, slots), zone) for n in names}):
            if at > after:
                return Occurrence(at, step, s.taper[step].dose if step is not None else "")
    return None


def _next_elapsed(s: Schedule, zone: ZoneInfo, after: datetime, slots: dict[str, str]) -> Occurrence | None:
    """Every N hours of elapsed time from the first dose (on `start` at its first time, 08:00 if none)."""
    first = _wall(s.start, _clock(s.times[0], slots) if s.times else time(8, 0), zone)
    step = timedelta(hours=s.every_hours or 1)
    if after < first:
        at = first
    else:
        at = first + step * ((after - first) // step + 1)
    if s.end is not None and at.astimezone(zone).date() > s.end:
        return None
    return Occurrence(at)


def occurrences(s: Schedule, tz: str, start: datetime, end: datetime, slots: dict[str, str],
                limit: int = 10_000) -> list[Occurrence]:
    """Every dose in (start, end], in order (tests, the console, adherence)."""
    out: list[Occurrence] = []
    at = start
    while len(out) < limit:
        occ = next_after(s, tz, at, slots)
        if occ is None or occ.at > end:
            break
        out.append(occ)
        at = occ.at
    return out


def doses_per_day(s: Schedule) -> float:
    """Average doses a day, for the refill warning (taper: the current step is not known here)."""
    if s.prn:
        return 0.0
    if s.every_hours is not None:
        return 24 / s.every_hours
    per_day = len(set(s.taper[0].times)) if s.taper else len(set(s.times))
    share = 1.0 / s.every_days
    if s.weekdays:
        share = len(set(s.weekdays)) / 7 / s.every_days
    if s.cycle is not None:
        share *= s.cycle.on_days / (s.cycle.on_days + s.cycle.off_days)
    return per_day * share
