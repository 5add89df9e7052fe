"""The care team's adherence view (adapters/console/adherence.py): per plan and patient as JSON and
as a page with SVG charts, for the staff who may see the patient, each view audited."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from bot.reminders.schedule import Schedule
from bot.reminders.service import DOSE_T
from tests.test_console import Browser, Setup, derm, setup  # noqa: F401  (fixtures)


def _doses(s: Setup) -> list:
    return s.run(s.bot.store.read, lambda c: c.execute(sa.select(DOSE_T).order_by(DOSE_T.c.scheduled_at)).all())


def _tick(s: Setup, delta: timedelta) -> None:
    s.clock.advance(delta)
    s.run(s.bot.timers.tick)
    s.run(s.bot.settle)


def test_the_care_team_sees_adherence_per_plan_as_json_and_a_chart(derm: Setup) -> None:  # noqa: F811
    derm.hand_off("p1")  # a ticket (dermatology, escalated to internal medicine by its SLA): Dr Gu may not look
    conv = "default:memory:p1"
    start = derm.clock.now().date()  # the clock reads 17:00 in Shanghai
    derm.run(derm.bot.reminders.create_plan, conv, Schedule(start=start, times=["18:00"]), medicine="isotretinoin")
    derm.run(derm.bot.reminders.create_plan, conv, Schedule(start=start, times=["18:30"]), medicine="doxycycline")
    _tick(derm, timedelta(hours=1, minutes=30))  # 18:30: both doses said
    first, second = _doses(derm)
    derm.patient("p1", f"choice:dose:taken:{first.id}")  # during the hand-off: recorded, not relayed
    derm.patient("p1", f"choice:dose:skip:{second.id}")
    _tick(derm, timedelta(days=1))  # the next evening's doses go unanswered: missed
    _tick(derm, timedelta(hours=1))
    states = sorted((d.plan_id, d.state) for d in _doses(derm))
    assert [s for _, s in states].count("missed") == 2 and [s for _, s in states].count("taken") == 1

    doctor = Browser(derm)
    doctor.login("admin")  # sees every department
    response = doctor.get(f"/console/adherence/{conv}?format=json&days=7")
    assert response.status_code == 200, response.text[:300]
    data = response.json()
    assert data["period_days"] == 7 and data["conversation_id"] == conv
    assert {k: data["total"][k] for k in ("taken", "skipped", "missed", "counted", "percent")} == {
        "taken": 1, "skipped": 1, "missed": 2, "counted": 4, "percent": 25}
    per_plan = {p["medicine"]: (p["taken"], p["skipped"], p["missed"], p["percent"]) for p in data["plans"].values()}
    assert per_plan == {"isotretinoin": (1, 0, 1, 50), "doxycycline": (0, 1, 1, 0)}

    page = doctor.get(f"/console/adherence/{conv}")
    assert page.status_code == 200
    assert page.text.count("<svg") == 2 and "isotretinoin: 50%" in page.text and "25%" in page.text
    assert doctor.get(f"/console/adherence/{conv}?days=0").status_code == 400
    assert doctor.get("/console/adherence/default:memory:nobody").status_code == 404

    gyn = Browser(derm)
    gyn.login("d_gu")
    assert gyn.get(f"/console/adherence/{conv}?format=json").status_code == 403
    views = [(e.action, e.subject) for e in derm.audit(actor="staff:admin") if e.action == "view_adherence"]
    assert views == [("view_adherence", conv)] * 2
    assert [(e.action, e.subject) for e in derm.audit(actor="staff:d_gu") if e.action == "denied"] == [("denied", conv)]
