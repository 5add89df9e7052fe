"""One reply-time promise to the patient, from the business hours, the roster and the live median.

Everything that tells a patient when a doctor will answer — the expectations before a hand-off
(`care.reply_time`), the queue message after it, the "still waiting" updates — asks `ReplyPromises`
and says what it answers, so the patient never hears "within 120 minutes" and "after the clinic
opens" one after the other.

- `minutes`: the department's median first response over `reply_time.window_days` when at least
  `min_tickets` were answered (`basis: live`), else the promise (`basis: promise`): the smaller of
  `care.yml reply_time.promise_minutes` and the priority's SLA first-response clock.
- Closed now (`basis: after_hours`): outside the business hours, unless the department is a roster
  department with a rostered doctor (an active account) on shift; `opens_at` is the next opening
  and `minutes` counts from it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.care.config import ReplyTime
    from bot.handoff.service import HandoffService

STEP = timedelta(minutes=15)
HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class Promise:
    basis: str  # live | promise | after_hours
    minutes: int  # how long after now (after the opening, when after_hours) a first reply usually takes
    opens_at: datetime | None = None  # after_hours: when staff are back (in the roster's time zone)
    sample: int = 0  # answered tickets the median was taken from

    def slots(self, now: datetime) -> dict[str, Any]:
        """What a flow reads (`care.reply_time`) and a relay message renders: `reply_opens` is the
        opening's clock time, with its date when it is not within the next 24 hours."""
        opens = ""
        if self.opens_at is not None:
            opens = self.opens_at.strftime("%H:%M" if self.opens_at - now < timedelta(hours=24) else "%m-%d %H:%M")
        return {"reply_minutes": self.minutes, "reply_basis": self.basis, "reply_sample": self.sample,
                "reply_opens": opens}


class ReplyPromises:
    def __init__(self, service: HandoffService, reply_time: ReplyTime | None = None):
        self.service = service
        self.reply_time = reply_time

    async def opening_rule(self, department: str) -> Callable[[datetime], bool]:
        """Is the department staffed at a given moment: within business hours, or (a roster
        department) while a rostered doctor with an active account is on shift."""
        s = self.service.settings
        staffed: set[str] = set()
        if s.department(department).mode == "roster":
            rostered = [sh.staff for sh in s.roster.shifts if sh.department == department]
            staffed = set(await self.service.accounts.active_among(rostered)) if rostered else set()

        def open_at(moment: datetime) -> bool:
            return s.in_business_hours(moment) or any(x in staffed for x in s.roster.on_duty(department, moment))

        return open_at

    def opens_at(self, open_at: Callable[[datetime], bool], now: datetime) -> datetime | None:
        """The next quarter hour at which `open_at` holds, within eight days."""
        t = now.astimezone(ZoneInfo(self.service.settings.roster.timezone))
        t = t.replace(minute=t.minute - t.minute % 15, second=0, microsecond=0) + STEP
        end = now + HORIZON
        while t < end:
            if open_at(t):
                return t
            t += STEP
        return None

    async def promise(self, department: str, priority: str, now: datetime) -> Promise:
        s = self.service
        window = self.reply_time.window_days if self.reply_time else 14
        enough = self.reply_time.min_tickets if self.reply_time else 20
        waits = await s.tickets.first_responses_since(department, now - timedelta(days=window)) if department else []
        sla_minutes = max(1, s.settings.sla_for(priority).seconds("first_response") // 60)
        promised = min(sla_minutes, self.reply_time.promise_minutes) if self.reply_time else sla_minutes
        if len(waits) >= enough:
            basis, minutes = "live", max(1, round(statistics.median(waits)))
        else:
            basis, minutes = "promise", promised
        open_at = await self.opening_rule(department)
        if not open_at(now):
            opens = self.opens_at(open_at, now)
            if opens is not None:
                return Promise("after_hours", minutes, opens, len(waits))
        return Promise(basis, minutes, None, len(waits))
