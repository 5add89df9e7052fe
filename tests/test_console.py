"""The staff console over HTTP: the real app (create_app), the shipped flows, a real SQLite store.

Starlette's TestClient runs the app — and the bot — on an event loop of its own; everything the
test does to the bot directly (a patient's messages, staff accounts, rows for the statistics) is run
on that same loop through the client's portal.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from adapters.console import ConsoleAdapter
from bot.app import CareBot
from bot.clock import ManualClock
from bot.handoff.models import Complaint
from bot.server import create_app
from bot.store.store import AUDIT, EVENT, TICKET
from bot.testing.memory import MemoryAdapter
from bot.types import Address, Outbound

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Setup:
    bot: CareBot
    memory: MemoryAdapter
    clock: ManualClock
    client: TestClient
    console: ConsoleAdapter

    def run(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run a coroutine function on the app's event loop."""
        return self.client.portal.call(functools.partial(fn, *args, **kw))  # type: ignore[union-attr]

    def staff(self, staff_id: str, name: str, role: str = "doctor", title: str = "", departments: tuple[str, ...] = ()) -> None:
        self.run(self.bot.handoff.add_staff, staff_id, name, role, PASSWORD, title=title, departments=list(departments))

    def patient(self, chat: str, *steps: str) -> None:
        """Steps are typed text, or `choice:<value>` for a button."""
        for step in steps:
            if step.startswith("choice:"):
                inbound = self.memory.inbound(chat, step[7:], kind="choice", payload={"value": step[7:]},
                                              now=self.clock.now())
            else:
                inbound = self.memory.inbound(chat, step, now=self.clock.now())
            self.run(self.bot.runtime.handle, inbound)
            self.run(self.bot.settle)

    def hand_off(self, chat: str, department: str = "dermatology") -> str:
        """A patient asks for a person, consents and picks a department; returns the ticket id."""
        self.patient(chat, "人工", "是", "是", "否", f"choice:{department}")
        return self.ticket_of(chat).id

    def ticket_of(self, chat: str) -> Any:
        return self.run(self.bot.store.read, lambda c: c.execute(sa.select(TICKET).where(
            TICKET.c.conversation_id == f"default:memory:{chat}").order_by(TICKET.c.opened_at.desc())).first())

    def audit(self, **where: str) -> list[Any]:
        def q(c: Any) -> list[Any]:
            query = sa.select(AUDIT)
            for k, v in where.items():
                query = query.where(AUDIT.c[k] == v)
            return list(c.execute(query.order_by(AUDIT.c.id)).all())
        return self.run(self.bot.store.read, q)


class Browser:
    """One staff member's cookies, over the shared client (one event loop, one bot)."""

    def __init__(self, setup: Setup, locale: str = "en"):
        self.setup = setup
        self.jar = httpx.Cookies()
        self.headers = {"Accept-Language": locale}

    def request(self, method: str, path: str, *, follow: bool = False, **kw: Any) -> httpx.Response:
        client = self.setup.client
        client.cookies = self.jar
        try:
            return client.request(method, path, follow_redirects=follow, headers={**self.headers, **kw.pop("headers", {})},
                                  **kw)
        finally:
            self.jar = httpx.Cookies(client.cookies)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def csrf(self, path: str = "/console/login") -> str:
        match = CSRF.search(self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf_from: str = "/console/inbox",
             **kw: Any) -> httpx.Response:
        return self.request("POST", path, data={"csrf": self.csrf(csrf_from), **(data or {})}, **kw)

    def login(self, staff_id: str, password: str = PASSWORD) -> httpx.Response:
        return self.request("POST", "/console/login", data={"csrf": self.csrf(), "staff_id": staff_id,
                                                              "password": password, "next": "/console/inbox"})


def _setup(make_bot: Callable[..., Any], url: str | None = None) -> Iterator[Setup]:
    bot, memory, clock = make_bot(shipped=True, secret="console-test-secret", url=url)
    console = ConsoleAdapter(bot.settings)
    bot.adapters.add(console)
    with TestClient(create_app(bot)) as client:
        yield Setup(bot, memory, clock, client, console)


