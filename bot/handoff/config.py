"""`content/handoff.yml`: how each department dispatches, SLA clocks per priority, the shift roster,
expert teams, canned replies and quality-review rules. Validated with file:line errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.flow.compiler import parse_duration
from bot.timeofday import HHMM, Duration, TimeWindow, on_days, uncovered_week
from bot.yamlsrc import load_model

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITIES = ("urgent", "high", "normal")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_M):
    mode: Literal["grab", "roster", "team"] = "grab"
    offer_timeout: Duration = "10m"  # grab: re-offer (and widen to the backup) when nobody took it
    backup: str = ""  # department whose staff take breaches and unanswered offers
    team: str = ""  # team mode: the expert team


def _time_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except Exception:
        raise ValueError(f"{v!r} is not a time zone; use an IANA name such as Asia/Shanghai") from None
    return v


class Sla(_M):
    first_response: Duration
    next_response: Duration
    resolution: Duration
    remind_before: Duration = "5m"
    patient_update_every: Duration = "15m"  # tell a waiting patient where they are in the queue

    def seconds(self, field: str) -> int:
        return parse_duration(getattr(self, field))


class Shift(TimeWindow):
    staff: str
    department: str
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(DAYS)
    start: HHMM = "08:00"
    end: HHMM = "18:00"

    def on_duty(self, local: datetime) -> bool:
        return on_days(self.days, self.start, self.end, local)  # a night shift belongs to the day it starts


class Roster(_M):
    timezone: str = "Asia/Shanghai"
    shifts: list[Shift] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _time_zone(v)

    def on_duty(self, department: str, now: datetime) -> list[str]:
        local = now.astimezone(ZoneInfo(self.timezone))
        return [s.staff for s in self.shifts if s.department == department and s.on_duty(local)]


class OnCallShift(_M):
    """One person on the emergency on-call roster (急诊值班): a staff account of the console, or a
    named person reached only through `contacts` (phone, pager) by the outgoing webhook."""

    staff: str = ""
    name: str = ""
    contacts: dict[str, str] = {}  # e.g. {sms: "+86 138…", pager: "4711"}: passed to the webhook gateway
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(DAYS)
    start: HHMM = "00:00"
    end: HHMM = "00:00"  # start == end: the whole day

    @model_validator(mode="after")
    def _who(self) -> OnCallShift:
        if not self.staff and not self.name:
            raise ValueError("an on-call entry names `staff:` (a console account id) or `name:` with `contacts:`")
        return self

    @property
    def who(self) -> str:
        return self.staff or self.name

    def on_duty(self, local: datetime) -> bool:
        if self.start == self.end:
            return DAYS[local.weekday()] in self.days
        return on_days(self.days, self.start, self.end, local)


class OnCall(_M):
    """The emergency on-call roster and the paging ladder: the on-call person now → the next on-call
    → the backup → every on-call person of the organisation, each rung `ack_timeout` long."""

    timezone: str = "Asia/Shanghai"
    ack_timeout: Duration = "2m"
    shifts: list[OnCallShift] = Field(min_length=1)
    backup: list[OnCallShift] = []  # the backup rung (their own days/hours; default: always)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _time_zone(v)

    @model_validator(mode="after")
    def _covered(self) -> OnCall:
        gaps = uncovered_week(lambda local: any(s.on_duty(local) for s in self.shifts),
                              [t for s in self.shifts for t in (s.start, s.end)])
        if gaps:
            raise ValueError("nobody is on call for emergencies " + ", ".join(gaps) + f" ({self.timezone}); "
                             "every hour of the week needs someone under on_call.shifts")
        return self

    def on_duty(self, now: datetime) -> list[OnCallShift]:
        """Who is on call now, in roster order (the first is paged first)."""
        local = now.astimezone(ZoneInfo(self.timezone))
        return [s for s in self.shifts if s.on_duty(local)]

    def backup_now(self, now: datetime) -> list[OnCallShift]:
        local = now.astimezone(ZoneInfo(self.timezone))
        return [s for s in self.backup if s.on_duty(local)]


class Team(_M):
    expert: str
    members: list[str] = Field(min_length=1)  # assistant doctors and medical assistants
    name: dict[str, str] = {}  # how the patient sees the team, per locale


class Quality(_M):
    min_reply_chars: int = 15  # a reply shorter than this to a long question is "too short"
    long_question_chars: int = 30
    min_overlap: float = 0.05  # shared character pairs / words with the question below this: "unrelated"
    duplicate_similarity: float = 0.9  # a reply this close to one sent to another patient: copy-paste
    slow_reply: Duration = "30m"
    sample_rate: float = Field(0.1, ge=0, le=1)  # share of closed tickets sent to review at random


class Satisfaction(_M):
    promoter_threshold: int = Field(9, ge=6, le=10)  # set to 8 where patients rarely give 9-10
    detractor_max: int = Field(6, ge=0, le=9)


class HandoffSettings(_M):
    departments: dict[str, Department] = {}
    default: Department = Department()
    sla: dict[Literal["urgent", "high", "normal"], Sla] = {
        "urgent": Sla(first_response="5m", next_response="10m", resolution="2h", remind_before="2m",
                      patient_update_every="5m"),
        "high": Sla(first_response="30m", next_response="1h", resolution="24h"),
        "normal": Sla(first_response="2h", next_response="4h", resolution="48h", remind_before="15m"),
    }
    business_hours: TimeWindow = TimeWindow(start="08:00", end="20:00")  # in the roster's time zone
    roster: Roster = Roster()
    on_call: OnCall | None = None  # required wherever triage rules can raise an emergency (carebot validate)
    teams: dict[str, Team] = {}
    canned: dict[str, dict[str, str]] = {}  # short code → {locale: text}
    quality: Quality = Quality()
    satisfaction: Satisfaction = Satisfaction()

    @model_validator(mode="after")
    def _references(self) -> HandoffSettings:
        problems = []
        for name, dept in {**self.departments, "default": self.default}.items():
            if dept.mode == "team" and (dept.team or name) not in self.teams:
                problems.append(f"department {name!r} is in team mode but team {dept.team or name!r} is not "
                                f"under teams: (teams: {', '.join(self.teams) or 'none'})")
            if dept.backup and dept.backup not in self.departments:
                problems.append(f"department {name!r} has backup {dept.backup!r}, which is not under departments:")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def in_business_hours(self, now: datetime) -> bool:
        return self.business_hours.contains(now.astimezone(ZoneInfo(self.roster.timezone)).time())

    def department(self, department: str) -> Department:
        return self.departments.get(department, self.default)

    def widened_at_dispatch(self, department: str) -> str:
        """The department whose staff also see a new ticket of `department` from the start: the default's
        backup when `departments:` does not name it (no staff account can join an unnamed department, so
        nobody else would ever see the ticket), else nobody."""
        if department in self.departments or not self.default.backup or self.default.backup == department:
            return ""
        return self.default.backup

    def sla_for(self, priority: str) -> Sla:
        return self.sla.get(priority if priority in PRIORITIES else "normal", self.sla["normal"])  # type: ignore[call-overload]


def load_handoff(content_dir: Path) -> HandoffSettings:
    return load_model(Path(content_dir) / "handoff.yml", HandoffSettings)
