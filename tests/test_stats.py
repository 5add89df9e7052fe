"""bot/handoff/stats.py against a real SQLite store: every figure checked against one worked by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.handoff.config import Satisfaction
from bot.handoff.models import Complaint
from bot.handoff.stats import ALL, department_stats, stats_for
from bot.store.store import EVENT, TICKET, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=10)
COMPLAINTS = Complaint.__table__


def ticket(tid: str, department: str, *, opened: float, answered: float | None, due: float | None) -> dict[str, Any]:
    """Times in minutes after T0."""
    return dict(id=tid, org="default", conversation_id=f"default:memory:{tid}", status="resolved",
                department=department, priority="normal", reason="patient_asked", summary="{}", assignee="d1",
                opened_at=T0 + timedelta(minutes=opened),
                first_response_at=None if answered is None else T0 + timedelta(minutes=answered),
                first_response_due=None if due is None else T0 + timedelta(minutes=due))


def survey(tid: str, recommend: Any, satisfaction: Any, *, at: float = 60) -> dict[str, Any]:
    data = {"survey": "consultation", "answers": {"recommend": recommend, "satisfaction": satisfaction,
                                                  "comment": None}, "ticket_id": tid}
    return dict(org="default", conversation_id=f"default:memory:{tid}", kind="survey",
                data=json.dumps(data), at=T0 + timedelta(minutes=at))


def complaint(department: str, status: str, *, at: float = 30) -> dict[str, Any]:
    return dict(org="default", conversation_id="default:memory:x", ticket_id="", department=department,
                category="slow", text="", status=status, handled_by="", created_at=T0 + timedelta(minutes=at))


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url)
    with s.engine.begin() as conn:
        conn.execute(TICKET.insert(), [
            # dermatology: waits 10, 30, 50, 200 min (median 40, p90 200); due at 120 min after opening
            ticket("d1", "dermatology", opened=0, answered=10, due=120),
            ticket("d2", "dermatology", opened=0, answered=30, due=120),
            ticket("d3", "dermatology", opened=0, answered=50, due=120),
            ticket("d4", "dermatology", opened=0, answered=200, due=120),   # late
            ticket("d5", "dermatology", opened=0, answered=None, due=120),  # unanswered, overdue at NOW
            ticket("d6", "dermatology", opened=590, answered=None, due=710),  # not due yet: not counted
            # internal medicine: waits 5 and 15 (median 10), both on time
            ticket("m1", "internal_medicine", opened=0, answered=5, due=30),
            ticket("m2", "internal_medicine", opened=0, answered=15, due=30),
            ticket("old", "internal_medicine", opened=-3000, answered=1, due=30),  # before the window
        ])
        conn.execute(EVENT.insert(), [
            survey("d1", 10, 5), survey("d2", 9, 4), survey("d3", 8, 4), survey("d4", 6, 2), survey("d5", "3", 1),
            survey("m1", 8, 5), survey("m2", 7, 3),
            survey("m2", None, None),  # skipped questions: not counted
            survey("m1", 10, 5, at=-3000),  # before the window
        ])
        conn.execute(COMPLAINTS.insert(), [complaint("dermatology", "open"), complaint("dermatology", "handled"),
                                           complaint("internal_medicine", "open"),
                                           complaint("dermatology", "open", at=-3000)])
    yield s
    s.close()


def report(store: Store, threshold: int = 9):  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return department_stats(conn, T0 - timedelta(hours=1), NOW, NOW, promoter_threshold=threshold,
                                detractor_max=6)


def test_first_response_median_and_p90_per_department(store: Store) -> None:
    r = report(store)
    derm, med = r.get("dermatology"), r.get("internal_medicine")
    assert (derm.tickets, derm.answered) == (6, 4)
    assert derm.first_response_median_s == 40 * 60  # (30 + 50) / 2
    assert derm.first_response_p90_s == 200 * 60
    assert (med.tickets, med.first_response_median_s) == (2, 10 * 60)
    assert r.overall.tickets == 8
    assert r.overall.first_response_median_s == 22.5 * 60  # 5 10 15 | 30 50 200 → (15 + 30) / 2


def test_sla_attainment_counts_late_and_overdue_but_not_what_is_not_due_yet(store: Store) -> None:
    r = report(store)
    derm = r.get("dermatology")
    assert (derm.sla_met, derm.sla_due) == (3, 5)  # d1-d3 on time; d4 late; d5 overdue; d6 not due
    assert derm.sla_attainment == pytest.approx(0.6)
    assert r.get("internal_medicine").sla_attainment == 1.0
    assert (r.overall.sla_met, r.overall.sla_due) == (5, 7)


def test_nps_with_threshold_9_and_8(store: Store) -> None:
    nine, eight = report(store, 9), report(store, 8)
    # dermatology recommends 10 9 8 6 3: promoters ≥9 → 2, ≥8 → 3; detractors ≤6 → 2
    assert nine.get("dermatology").nps == pytest.approx(100 * (2 - 2) / 5)
    assert eight.get("dermatology").nps == pytest.approx(100 * (3 - 2) / 5)
    # internal medicine 8 7: ≥9 → 0 promoters; ≥8 → 1
    assert nine.get("internal_medicine").nps == 0.0
    assert eight.get("internal_medicine").nps == 50.0
    assert nine.overall.surveys == 7
    assert nine.overall.nps == pytest.approx(100 * (2 - 2) / 7)
    assert eight.overall.nps == pytest.approx(100 * (4 - 2) / 7)


def test_csat_mean_and_share_of_4_and_5(store: Store) -> None:
    r = report(store)
    derm = r.get("dermatology")
    assert derm.csat_answers == 5
    assert derm.csat_mean == pytest.approx((5 + 4 + 4 + 2 + 1) / 5)
    assert derm.csat_share == pytest.approx(3 / 5)
    med = r.get("internal_medicine")
    assert (med.csat_mean, med.csat_share) == (4.0, 0.5)


def test_complaint_counts_per_department(store: Store) -> None:
    r = report(store)
    assert (r.get("dermatology").complaints, r.get("dermatology").complaints_open) == (2, 1)
    assert (r.get("internal_medicine").complaints, r.get("internal_medicine").complaints_open) == (1, 1)
    assert r.overall.complaints == 3
    assert [d.department for d in r.departments] == ["dermatology", "internal_medicine"]
    assert r.get(ALL) is r.overall


def test_an_empty_window_has_no_figures(store: Store) -> None:
    with store.engine.connect() as conn:
        r = department_stats(conn, T0 + timedelta(days=5), T0 + timedelta(days=6), NOW)
    assert r.departments == [] and r.overall.tickets == 0
    assert r.overall.nps is None and r.overall.csat_mean is None and r.overall.sla_attainment is None


async def test_stats_for_reads_the_thresholds_from_the_settings(store: Store) -> None:
    r = await stats_for(store, Satisfaction(promoter_threshold=8), T0 - timedelta(hours=1), NOW, NOW)
    assert r.promoter_threshold == 8
    assert r.get("internal_medicine").nps == 50.0
