"""Adherence: of the doses that were reminded and are over, how many were taken.

Counted per plan and per patient over the last `days` days (content/reminders.yml
`adherence_days`), against each dose's scheduled time — a snoozed dose keeps its time, and a dose
taken after the on-time window counts as taken (and late). A dose the bot could not remind
(`downtime`) or held because the patient had said STOP (`opted_out`) says nothing about the patient
and is left out of the percentage (listed as `not_reminded`). As-needed doses are logs, not
adherence. A dose still open (due, snoozed) is not counted yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.reminders.service import DOSE_T, PLAN

NOT_REMINDED = ("downtime", "opted_out")


@dataclass
class Tally:
    taken: int = 0
    on_time: int = 0
    skipped: int = 0
    missed: int = 0
    not_reminded: int = 0

    @property
    def counted(self) -> int:
        return self.taken + self.skipped + self.missed

    @property
    def percent(self) -> int | None:
        return round(100 * self.taken / self.counted) if self.counted else None

    @property
    def on_time_percent(self) -> int | None:
        return round(100 * self.on_time / self.counted) if self.counted else None

    def add(self, state: str, late: bool, reason: str) -> None:
        if state == "taken":
            self.taken += 1
            self.on_time += 0 if late else 1
        elif state == "skipped":
            self.skipped += 1
        elif state == "missed" and reason in NOT_REMINDED:
            self.not_reminded += 1
        elif state == "missed":
            self.missed += 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counted": self.counted, "percent": self.percent,
                "on_time_percent": self.on_time_percent}


@dataclass
class Adherence:
    since: datetime
    until: datetime
    total: Tally = field(default_factory=Tally)
    plans: dict[str, Tally] = field(default_factory=dict)
    medicines: dict[str, str] = field(default_factory=dict)  # plan → medicine as written
    days: dict[str, Tally] = field(default_factory=dict)  # local date (ISO) → that day's tally

    def to_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "total": self.total.to_dict(),
                "plans": {p: {"medicine": self.medicines.get(p, ""), **t.to_dict()} for p, t in self.plans.items()},
                "days": {d: t.to_dict() for d, t in sorted(self.days.items())}}


def adherence(conn: Connection, conversation_id: str, now: datetime, days: int, plan_id: str | None = None) -> Adherence:
    since = now - timedelta(days=days)
    where = [DOSE_T.c.conversation_id == conversation_id, DOSE_T.c.scheduled_at > since,
             DOSE_T.c.scheduled_at <= now, DOSE_T.c.prn.is_(False)]
    if plan_id:
        where.append(DOSE_T.c.plan_id == plan_id)
    rows = conn.execute(sa.select(DOSE_T.c.plan_id, DOSE_T.c.state, DOSE_T.c.late, DOSE_T.c.reason,
                                  DOSE_T.c.scheduled_at).where(*where).order_by(DOSE_T.c.scheduled_at)).all()
    plans = conn.execute(sa.select(PLAN.c.id, PLAN.c.medicine).where(
        PLAN.c.conversation_id == conversation_id)).all()
    result = Adherence(since, now, medicines={p.id: p.medicine for p in plans})
    tz = now.tzinfo
    for r in rows:
        result.total.add(r.state, r.late, r.reason)
        result.plans.setdefault(r.plan_id, Tally()).add(r.state, r.late, r.reason)
        result.days.setdefault(r.scheduled_at.astimezone(tz).date().isoformat(), Tally()).add(r.state, r.late, r.reason)
    return result
