"""Service figures per department: first-response times, SLA attainment, NPS, CSAT, complaints.

Plain SQL over the store (tickets, survey records, complaints) for a window of time; the few
aggregates SQLite lacks (median, percentile, JSON fields) are finished in Python over the selected
columns. Everything is computed from raw rows for each department and for all departments pooled
(`ALL`), never by averaging averages.

    NPS   = % promoters (recommend ≥ promoter_threshold) − % detractors (recommend ≤ detractor_max)
    CSAT  = mean satisfaction (1–5), and the share answering 4 or 5
    SLA   = first responses on time / tickets whose first response was due (answered or overdue)
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff.models import Complaint
from bot.store.store import EVENT, TICKET

if TYPE_CHECKING:
    from bot.handoff.config import Satisfaction
    from bot.store.store import Store

COMPLAINTS = Complaint.__table__
ALL = "*"  # the key of the pooled figures


class Rates:
    """SLA attainment and NPS from counts, for any figures that carry them (a department, a day)."""

    sla_due: int
    sla_met: int
    surveys: int
    promoters: int
    detractors: int

    @property
    def sla_attainment(self) -> float | None:
        """Share (0–1) of due first responses that were on time; None when nothing was due."""
        return self.sla_met / self.sla_due if self.sla_due else None

    @property
    def nps(self) -> float | None:
        """−100 … 100; None without answers."""
        return 100.0 * (self.promoters - self.detractors) / self.surveys if self.surveys else None


@dataclass(frozen=True)
class DepartmentStats(Rates):
    department: str  # a department id, or ALL
    tickets: int  # opened in the window
    answered: int  # of those, with a first response
    first_response_median_s: float | None
    first_response_p90_s: float | None
    sla_due: int  # tickets whose first response was due: answered, or unanswered past the due time
    sla_met: int  # answered by the due time
    surveys: int  # answers to "would you recommend" (0–10)
    promoters: int
    detractors: int
    csat_answers: int  # answers to "how satisfied" (1–5)
    csat_mean: float | None
    csat_satisfied: int  # answers of 4 or 5
    complaints: int  # filed in the window
    complaints_open: int


    @property
    def csat_share(self) -> float | None:
        """Share (0–1) of satisfaction answers that were 4 or 5."""
        return self.csat_satisfied / self.csat_answers if self.csat_answers else None


@dataclass(frozen=True)
class StatsReport:
    since: datetime
    until: datetime
    promoter_threshold: int
    detractor_max: int
    departments: list[DepartmentStats]  # sorted by department id
    overall: DepartmentStats

    def get(self, department: str) -> DepartmentStats | None:
        if department == ALL:
            return self.overall
        return next((d for d in self.departments if d.department == department), None)


@dataclass
class _Acc:
    tickets: int = 0
    waits: list[float] = field(default_factory=list)
    sla_due: int = 0
    sla_met: int = 0
    recommend: list[int] = field(default_factory=list)
    satisfaction: list[int] = field(default_factory=list)
    complaints: int = 0
    complaints_open: int = 0

    def done(self, department: str, promoter_threshold: int, detractor_max: int) -> DepartmentStats:
        waits = sorted(self.waits)
        sat = self.satisfaction
        return DepartmentStats(
            department=department, tickets=self.tickets, answered=len(waits),
            first_response_median_s=statistics.median(waits) if waits else None,
            first_response_p90_s=_percentile(waits, 0.9) if waits else None,
            sla_due=self.sla_due, sla_met=self.sla_met, surveys=len(self.recommend),
            promoters=sum(1 for r in self.recommend if r >= promoter_threshold),
            detractors=sum(1 for r in self.recommend if r <= detractor_max),
            csat_answers=len(sat), csat_mean=sum(sat) / len(sat) if sat else None,
            csat_satisfied=sum(1 for s in sat if s >= 4),
            complaints=self.complaints, complaints_open=self.complaints_open)


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q)
    return ordered[int(rank) - 1]


def _score(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def department_stats(conn: Connection, since: datetime, until: datetime, now: datetime, *,
                     promoter_threshold: int = 9, detractor_max: int = 6) -> StatsReport:
    """The figures for tickets opened, surveys answered and complaints filed in [since, until)."""
    accs: dict[str, _Acc] = {ALL: _Acc()}

    def acc(department: str) -> list[_Acc]:
        return [accs.setdefault(department, _Acc()), accs[ALL]]

    tickets = conn.execute(sa.select(
        TICKET.c.department, TICKET.c.opened_at, TICKET.c.first_response_at, TICKET.c.first_response_due).where(
        TICKET.c.opened_at >= since, TICKET.c.opened_at < until)).all()
    for row in tickets:
        for a in acc(row.department):
            a.tickets += 1
            if row.first_response_at is not None:
                a.waits.append((row.first_response_at - row.opened_at).total_seconds())
            if row.first_response_due is not None:
                if row.first_response_at is not None:
                    a.sla_due += 1
                    a.sla_met += row.first_response_at <= row.first_response_due
                elif row.first_response_due <= now:
                    a.sla_due += 1

    # survey answers belong to the department of the ticket they rate
    surveys = conn.execute(sa.select(EVENT.c.data).where(
        EVENT.c.kind == "survey", EVENT.c.at >= since, EVENT.c.at < until)).scalars().all()
    answers: list[tuple[str, dict[str, Any]]] = []
    for raw in surveys:
        data = json.loads(raw or "{}")
        if data.get("survey") == "consultation" and isinstance(data.get("answers"), dict):
            answers.append((str(data.get("ticket_id") or ""), data["answers"]))
    ticket_ids = sorted({t for t, _ in answers if t})
    department_of: dict[str, str] = {}
    for chunk in range(0, len(ticket_ids), 500):
        rows = conn.execute(sa.select(TICKET.c.id, TICKET.c.department).where(
            TICKET.c.id.in_(ticket_ids[chunk:chunk + 500]))).all()
        department_of.update((r.id, r.department) for r in rows)
    for ticket_id, given in answers:
        recommend = _score(given.get("recommend"), 0, 10)
        satisfaction = _score(given.get("satisfaction"), 1, 5)
        for a in acc(department_of.get(ticket_id, "")):
            if recommend is not None:
                a.recommend.append(recommend)
            if satisfaction is not None:
                a.satisfaction.append(satisfaction)

    complaints = conn.execute(sa.select(COMPLAINTS.c.department, COMPLAINTS.c.status, sa.func.count()).where(
        COMPLAINTS.c.created_at >= since, COMPLAINTS.c.created_at < until).group_by(
        COMPLAINTS.c.department, COMPLAINTS.c.status)).all()
    for department, status, count in complaints:
        for a in acc(department):
            a.complaints += count
            if status == "open":
                a.complaints_open += count

    overall = accs.pop(ALL).done(ALL, promoter_threshold, detractor_max)
    return StatsReport(since, until, promoter_threshold, detractor_max,
                       [accs[d].done(d, promoter_threshold, detractor_max) for d in sorted(accs)], overall)


async def stats_for(store: Store, satisfaction: Satisfaction, since: datetime, until: datetime,
                    now: datetime) -> StatsReport:
    """`department_stats` on a reader thread, with the thresholds of content/handoff.yml."""
    return await store.read(lambda conn: department_stats(
        conn, since, until, now, promoter_threshold=satisfaction.promoter_threshold,
        detractor_max=satisfaction.detractor_max))
