"""The care funnel and the daily trends, from known rows at pinned times (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.handoff.funnel import STEPS, care_report, funnel_csv, trends_csv
from bot.store.store import CONV, EVENT, INBOX, TICKET, Store
from tests.conftest import T0

SH = ZoneInfo("Asia/Shanghai")
H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)


def _seed(conn) -> None:  # type: ignore[no-untyped-def]
    def conv(cid: str, channel: str, at) -> None:  # type: ignore[no-untyped-def]
        conn.execute(CONV.insert().values(id=cid, channel=channel, chat_id=cid, state="{}", created_at=at,
                                          updated_at=at))

    def record(cid: str, kind: str, at, **data) -> None:  # type: ignore[no-untyped-def]
        conn.execute(EVENT.insert().values(conversation_id=cid, kind=kind, data=json.dumps(data), at=at))

    def ticket(tid: str, cid: str, dept: str, opened, *, reason: str = "patient_request", first=None, due=None,
               assigned=None, closed=None, acked=None) -> None:  # type: ignore[no-untyped-def]
        conn.execute(TICKET.insert().values(
            id=tid, conversation_id=cid, department=dept, reason=reason, opened_at=opened,
            first_response_at=first, first_response_due=due, assigned_at=assigned,
            assignee="d_x" if assigned else "", status="resolved" if closed else ("assigned" if assigned else "pending"),
            closed_at=closed, acknowledged_at=acked, priority="urgent" if reason == "red_flag" else "normal"))

    def wrote(cid: str, at, n: list[int] = [0]) -> None:  # type: ignore[no-untyped-def]
        n[0] += 1
        conn.execute(INBOX.insert().values(channel="webchat", message_id=f"m{n[0]}", conversation_id=cid,
                                           kind="text", received_at=at, processed_at=at))

    # c1: the whole way, and back three days after the close
    conv("c1", "webchat", T0)
    record("c1", "intake_completed", T0 + 30 * M, department="dermatology")
    record("c1", "consent", T0 + 20 * M, version="v1")
    ticket("t1", "c1", "dermatology", T0 + H, first=T0 + H + 10 * M, due=T0 + H + 15 * M, assigned=T0 + H + 5 * M,
           closed=T0 + D)
    record("c1", "survey", T0 + D + H, survey="consultation", ticket_id="t1", answers={"recommend": 10})
    wrote("c1", T0 + D + 2 * M)  # the survey answer: not "came back"
    wrote("c1", T0 + 3 * D)
    # c2: closed and surveyed; writes again within the hour only
    conv("c2", "webchat", T0 + M)
    record("c2", "consent", T0 + 5 * M)
    record("c2", "intake_completed", T0 + 10 * M, department="dermatology")
    ticket("t2", "c2", "dermatology", T0 + 2 * H, first=T0 + 2 * H + 30 * M, due=T0 + 2 * H + 15 * M,
           assigned=T0 + 2 * H + 20 * M, closed=T0 + D + H)
    record("c2", "survey", T0 + D + 2 * H, survey="consultation", ticket_id="t2", answers={"recommend": 5})
    wrote("c2", T0 + D + 2 * H)
    # c3: handed off, never taken
    conv("c3", "telegram", T0 + 2 * M)
    record("c3", "intake_completed", T0 + 3 * M, department="gynaecology")
    record("c3", "consent", T0 + 4 * M)
    ticket("t3", "c3", "gynaecology", T0 + D, due=T0 + D + 15 * M)
    # c4: asked for a person at once: consent and a ticket, no intake
    conv("c4", "telegram", T0 + 3 * M)
    record("c4", "consent", T0 + 4 * M)
    ticket("t4", "c4", "dermatology", T0 + D + H, first=T0 + D + H + 5 * M, due=T0 + D + H + 15 * M,
           assigned=T0 + D + H + M)
    # c5: intake only; c6: said hello
    conv("c5", "webchat", T0 + 4 * M)
    record("c5", "intake_completed", T0 + 5 * M, department="internal_medicine")
    conv("c6", "webchat", T0 + 5 * M)
    # c7: an emergency, acknowledged after 90 s: in the trends, not in the funnel's hand-off
    conv("c7", "webchat", T0 + 2 * D)
    ticket("t7", "c7", "emergency", T0 + 2 * D, reason="red_flag", acked=T0 + 2 * D + timedelta(seconds=90),
           assigned=T0 + 2 * D + timedelta(seconds=90))
    # c8: first wrote before the window
    conv("c8", "webchat", T0 - D)
    record("c8", "intake_completed", T0 - D)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    s = Store(url)
    yield s
    s.close()


async def test_funnel_conversion_per_department_and_channel_and_daily_trends(store: Store) -> None:
    await store.write(_seed)
    report = await store.read(lambda c: care_report(c, T0, T0 + 7 * D, T0 + 7 * D, SH))
    assert report.overall.funnel == (7, 4, 3, 3, 2, 2, 2, 1)
    assert report.overall.reached == (7, 4, 4, 4, 3, 2, 2, 1)
    assert [report.overall.conversion(i) for i in range(len(STEPS))] == \
        [None, 4 / 7, 3 / 4, 1.0, 2 / 3, 1.0, 1.0, 0.5]
    departments = {f.group: f.funnel for f in report.departments}
    assert departments == {"": (2, 0, 0, 0, 0, 0, 0, 0), "dermatology": (3, 2, 2, 2, 2, 2, 2, 1),
                           "gynaecology": (1, 1, 1, 1, 0, 0, 0, 0), "internal_medicine": (1, 1, 0, 0, 0, 0, 0, 0)}
    assert {f.group: f.reached for f in report.departments}["dermatology"] == (3, 2, 3, 3, 3, 2, 2, 1)
    assert {f.group: f.funnel for f in report.channels} == {"telegram": (2, 1, 1, 1, 0, 0, 0, 0),
                                                            "webchat": (5, 3, 2, 2, 2, 2, 2, 1)}
    days = {d.day.isoformat(): d for d in report.days}
    assert sorted(days) == [f"2026-03-{n:02d}" for n in range(2, 10)]
    first, second, third = days["2026-03-02"], days["2026-03-03"], days["2026-03-04"]
    assert (first.tickets, first.first_response_median_s, first.sla_due, first.sla_met) == (2, 1200.0, 2, 1)
    assert (second.tickets, second.first_response_median_s, second.sla_attainment) == (2, 300.0, 0.5)
    assert (second.surveys, second.promoters, second.detractors, second.nps) == (2, 1, 1, 0.0)
    assert (third.tickets, third.emergencies, third.ack_median_s, third.sla_attainment) == (1, 1, 90.0, None)
    assert days["2026-03-05"].tickets == 0 and days["2026-03-05"].nps is None

    rows = list(csv.DictReader(io.StringIO(funnel_csv(report))))
    derm = [r for r in rows if r["group_kind"] == "department" and r["group"] == "dermatology"]
    assert [(r["step"], r["funnel"], r["conversion"]) for r in derm][-2:] == \
        [("surveyed", "2", "1.0000"), ("came_back", "1", "0.5000")]
    trend = list(csv.DictReader(io.StringIO(trends_csv(report))))
    assert trend[0] == {"day": "2026-03-02", "tickets": "2", "first_response_median_s": "1200.0", "sla_due": "2",
                        "sla_met": "1", "sla_attainment": "0.5000", "surveys": "0", "nps": "", "emergencies": "0",
                        "ack_median_s": ""}


# -- in the console -----------------------------------------------------------------------------------

from tests.test_console import Browser, Setup, derm, setup  # noqa: E402,F401 - fixtures


def test_the_statistics_page_shows_the_funnel_trends_and_exports_csv(derm: Setup) -> None:
    derm.run(derm.bot.store.write, _seed)
    derm.clock.set(T0 + 6 * D + 3 * H)  # Sunday 2026-03-08 20:00 in Shanghai: the 7 days from 03-02
    operator = Browser(derm)
    operator.login("admin")
    page = operator.get("/console/stats?days=7")
    assert page.status_code == 200
    html = page.text
    derm_row = html[html.index('data-funnel="department"'):]
    derm_row = derm_row[derm_row.index('<tr data-group="dermatology"'):]
    derm_row = derm_row[:derm_row.index("</tr>")]
    assert '<td data-label="Taken" class="cb-num" data-step="taken">2 <small>(3)</small><br><small>100%</small>' \
        in derm_row
    assert 'data-step="came_back">1<br><small>50%</small>' in derm_row
    assert "No department yet" in html and 'data-funnel="channel"' in html and '<tr data-group="telegram"' in html
    assert html.count('class="cb-chart cb-line-chart"') == 6
    assert "03-02: 20.0 min" in html  # the first day's median first response, on its dot
    assert "03-04: 1.5 min" in html  # the emergency acknowledged after 90 s
    export = operator.get("/console/stats/export.csv?what=funnel&days=7")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="carebot-funnel-20260308-7d.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [r["funnel"] for r in rows if r["group_kind"] == "all"] == ["7", "4", "3", "3", "2", "2", "2", "1"]
    trends = operator.get("/console/stats/export.csv?what=trends&days=7").content.decode("utf-8-sig")
    assert trends.splitlines()[1].startswith("2026-03-02,2,1200.0,2,1,0.5000")
    assert Browser(derm).get("/console/stats/export.csv").status_code in (302, 303)  # signed in only