@pytest.fixture
def setup(make_bot: Callable[..., Any]) -> Iterator[Setup]:
    yield from _setup(make_bot)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def derm_each_db(request: pytest.FixtureRequest, make_bot: Callable[..., Any]) -> Iterator[Setup]:
    """`derm` on SQLite, then on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    for s in _setup(make_bot, url):
        yield _derm(s)


@pytest.fixture
def derm(setup: Setup) -> Setup:
    return _derm(setup)


def _derm(setup: Setup) -> Setup:
    setup.staff("d_li", "Dr Li", title="Attending", departments=("dermatology",))
    setup.staff("d_ma", "Dr Ma", title="Chief physician", departments=("dermatology",))
    setup.staff("d_gu", "Dr Gu", title="Chief physician", departments=("gynaecology",))
    setup.staff("admin", "Admin", role="admin")
    return setup


def flash(response: httpx.Response) -> str:
    match = re.search(r'<p class="cb-flash[^"]*" role="status">(.*?)</p>', response.text, re.S)
    return match.group(1).strip() if match else ""


# -- signing in ---------------------------------------------------------------------------------------

def test_login_succeeds_with_the_password_and_sets_a_safe_cookie(derm: Setup) -> None:
    doctor = Browser(derm)
    assert doctor.get("/console/inbox").headers["location"].startswith("/console/login?next=")
    response = doctor.login("d_li")
    assert response.status_code == 303 and response.headers["location"] == "/console/inbox"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("carebot_console="))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "path=/console" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http here; https requests get Secure
    inbox = doctor.get("/console/inbox")
    assert inbox.status_code == 200 and "Dr Li Attending" in inbox.text
    assert inbox.headers["content-security-policy"].startswith("default-src 'self'")
    assert [e.action for e in derm.audit(subject="d_li")][-1] == "login"


def test_a_wrong_password_is_refused_and_attempts_are_rate_limited(derm: Setup) -> None:
    doctor = Browser(derm)
    for _ in range(5):
        response = doctor.login("d_li", "wrong password")
        assert response.status_code == 401 and "Wrong staff ID or password" in response.text
    limited = doctor.login("d_li")  # the right password, but too many tries
    assert limited.status_code == 429 and "Too many attempts" in limited.text
    assert int(limited.headers["retry-after"]) > 0
    assert doctor.get("/console/inbox").status_code == 303  # still not signed in
    actions = [e.action for e in derm.audit(subject="d_li")]
    assert actions.count("login_failed") == 5 and actions[-1] == "login_limited"
    assert Browser(derm).login("d_ma").status_code == 303  # another account is not locked out


def test_logout_ends_the_session_even_for_a_copied_cookie(derm: Setup) -> None:
    doctor = Browser(derm)
    doctor.login("d_li")
    stolen = httpx.Cookies(doctor.jar)
    assert doctor.post("/console/logout").status_code == 303
    thief = Browser(derm)
    thief.jar = stolen
    assert thief.get("/console/inbox").status_code == 303


def test_a_session_ends_after_12_hours_idle(derm: Setup) -> None:
    doctor = Browser(derm)
    doctor.login("d_li")
    derm.clock.advance(timedelta(hours=11))
    assert doctor.get("/console/inbox").status_code == 200  # …and that request renewed it
    derm.clock.advance(timedelta(hours=11))
    assert doctor.get("/console/inbox").status_code == 200
    derm.clock.advance(timedelta(hours=12, minutes=1))
    assert doctor.get("/console/inbox").status_code == 303


def test_csrf_token_is_required_on_every_post(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    doctor = Browser(derm)
    assert doctor.request("POST", "/console/login", data={"staff_id": "d_li", "password": PASSWORD}).status_code == 403
    doctor.login("d_li")
    no_token = doctor.request("POST", f"/console/tickets/{ticket}/take", data={})
    assert no_token.status_code == 403 and "expired" in no_token.text
    other = Browser(derm)
    other.login("d_ma")
    foreign = doctor.request("POST", f"/console/tickets/{ticket}/take", data={"csrf": other.csrf("/console/inbox")})
    assert foreign.status_code == 403
    cross_site = doctor.post(f"/console/tickets/{ticket}/take", headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 403
    assert derm.ticket_of("p1").assignee == ""


# -- who sees what ------------------------------------------------------------------------------------

def test_a_doctor_of_another_department_gets_403_and_the_denial_is_audited(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    gyn = Browser(derm)
    gyn.login("d_gu")
    page = gyn.get(f"/console/tickets/{ticket}")
    assert page.status_code == 403 and "another department" in page.text
    assert "人工" not in page.text
    assert gyn.post(f"/console/tickets/{ticket}/take").status_code == 403
    assert gyn.get(f"/console/tickets/{ticket}/messages").status_code == 403
    assert gyn.get("/console/patients/default:memory:p1").status_code == 403
    assert ticket not in gyn.get("/console/inbox").text
    entries = [e for e in derm.audit(actor="staff:d_gu") if e.action != "login"]
    assert {e.action for e in entries} == {"denied"}  # nothing else was written for her
    assert [e.subject for e in entries][:3] == [ticket] * 3
    assert derm.ticket_of("p1").assignee == ""


def test_the_paged_on_call_doctor_reads_the_emergency_before_acknowledging_it(derm: Setup) -> None:
    """Nobody should have to accept an emergency blind: the on-call doctor (here internal medicine,
    on call Monday 17:00 Shanghai) opens the emergency ticket and sees the patient's own words."""
    derm.staff("d_sun", "Dr Sun", title="Attending", departments=("internal_medicine",))
    derm.patient("p9", "你好", "我爸胸口压着疼 一直出冷汗")
    ticket = derm.ticket_of("p9")
    assert ticket.reason == "red_flag"
    on_call = Browser(derm)
    on_call.login("d_sun")
    page = on_call.get(f"/console/tickets/{ticket.id}")
    assert page.status_code == 200 and "我爸胸口压着疼 一直出冷汗" in page.text and "120" in page.text
    # the inbox's alert already says what it is, in the patient's words
    assert re.search(r'<q class="cb-alert-words">[^<]*胸口压着疼', on_call.get("/console/inbox").text)
    gyn = Browser(derm)
    gyn.login("d_gu")  # neither paged nor on call: still refused
    assert gyn.get(f"/console/tickets/{ticket.id}").status_code == 403


