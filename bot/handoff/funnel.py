"""The care funnel and the daily trends an operator steers by, from what the store already records.

The funnel follows the patients who first wrote in a window (their conversation was created then):

    first contact     the conversation's row (`conversation.created_at`; channel from it)
    intake completed  an `intake_completed` record (flows/intake.yml, `record:` step)
    consent           a `consent` record (flows/consent.yml)
    handed off        a ticket opened for the conversation, emergencies aside (`reason: red_flag`:
                      they skip intake and consent by design, and have a trend of their own)
    taken             that ticket got an assignee (`assigned_at`)
    closed            that ticket was resolved (`status = resolved`)
    surveyed          a `survey` record after the ticket opened
    came back         the patient wrote again (an `inbox` row) more than a day and at most 30 days
                      after the close — the survey answers of the closing minutes do not count

A conversation counts at a step when it reached that step *and every step before it* (`funnel`),
so each conversion — this step ÷ the step before — is at most 100 %; `reached` counts each step on
its own, whatever the path (a patient who asked for a person at once reaches "handed off" without
"intake completed"). Per department: the department of the conversation's first non-emergency
ticket, else of its `intake_completed` record, else none (""). Per channel: the conversation's.

Trends are per day in the clock's time zone: tickets opened, the median first response of those
tickets, their SLA attainment (stats.py's rule), NPS of the consultation surveys answered that day,
emergencies opened and their median time to acknowledgement.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff.stats import ALL, Rates, _score
from bot.store.store import CONV, EVENT, INBOX, TICKET

STEPS = ("first_contact", "intake_completed", "consent", "handed_off", "taken", "closed", "surveyed", "came_back")
CAME_BACK_AFTER = timedelta(days=1)
CAME_BACK_WITHIN = timedelta(days=30)


@dataclass(frozen=True)
class Funnel:
    """One group's patients at each step: `funnel` (every step before too) and `reached` (alone)."""

    group: str  # a department id, a channel, ALL, or "" (no department yet)
    funnel: tuple[int, ...]
    reached: tuple[int, ...]

    def conversion(self, step: int) -> float | None:
        """Share (0–1) of the previous step's patients who reached this one; None for the first step
        or when nobody reached the previous one."""
        if step == 0 or not self.funnel[step - 1]:
            return None
        return self.funnel[step] / self.funnel[step - 1]


@dataclass(frozen=True)
class Day(Rates):
    day: date
    tickets: int
    first_response_median_s: float | None
    sla_due: int
    sla_met: int
    surveys: int
    promoters: int
    detractors: int
    emergencies: int
    ack_median_s: float | None  # emergencies opened that day: opened → acknowledged


@dataclass(frozen=True)
class CareReport:
    since: datetime
    until: datetime
    overall: Funnel
    departments: list[Funnel]
    channels: list[Funnel]
    days: list[Day]


@dataclass
class _Patient:
    channel: str
    created: datetime
    department: str = ""
    steps: list[bool] = field(default_factory=lambda: [True] + [False] * (len(STEPS) - 1))


def care_report(conn: Connection, since: datetime, until: datetime, now: datetime, tz: tzinfo, *,
                promoter_threshold: int = 9, detractor_max: int = 6) -> CareReport:
    """The funnel of patients who first wrote in [since, until), and the trends of each day in it."""
    patients = {r.id: _Patient(r.channel, r.created_at) for r in conn.execute(
        sa.select(CONV.c.id, CONV.c.channel, CONV.c.created_at).where(
            CONV.c.created_at >= since, CONV.c.created_at < until, CONV.c.channel.notin_(("console", "pager"))))}
    ids = sorted(patients)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        _follow(conn, chunk, patients, now)
    groups: dict[tuple[str, str], list[_Patient]] = {}
    for p in patients.values():
        groups.setdefault(("department", p.department), []).append(p)
        groups.setdefault(("channel", p.channel), []).append(p)
    return CareReport(
        since, until, _funnel(ALL, list(patients.values())),
        [_funnel(g, ps) for (kind, g), ps in sorted(groups.items()) if kind == "department"],
        [_funnel(g, ps) for (kind, g), ps in sorted(groups.items()) if kind == "channel"],
        _days(conn, since, until, now, tz, promoter_threshold, detractor_max))


