"""`content/reminders.yml`: the kinds of medication plan an operator offers and the rules of timing.

A kind (tablet, insulin, an as-needed inhaler …) sets how long a dose counts as on time, how late a
reminder may still go out after downtime, how often and how many times an unanswered reminder is
repeated, the snooze length, after how many missed doses in a row the caregiver or care team hears,
and how many days before running out a refill warning comes. Validated with file:line errors.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.flow.compiler import parse_duration
from bot.timeofday import HHMM
from bot.yamlsrc import load_model

KIND_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    parse_duration(value)  # raises ValueError naming what is valid
    return value


class Timing(_M):
    """How a dose of a kind is reminded; every field may be set per kind, the rest from `defaults`."""

    on_time_window: str | None = Field(None, description="a dose taken within this of its time is on time; "
                                       "unanswered after it, the dose is missed (no_response)")
    grace: str | None = Field(None, description="due while the bot was down: still sent (marked late) up to "
                              "this long after its time, else recorded missed (downtime)")
    nag_every: str | None = Field(None, description="repeat an unanswered reminder this often")
    nag_max: int | None = Field(None, ge=0, le=10, description="repeats at most")
    snooze: str | None = Field(None, description="how long Snooze waits")
    escalate_after: int | None = Field(None, ge=0, le=50, description="missed doses in a row before the "
                                       "caregiver or the care team is told (0: never)")
    refill_warn_days: int | None = Field(None, ge=0, le=60, description="warn this many days before the pill "
                                         "count runs out (0: no warning)")

    @field_validator("on_time_window", "grace", "nag_every", "snooze")
    @classmethod
    def _durations(cls, v: str | None) -> str | None:
        return None if v is None else _duration(v)


class Defaults(Timing):
    on_time_window: str = "1h"
    grace: str = "2h"
    nag_every: str = "20m"
    nag_max: int = Field(2, ge=0, le=10)
    snooze: str = "15m"
    escalate_after: int = Field(3, ge=0, le=50)
    refill_warn_days: int = Field(5, ge=0, le=60)


class Kind(Timing):
    prn: bool = Field(False, description="as needed (PRN): no schedule, the patient logs each dose")


class KindTiming(_M):
    """A kind's timing resolved against the defaults, in seconds."""

    on_time_window: int
    grace: int
    nag_every: int
    nag_max: int
    snooze: int
    escalate_after: int
    refill_warn_days: int
    prn: bool = False


class ReminderSettings(_M):
    defaults: Defaults = Defaults()
    meal_slots: dict[str, HHMM] = {"breakfast": "07:30", "lunch": "12:00", "dinner": "18:30", "bedtime": "22:00"}
    day_parts: dict[str, HHMM] = {"morning": "08:00", "noon": "12:00", "afternoon": "15:00", "evening": "20:00",
                                  "night": "22:00"}
    default_kind: str = "tablet"
    kinds: dict[str, Kind] = {"tablet": Kind(), "prn": Kind(prn=True)}
    caregiver_code_ttl: str = "24h"
    adherence_days: int = Field(30, ge=1, le=365, description="adherence is counted over this many days")

    @field_validator("caregiver_code_ttl")
    @classmethod
    def _ttl(cls, v: str) -> str:
        return _duration(v)

    @field_validator("kinds")
    @classmethod
    def _kind_ids(cls, v: dict[str, Kind]) -> dict[str, Kind]:
        for key in v:
            if not KIND_ID.match(key):
                raise ValueError(f"kind id {key!r} must be lower-case letters, digits and _ (e.g. insulin)")
        if not v:
            raise ValueError("at least one kind is needed, e.g. kinds: {tablet: {}}")
        return v

    @model_validator(mode="after")
    def _default_kind_exists(self) -> ReminderSettings:
        if self.default_kind not in self.kinds:
            raise ValueError(f"default_kind {self.default_kind!r} is not one of the kinds: {sorted(self.kinds)}")
        scheduled = [k for k, kind in self.kinds.items() if not kind.prn]
        if not scheduled:
            raise ValueError("at least one kind must be scheduled (prn: false)")
        return self

    def timing(self, kind: str) -> KindTiming:
        """The kind's rules with the defaults filled in (an unknown kind gets the defaults)."""
        k = self.kinds.get(kind, Kind())
        d = self.defaults

        def pick(name: str) -> object:
            value = getattr(k, name)
            return getattr(d, name) if value is None else value

        return KindTiming(
            on_time_window=parse_duration(str(pick("on_time_window"))), grace=parse_duration(str(pick("grace"))),
            nag_every=parse_duration(str(pick("nag_every"))), nag_max=int(pick("nag_max")),  # type: ignore[call-overload]
            snooze=parse_duration(str(pick("snooze"))), escalate_after=int(pick("escalate_after")),  # type: ignore[call-overload]
            refill_warn_days=int(pick("refill_warn_days")), prn=k.prn)  # type: ignore[call-overload]

    def slot_times(self) -> dict[str, str]:
        """Named times a schedule may use instead of a clock time: meal slots and parts of the day."""
        return {**self.day_parts, **self.meal_slots}


def load_reminders(content_dir: Path) -> ReminderSettings:
    return load_model(Path(content_dir) / "reminders.yml", ReminderSettings)