def test_the_paged_doctor_reads_the_emergency_only_until_a_colleague_has_it(derm: Setup) -> None:
    """The read grant of being paged ends when the emergency is taken by someone whose department it is
    (found by the session 11 walkthrough: a doctor paged out of department kept reading the thread)."""
    derm.staff("d_sun", "Dr Sun", title="Attending", departments=("internal_medicine",))
    derm.patient("p9", "你好", "我爸胸口压着疼 一直出冷汗")
    ticket = derm.ticket_of("p9")
    owner = ticket.department
    assert owner != "internal_medicine"  # Dr Sun reads it only as the doctor on call
    derm.staff("d_er", "Dr Er", title="Attending", departments=(owner,))
    on_call, er = Browser(derm), Browser(derm)
    on_call.login("d_sun")
    er.login("d_er")
    assert on_call.get(f"/console/tickets/{ticket.id}").status_code == 200
    assert er.post(f"/console/tickets/{ticket.id}/take").status_code in (200, 303)
    assert derm.ticket_of("p9").assignee == "d_er"
    assert on_call.get(f"/console/tickets/{ticket.id}").status_code == 403


def test_every_view_of_patient_data_is_audited(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    doctor = Browser(derm)
    doctor.login("d_li")
    doctor.get("/console/inbox")  # the inbox shows no patient data: not audited
    for _ in range(2):
        assert doctor.get(f"/console/tickets/{ticket}").status_code == 200
    assert doctor.get(f"/console/tickets/{ticket}/messages").status_code == 200
    assert doctor.get("/console/patients/default:memory:p1").status_code == 200
    views = [(e.action, e.subject) for e in derm.audit(actor="staff:d_li") if e.action.startswith("view")]
    assert views == [("view_ticket", ticket)] * 3 + [("view_patient", "default:memory:p1")]


def test_the_audit_log_is_for_admins_only(derm: Setup) -> None:
    doctor, admin = Browser(derm), Browser(derm)
    doctor.login("d_li")
    admin.login("admin")
    assert doctor.get("/console/audit").status_code == 403
    page = admin.get("/console/audit?actor=staff:d_li")
    assert page.status_code == 200 and "login" in page.text


def test_customer_service_reads_tickets_and_complaints_but_cannot_act(derm: Setup) -> None:
    derm.staff("cs_wu", "Wu", role="customer_service")
    ticket = derm.hand_off("p1")
    complaint = derm.run(derm.bot.handoff.file_complaint, "default:memory:p1", "slow", "Nobody answered <b>me</b>")
    cs = Browser(derm)
    cs.login("cs_wu")
    page = cs.get(f"/console/tickets/{ticket}")
    assert page.status_code == 200 and "read-only" in page.text and f"/tickets/{ticket}/take" not in page.text
    assert cs.post(f"/console/tickets/{ticket}/take").status_code == 403
    assert cs.get("/console/reviews").status_code == 403
    complaints = cs.get("/console/complaints")
    assert "Nobody answered &lt;b&gt;me&lt;/b&gt;" in complaints.text
    assert cs.post(f"/console/complaints/{complaint}/handled", csrf_from="/console/complaints").status_code == 303
    assert "Nobody answered" in cs.get("/console/complaints?status=handled").text
    assert derm.ticket_of("p1").assignee == ""


# -- working a thread ---------------------------------------------------------------------------------

def test_after_a_reply_the_doctor_is_back_at_the_reply_box(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    li = Browser(derm)
    li.login("d_li")
    li.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    sent = li.post(f"/console/tickets/{ticket}/reply", {"text": "您好，我是李医生，请问红疹有多大？"},
                   csrf_from=f"/console/tickets/{ticket}")
    assert sent.status_code == 303 and sent.headers["location"] == f"/console/tickets/{ticket}#cb-actions"
    assert 'id="cb-actions"' in li.get(f"/console/tickets/{ticket}").text


def test_reply_reaches_the_patient_named_and_a_note_does_not(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    derm.patient("p1", "<script>alert(1)</script> 手背上起了红疹，很痒")
    doctor = Browser(derm)
    doctor.login("d_li")
    thread = doctor.get(f"/console/tickets/{ticket}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread.text and "<script>alert" not in thread.text
    assert "consent" in thread.text.lower() and "given" in thread.text  # consent status shown
    assert "dermatology" in thread.text  # the intake summary's slots

    doctor.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    before = len(derm.memory.texts("p1"))
    reply = doctor.post(f"/console/tickets/{ticket}/reply", {"text": "Hello, I'm Dr Li. Any oozing from the rash?"},
                        csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "Reply sent" in flash(reply)
    derm.run(derm.bot.settle)
    sent = derm.memory.by_chat["p1"][-1].outbound
    assert sent.text == "Hello, I'm Dr Li. Any oozing from the rash?"
    assert sent.sender_name == "Dr Li Attending" and sent.sender == "staff:d_li"

    after_reply = len(derm.memory.texts("p1"))
    assert after_reply == before + 1
    note = doctor.post(f"/console/tickets/{ticket}/note", {"text": "Probably contact dermatitis"},
                       csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "not sent to the patient" in flash(note)
    derm.run(derm.bot.settle)
    assert len(derm.memory.texts("p1")) == after_reply
    assert all("contact dermatitis" not in t for t in derm.memory.texts())
    page = doctor.get(f"/console/tickets/{ticket}").text
    assert re.search(r'cb-msg-note.*?Internal note · not sent to the patient.*?Probably contact dermatitis', page, re.S)

    canned = doctor.post(f"/console/tickets/{ticket}/reply", {"text": "", "canned": "photo"},
                         csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "Reply sent" in flash(canned)
    derm.run(derm.bot.settle)
    assert "光线充足" in derm.memory.by_chat["p1"][-1].outbound.text  # the patient's language, zh-CN


def test_an_offer_nobody_took_widens_to_the_backup_department(derm_each_db: Setup) -> None:
    """Grab: after offer_timeout (10 min for dermatology) the backup's doctors see the ticket and may
    take it; before, they may not."""
    derm = derm_each_db
    derm.staff("d_sun", "Dr Sun", title="Attending", departments=("internal_medicine",))
    ticket = derm.hand_off("p1")
    assert derm.ticket_of("p1").widened_to == ""
    sun = Browser(derm)
    sun.login("d_sun")
    assert ticket not in sun.get("/console/inbox").text
    assert sun.get(f"/console/tickets/{ticket}").status_code == 403
    derm.clock.advance(timedelta(minutes=10, seconds=1))
    derm.run(derm.bot.timers.tick)
    derm.run(derm.bot.settle)
    assert derm.ticket_of("p1").widened_to == "internal_medicine"
    assert ticket in sun.get("/console/inbox").text
    taken = sun.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "You have the ticket" in flash(taken) and derm.ticket_of("p1").assignee == "d_sun"


def test_take_by_two_doctors_the_second_is_told_who_has_it(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    li, ma = Browser(derm), Browser(derm, locale="zh-CN")
    li.login("d_li")
    ma.login("d_ma")
    ma_token = ma.csrf(f"/console/tickets/{ticket}")  # both have the page open
    first = li.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "You have the ticket" in flash(first)
    second = ma.request("POST", f"/console/tickets/{ticket}/take", data={"csrf": ma_token}, follow=True)
    assert flash(second) == "已被 Dr Li Attending 接诊。"
    assert 'class="cb-flash cb-flash-error"' in second.text
    assert derm.ticket_of("p1").assignee == "d_li"
    # the flash is shown once
    assert flash(ma.get(f"/console/tickets/{ticket}")) == ""


def test_a_handoff_error_is_shown_as_a_flash(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    li, ma = Browser(derm), Browser(derm)
    li.login("d_li")
    ma.login("d_ma")
    li.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    refused = ma.post(f"/console/tickets/{ticket}/reply", {"text": "Hello from Dr Ma"},
                      csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert flash(refused) == "another doctor has this ticket; ask for a transfer"


def test_close_resolves_the_ticket_and_the_patient_gets_the_survey(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    doctor = Browser(derm)
    doctor.login("d_li")
    doctor.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    closed = doctor.post(f"/console/tickets/{ticket}/close", csrf_from=f"/console/tickets/{ticket}", follow=True)
    assert "satisfaction survey" in flash(closed)
    derm.run(derm.bot.settle)
    assert derm.ticket_of("p1").status == "resolved"
    assert [s.outbound.key for s in derm.memory.by_chat["p1"]][-2:] == ["survey.intro", "survey.ask_recommend"]
    page = doctor.get(f"/console/tickets/{ticket}").text
    assert f"/tickets/{ticket}/reply" not in page  # nothing left to do on a closed ticket


def test_transfer_to_another_department_through_the_form(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    li, gu = Browser(derm), Browser(derm)
    li.login("d_li")
    gu.login("d_gu")
    li.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    li.post(f"/console/tickets/{ticket}/transfer", {"department": "gynaecology"}, csrf_from=f"/console/tickets/{ticket}")
    row = derm.ticket_of("p1")
    assert (row.department, row.status, row.assignee) == ("gynaecology", "transferred", "")
    assert gu.get(f"/console/tickets/{ticket}").status_code == 200
    assert ticket in gu.get("/console/inbox?department=gynaecology").text


def test_inbox_filters_and_languages(derm: Setup) -> None:
    derm_ticket = derm.hand_off("p1")
    gyn_ticket = derm.hand_off("p2", "gynaecology")
    admin = Browser(derm, locale="zh-CN")
    admin.login("admin")
    page = admin.get("/console/inbox")
    assert derm_ticket in page.text and gyn_ticket in page.text and "工单" in page.text
    only = admin.get("/console/inbox?department=gynaecology").text
    assert gyn_ticket in only and derm_ticket not in only
    assert derm_ticket not in admin.get("/console/inbox?priority=urgent").text
    assert derm_ticket in admin.get("/console/inbox?sla=ok").text
    derm.clock.advance(timedelta(hours=3))  # the 2 h first-response clock of a normal ticket ran out
    assert derm_ticket in admin.get("/console/inbox/rows?sla=breached").text
    english = admin.get("/console/lang/en?next=/console/inbox", follow=True)
    assert "Inbox" in english.text and "breached" in english.text


def test_a_flagged_reply_goes_to_the_review_queue_and_gets_a_verdict(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    derm.patient("p1", "我脸上长了很多痘痘，用了阿达帕林凝胶两周了，反而更红更干，还要不要继续用？需要加别的药吗？")
    doctor, admin = Browser(derm), Browser(derm)
    doctor.login("d_li")
    admin.login("admin")
    doctor.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    sent = doctor.post(f"/console/tickets/{ticket}/reply", {"text": "继续用。"}, csrf_from=f"/console/tickets/{ticket}",
                       follow=True)
    assert "Quality flags: too_short" in flash(sent)
    assert doctor.get("/console/reviews").status_code == 403
    queue = admin.get("/console/reviews").text
    review_id = re.search(r'action="/console/reviews/(\d+)"', queue).group(1)
    assert ticket in queue and "too_short" in queue
    saved = admin.post(f"/console/reviews/{review_id}", {"verdict": "needs_improvement", "note": "answer the question",
                                                          "refer": "1"}, csrf_from="/console/reviews", follow=True)
    assert flash(saved) == "Review saved."
    assert ticket in admin.get("/console/reviews?status=panel").text
    admin.post(f"/console/reviews/{review_id}", {"panel": "1", "verdict": "ok", "status": "panel"},
               csrf_from="/console/reviews?status=panel")
    assert ticket in admin.get("/console/reviews?status=closed").text


def test_the_patient_profile_shows_consent_tags_and_history(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    doctor = Browser(derm)
    doctor.login("d_li")
    page = doctor.get("/console/patients/default:memory:p1").text
    assert "given (version 2026-03)" in page
    assert f"/console/tickets/{ticket}" in page and "consent" in page
    assert doctor.get("/console/patients/default:memory:nobody").status_code == 404


# -- figures ------------------------------------------------------------------------------------------

def _stats_rows(setup: Setup) -> None:
    now = setup.clock.now()

    def ticket(tid: str, department: str, wait_min: float | None, due_min: float) -> dict[str, Any]:
        opened = now - timedelta(days=1)
        return dict(id=tid, org="default", conversation_id=f"default:memory:{tid}", status="resolved",
                    department=department, priority="normal", reason="patient_asked", summary="{}",
                    assignee="d_li", opened_at=opened, mode="grab",
                    first_response_at=None if wait_min is None else opened + timedelta(minutes=wait_min),
                    first_response_due=opened + timedelta(minutes=due_min))

    def survey(tid: str, recommend: int, satisfaction: int) -> dict[str, Any]:
        return dict(org="default", conversation_id=f"default:memory:{tid}", kind="survey", at=now - timedelta(hours=1),
                    data=json.dumps({"survey": "consultation", "ticket_id": tid,
                                     "answers": {"recommend": recommend, "satisfaction": satisfaction, "comment": None}}))

    def write(conn: Any) -> None:
        conn.execute(TICKET.insert(), [ticket("s1", "dermatology", 10, 120), ticket("s2", "dermatology", 20, 120),
                                       ticket("s3", "dermatology", 150, 120), ticket("s4", "gynaecology", 4, 120)])
        conn.execute(EVENT.insert(), [survey("s1", 10, 5), survey("s2", 8, 4), survey("s3", 3, 2), survey("s4", 9, 5)])
        conn.execute(Complaint.__table__.insert(), [dict(
            org="default", conversation_id="default:memory:s3", ticket_id="s3", department="dermatology",
            category="slow", text="", status="open", handled_by="", created_at=now - timedelta(hours=2))])

    setup.run(setup.bot.store.write, write)


def test_the_stats_page_shows_the_figures_per_department_with_charts(derm: Setup) -> None:
    _stats_rows(derm)
    admin = Browser(derm)
    admin.login("admin")
    page = admin.get("/console/stats?days=30").text

    def cell(department: str, stat: str) -> str:
        row = re.search(rf'<tr data-department="{re.escape(department)}".*?</tr>', page, re.S)
        assert row, department
        value = re.search(rf'data-stat="{stat}">(.*?)</td>', row.group(0), re.S)
        assert value, stat
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", value.group(1))).strip()

    # dermatology: waits 10, 20, 150 min → median 20; due 120 → 2 of 3 on time
    assert cell("dermatology", "median") == "20 min"
    assert cell("dermatology", "sla") == "67% (2/3)"
    # recommends 10, 8, 3 with the shipped threshold 9: 1 promoter, 1 detractor → NPS 0
    assert cell("dermatology", "nps") == "+0 (n=3)"
    # satisfaction 5, 4, 2 → mean 3.67, 2 of 3 satisfied
    assert cell("dermatology", "csat") == "3.67"
    assert cell("dermatology", "csat_share") == "67% (n=3)"
    assert cell("dermatology", "complaints") == "1 (1 open)"
    assert cell("gynaecology", "nps") == "+100 (n=1)"
    # all departments pooled: recommends 10 8 3 9 → 2 promoters, 1 detractor of 4 → +25
    assert cell("*", "nps") == "+25 (n=4)"
    assert cell("*", "median") == "15 min"  # 4 10 20 150
    assert page.count('<svg class="cb-chart"') == 6  # five measures and the care funnel
    assert "cdn" not in page.lower() and "<script>" not in page


# -- live updates -------------------------------------------------------------------------------------

def test_the_event_stream_says_when_a_ticket_is_taken(derm: Setup) -> None:
    ticket = derm.hand_off("p1")
    watcher, doctor = Browser(derm), Browser(derm)
    watcher.login("d_ma")
    doctor.login("d_li")
    token = doctor.csrf(f"/console/tickets/{ticket}")
    client = derm.client
    client.cookies = watcher.jar
    with client.stream("GET", "/console/events", headers={"Accept": "text/event-stream"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"
        assert next(lines) == ": connected"
        client.cookies = doctor.jar
        assert client.post(f"/console/tickets/{ticket}/take", data={"csrf": token}, follow_redirects=False).status_code == 303
        data = next(line for line in lines if line.startswith("data: "))
        assert json.loads(data[6:]) == {"type": "ticket_taken", "ticket": ticket, "department": "dermatology",
                                        "priority": "normal", "staff": "d_li", "also": ""}
        # the console adapter's one outbound, notify_staff, goes to the same feed
        outbound = Outbound(op="notify_staff", address=Address("console", "staff"), key="moderation.alert",
                            extra={"department": "dermatology", "ticket_id": ticket})
        assert derm.run(derm.console.send, outbound, "k1").ok
        data = next(line for line in lines if line.startswith("data: "))
        assert json.loads(data[6:])["type"] == "notify_staff"
    refused = derm.run(derm.console.send, Outbound(op="say", address=Address("console", "staff"), text="hi"), "k2")
    assert not refused.ok and not refused.retryable


def test_the_event_stream_needs_a_session(setup: Setup) -> None:
    response = Browser(setup).get("/console/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401


def test_the_history_reads_as_words_not_json(derm: Setup) -> None:
    """A ticket's history names why it ended and whom it reached, in the console's language."""
    ticket = derm.hand_off("p1")
    derm.clock.advance(timedelta(minutes=1))
    derm.patient("p1", "主菜单")  # answered by the relay ("still waiting"): never the complaint
    derm.patient("p1", "手背起了红疹 三天了")
    derm.patient("p1", "取消咨询", "是")
    assert derm.ticket_of("p1").status == "abandoned"
    admin = Browser(derm)
    admin.login("admin")
    page = admin.get(f"/console/tickets/{ticket}").text
    assert "reason: the patient withdrew the request" in page
    assert '{"reason"' not in page and "&#34;reason&#34;" not in page and "{&#34;" not in page
    assert "ended by the patient" in page and "— <strong>met</strong>" not in page  # withdrawn, not resolved
    zh = Browser(derm, locale="zh-CN")
    zh.login("admin")
    assert "原因: 患者取消咨询" in zh.get(f"/console/tickets/{ticket}").text
    rows = zh.get("/console/inbox?status=closed").text
    assert ticket in rows and "未回复" in rows and "已回复" not in rows
    assert "手背起了红疹 三天了" in rows  # the row's preview: the patient's first message, with no complaint slot
    thread = zh.get(f"/console/tickets/{ticket}").text
    assert "手背起了红疹 三天了 (患者的第一条留言)" in thread
    assert "未发现 · 建议咨询" in thread  # an ordinary level is no red flag


def test_cancelling_while_an_emergency_waits_gets_one_answer(setup: Setup) -> None:
    """取消咨询 after an emergency: the emergency ticket stays, and the patient gets that one answer —
    not "first, your question:" (the route kept beside an ordinary request) followed by it."""
    setup.patient("p9", "你好", "我爸胸口压着疼 一直出冷汗")
    assert setup.ticket_of("p9").reason == "red_flag"
    before = len(setup.memory.sent)
    setup.patient("p9", "取消咨询")
    assert [s.outbound.key for s in setup.memory.sent[before:]] == ["handoff.leave_emergency"]
    assert setup.ticket_of("p9").status in ("pending", "assigned")


def test_a_normal_ticket_opened_after_hours_starts_its_clocks_when_the_clinic_opens(derm: Setup) -> None:
    """The patient is told a doctor replies after 08:00; the staff clocks say the same, so the ticket is
    not breached and escalated in the night before anyone is there."""
    from zoneinfo import ZoneInfo
    shanghai = ZoneInfo("Asia/Shanghai")
    evening = derm.clock.now().astimezone(shanghai).replace(hour=21, minute=0, second=0, microsecond=0)
    derm.clock.set(evening)
    derm.hand_off("p1")
    row = derm.ticket_of("p1")
    opens = (evening + timedelta(days=1)).replace(hour=8)
    assert row.first_response_due.astimezone(shanghai) == opens + timedelta(hours=2)  # normal: 2 h
    derm.clock.advance(timedelta(hours=6))  # 03:00: nothing breached, nothing escalated
    derm.run(derm.bot.timers.tick)
    derm.run(derm.bot.settle)
    assert derm.ticket_of("p1").escalations == 0


def test_an_emergency_reads_as_its_signs_and_words_not_an_earlier_complaint(derm: Setup) -> None:
    """Found by the session 11 walkthrough: an emergency ticket's row and summary showed a sore ankle the
    patient had withdrawn before, and a long message's red flag (at its end) was cut off the row."""
    long = "我最近一直觉得很累，睡不好，" * 12 + "今天胸口压着疼 一直出冷汗"
    derm.patient("p7", "你好", long)
    ticket = derm.ticket_of("p7")
    assert ticket.reason == "red_flag"
    derm.staff("d_er", "Dr Er", title="Attending", departments=(ticket.department,))
    doctor = Browser(derm)
    doctor.login("d_er")
    inbox = doctor.get("/console/inbox").text
    previews = re.findall(r'<div class="cb-preview">(.*?)</div>', inbox)
    # the signs first, then the words, cut (the alert's words come from the same function)
    assert any(re.search(r"(出冷汗 · 胸口压着疼|胸口压着疼 · 出冷汗) — 我最近", p) for p in previews)
    assert re.search(r'<q class="cb-alert-words">(出冷汗 · 胸口压着疼|胸口压着疼 · 出冷汗) — 我最近', inbox)
    from bot.handoff.paging import emergency_words
    assert emergency_words({"signs": ["胸口压着", "胸口压着疼"], "patient_words": ["我爸胸口压着疼"]}) == "我爸胸口压着疼"
    from adapters.console.summary import clinical_summary
    summary = {"slots": {"complaint": "脚踝有点肿，昨天开始"}, "patient_words": ["跟上次一样 胸口压着疼 出冷汗"],
               "signs": ["胸口压着", "出冷汗"]}
    lines = clinical_summary(ticket, summary, {}, "", lambda key, **_: key, lambda d: d)
    assert lines[0].value == "跟上次一样 胸口压着疼 出冷汗"