def _follow(conn: Connection, ids: list[str], patients: dict[str, _Patient], now: datetime) -> None:
    """Mark the steps each of these conversations reached."""
    intake_department: dict[str, str] = {}
    surveyed_at: dict[str, list[datetime]] = {}
    for r in conn.execute(sa.select(EVENT.c.conversation_id, EVENT.c.kind, EVENT.c.data, EVENT.c.at).where(
            EVENT.c.conversation_id.in_(ids), EVENT.c.kind.in_(("intake_completed", "consent", "survey")))):
        p = patients[r.conversation_id]
        if r.kind == "intake_completed":
            p.steps[1] = True
            department = json.loads(r.data or "{}").get("department")
            intake_department.setdefault(r.conversation_id, str(department or ""))
        elif r.kind == "consent":
            p.steps[2] = True
        else:
            surveyed_at.setdefault(r.conversation_id, []).append(r.at)
    first_ticket: dict[str, Any] = {}
    for t in conn.execute(sa.select(TICKET.c.conversation_id, TICKET.c.department, TICKET.c.opened_at,
                                    TICKET.c.assigned_at, TICKET.c.status, TICKET.c.closed_at).where(
            TICKET.c.conversation_id.in_(ids), TICKET.c.reason != "red_flag").order_by(TICKET.c.opened_at)):
        first_ticket.setdefault(t.conversation_id, t)
    came_back: set[str] = set()
    closes = {c: t.closed_at for c, t in first_ticket.items() if t.status == "resolved" and t.closed_at is not None}
    if closes:
        for r in conn.execute(sa.select(INBOX.c.conversation_id, INBOX.c.received_at).where(
                INBOX.c.conversation_id.in_(sorted(closes)), INBOX.c.kind.in_(("text", "choice", "media", "command")))):
            gap = r.received_at - closes[r.conversation_id]
            if CAME_BACK_AFTER < gap <= CAME_BACK_WITHIN:
                came_back.add(r.conversation_id)
    for conv in ids:
        p = patients[conv]
        t = first_ticket.get(conv)
        p.department = t.department if t is not None else intake_department.get(conv, "")
        if t is None:
            continue
        p.steps[3] = True
        p.steps[4] = t.assigned_at is not None
        p.steps[5] = t.status == "resolved"
        p.steps[6] = any(at >= t.opened_at for at in surveyed_at.get(conv, []))
        p.steps[7] = conv in came_back


def _funnel(group: str, patients: list[_Patient]) -> Funnel:
    reached = [sum(p.steps[i] for p in patients) for i in range(len(STEPS))]
    funnel = [sum(all(p.steps[:i + 1]) for p in patients) for i in range(len(STEPS))]
    return Funnel(group, tuple(funnel), tuple(reached))


def _days(conn: Connection, since: datetime, until: datetime, now: datetime, tz: tzinfo,
          promoter_threshold: int, detractor_max: int) -> list[Day]:
    first, last = since.astimezone(tz).date(), (until - timedelta(microseconds=1)).astimezone(tz).date()
    acc: dict[date, dict[str, Any]] = {}
    day = first
    while day <= last:
        acc[day] = {"tickets": 0, "waits": [], "due": 0, "met": 0, "recommend": [], "emergencies": 0, "acks": []}
        day += timedelta(days=1)

    def bucket(at: datetime) -> dict[str, Any] | None:
        return acc.get(at.astimezone(tz).date())

    for t in conn.execute(sa.select(TICKET.c.reason, TICKET.c.opened_at, TICKET.c.first_response_at,
                                    TICKET.c.first_response_due, TICKET.c.acknowledged_at).where(
            TICKET.c.opened_at >= since, TICKET.c.opened_at < until)):
        b = bucket(t.opened_at)
        if b is None:
            continue
        b["tickets"] += 1
        if t.first_response_at is not None:
            b["waits"].append((t.first_response_at - t.opened_at).total_seconds())
        if t.first_response_due is not None and (t.first_response_at is not None or t.first_response_due <= now):
            b["due"] += 1
            b["met"] += t.first_response_at is not None and t.first_response_at <= t.first_response_due
        if t.reason == "red_flag":
            b["emergencies"] += 1
            if t.acknowledged_at is not None:
                b["acks"].append((t.acknowledged_at - t.opened_at).total_seconds())
    for r in conn.execute(sa.select(EVENT.c.data, EVENT.c.at).where(
            EVENT.c.kind == "survey", EVENT.c.at >= since, EVENT.c.at < until)):
        data = json.loads(r.data or "{}")
        recommend = _score((data.get("answers") or {}).get("recommend"), 0, 10) \
            if data.get("survey") == "consultation" and isinstance(data.get("answers"), dict) else None
        b = bucket(r.at)
        if recommend is not None and b is not None:
            b["recommend"].append(recommend)
    return [Day(d, b["tickets"], statistics.median(b["waits"]) if b["waits"] else None, b["due"], b["met"],
                len(b["recommend"]), sum(1 for r in b["recommend"] if r >= promoter_threshold),
                sum(1 for r in b["recommend"] if r <= detractor_max), b["emergencies"],
                statistics.median(b["acks"]) if b["acks"] else None) for d, b in sorted(acc.items())]


def funnel_csv(report: CareReport) -> str:
    """One row per group and step: patients in the funnel, reached on any path, conversion."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group_kind", "group", "step", "funnel", "reached", "conversion"])
    rows = [("all", report.overall)] + [("department", f) for f in report.departments] + \
        [("channel", f) for f in report.channels]
    for kind, f in rows:
        for i, step in enumerate(STEPS):
            conv = f.conversion(i)
            writer.writerow([kind, f.group, step, f.funnel[i], f.reached[i], "" if conv is None else f"{conv:.4f}"])
    return out.getvalue()


def trends_csv(report: CareReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "tickets", "first_response_median_s", "sla_due", "sla_met", "sla_attainment",
                     "surveys", "nps", "emergencies", "ack_median_s"])

    def num(x: float | None, digits: int = 1) -> str:
        return "" if x is None else f"{x:.{digits}f}"

    for d in report.days:
        writer.writerow([d.day.isoformat(), d.tickets, num(d.first_response_median_s), d.sla_due, d.sla_met,
                         num(d.sla_attainment, 4), d.surveys, num(d.nps), d.emergencies, num(d.ack_median_s)])
    return out.getvalue()
