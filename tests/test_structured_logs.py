"""`--log-format json`: one object per line, with the events an operator watches — requests by route
template, tickets, emergencies and pages, SLA breaches, reloads — and never what a patient or a
doctor wrote. A marker goes through an emergency, a hand-off, a doctor's reply and a note; no line
carries it, nor the token in a query string."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

from bot.logs import JsonFormatter, RedactingFilter
from tests.test_console import Browser, Setup, derm, setup  # noqa: F401 - fixtures

MARKER = "Marker7731zq"


def test_json_logs_carry_events_and_never_the_patients_words(derm: Setup) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    client_log = logging.getLogger("httpx")  # the test's own HTTP client, not the server
    client_log.setLevel(logging.WARNING)
    derm.staff("d_sun", "Dr Sun", departments=("emergency",))  # on call at T0 (Monday 17:00 in Shanghai)
    try:
        derm.patient("p9", f"胸口剧痛 出冷汗 喘不上气 {MARKER}")  # an emergency: urgent ticket, pages
        ticket = derm.hand_off("p1")
        derm.patient("p1", f"still itching {MARKER}")
        doctor = Browser(derm)
        doctor.login("d_li")
        assert doctor.get(f"/console/inbox?token=SeCrEt{MARKER}").status_code == 200
        assert doctor.get(f"/console/tickets/{ticket}").status_code == 200
        assert doctor.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}").status_code == 303
        assert doctor.post(f"/console/tickets/{ticket}/reply", {"text": f"Use the cream {MARKER}"},
                           csrf_from=f"/console/tickets/{ticket}").status_code == 303
        assert doctor.post(f"/console/tickets/{ticket}/note", {"text": f"note {MARKER}"},
                           csrf_from=f"/console/tickets/{ticket}").status_code == 303
        later = derm.hand_off("p2")  # nobody takes it: its first-response clock runs out
        derm.clock.advance(timedelta(hours=6))
        derm.run(derm.bot.timers.tick)
        derm.run(derm.bot.settle)
        derm.run(derm.bot.reloads.here, "test")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        client_log.setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert MARKER not in text and "SeCrEt" not in text and "胸口" not in text and "itching" not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    events = [e for e in lines if "event" in e]
    assert all({"ts", "level", "logger"} <= e.keys() for e in lines)

    def kinds(name: str) -> list[tuple[str, str]]:
        return [(e.get("ticket", ""), e.get("kind", "")) for e in events if e["event"] == name]

    requests = [e for e in events if e["event"] == "request"]
    assert any(r["route"] == "/console/tickets/{ticket_id}" and r["status"] == 200 for r in requests)
    assert any(r["route"] == "/console/inbox" and r["method"] == "GET" for r in requests)
    assert any(r["route"] == "/console/tickets/{ticket_id}/{action}" and r["status"] == 303 for r in requests)
    assert all(isinstance(r["ms"], float) for r in requests)
    emergencies = [e for e in events if e["event"] == "emergency"]
    assert emergencies and emergencies[0]["reason"] == "red_flag" and emergencies[0]["level"] == "warning"
    emergency_ticket = emergencies[0]["ticket"]
    assert (emergency_ticket, "paged") in kinds("page")
    assert (ticket, "opened") in kinds("ticket") and (ticket, "taken") in kinds("ticket")
    assert (ticket, "replied") in kinds("ticket") and (ticket, "noted") in kinds("ticket")
    assert (later, "breached") in kinds("sla_breach")
    assert [e["ok"] for e in events if e["event"] == "reload"] == [True]
