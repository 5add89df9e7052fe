"""Emergency paging: the on-call roster's coverage check, the signed pager webhook against a real
receiver on loopback (a 500 then a retry, nothing acted on twice after a crash between the gateway's
2xx and our record of it), and an emergency with nobody reachable."""

from __future__ import annotations

import json
import logging
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.testing.memory import MemoryAdapter
from adapters.pager import PagerWebhookAdapter, verify
from bot.app import CareBot, load_config
from bot.clock import ManualClock
from bot.handoff.tickets import EVENTS
from bot.coord import MemoryCoord
from bot.errors import ConfigError
from bot.handoff.config import load_handoff
from bot.handoff.tickets import EVENTS
from bot.settings import Settings
from bot.timeofday import DAY_NAMES as DAYS
from bot.timeofday import on_days, uncovered_week
from bot.store.migrate import upgrade
from bot.store.store import AUDIT, OUTBOX, TICKET
from tests.conftest import ROOT, T0

SECRET = "test-pager-secret"


def test_validate_names_the_uncovered_hours(tmp_path: Path) -> None:
    (tmp_path / "handoff.yml").write_text(textwrap.dedent("""\
        on_call:
          timezone: Asia/Shanghai
          shifts:
            - { staff: d_wu, start: "08:00", end: "02:00" }        # every day, across midnight
            - { staff: d_he, days: [mon, wed, thu, fri, sat, sun], start: "02:00", end: "08:00" }
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_handoff(tmp_path)
    message = str(err.value)
    assert "handoff.yml:1" in message and "Tue 02:00–08:00" in message and "Mon" not in message


def test_a_night_shift_covers_the_small_hours_of_the_next_day(tmp_path: Path) -> None:
    (tmp_path / "handoff.yml").write_text(textwrap.dedent("""\
        on_call:
          shifts:
            - { staff: d_day, start: "08:00", end: "20:00" }
            - { staff: d_night, days: [mon, tue, wed, thu, fri, sat], start: "20:00", end: "08:00" }
        """), encoding="utf-8")
    with pytest.raises(ConfigError) as err:  # Sunday's night shift is missing: Sun 20:00 → Mon 08:00
        load_handoff(tmp_path)
    assert "Sun 20:00–08:00" in str(err.value)


class Receiver(BaseHTTPRequestHandler):
    """A pager gateway on loopback: checks the signature, fails the first request with a 500,
    and acts once per Idempotency-Key (as a gateway with a duplicate check does)."""

    requests: list[dict[str, Any]] = []
    acted: dict[str, dict[str, Any]] = {}
    fail_first = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(SECRET, self.headers["X-Carebot-Timestamp"], body, self.headers["X-Carebot-Signature"],
                    now=time.time())
        key = self.headers["Idempotency-Key"]
        type(self).requests.append({"key": key, "signed": ok, "body": json.loads(body)})
        if not ok:
            self.send_response(401)
        elif type(self).fail_first:
            type(self).fail_first = False
            self.send_response(500)
        else:
            type(self).acted.setdefault(key, json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.requests, Receiver.acted, Receiver.fail_first = [], {}, True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page"
    server.shutdown()
    server.server_close()


def build(tmp_path: Path, url: str, pager_url: str = "") -> tuple[CareBot, MemoryAdapter, ManualClock]:
    settings = replace(Settings(), database_url=url, flows_dir=ROOT / "flows", content_dir=ROOT / "content",
                       worker_id=f"w-{uuid.uuid4().hex[:4]}", outbox_lease_seconds=5)
    clock = ManualClock(T0)  # Monday 17:00 in Shanghai: d_sun is on call, d_zhou next
    adapters: list[Any] = [MemoryAdapter()]
    if pager_url:
        adapters.append(PagerWebhookAdapter(pager_url, SECRET))
    bot = CareBot.build(settings, adapters, clock=clock, config=load_config(settings), coord=MemoryCoord())
    bot.sender.backoff = 0.01  # retries in milliseconds, not seconds
    return bot, adapters[0], clock


async def _ticket(bot: CareBot) -> Any:
    return await bot.store.read(lambda c: c.execute(sa.select(TICKET)).first())


async def _emergency(bot: CareBot, platform: MemoryAdapter, text: str, locale: str) -> Any:
    """A patient writes an emergency; the ticket it opened, once everything it started has settled."""
    await bot.runtime.handle(platform.inbound("p1", text, locale=locale))
    await bot.settle()
    return await _ticket(bot)


async def _events(bot: CareBot, ticket_id: str) -> list[str]:
    return await bot.store.read(lambda c: c.execute(sa.select(EVENTS.c.kind).where(
        EVENTS.c.ticket_id == ticket_id).order_by(EVENTS.c.id)).scalars().all())


async def test_webhook_page_is_signed_retried_after_a_500_and_acted_on_once_after_a_crash(tmp_path, sqlite_url, receiver):
    bot, platform, clock = build(tmp_path, sqlite_url, receiver)
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "I have crushing chest pain and a cold sweat", locale="en"))
        await bot.settle()
        assert platform.sent[0].outbound.key == "triage.emergency_ambulance"
        # the first POST got a 500, the retry a 200: both signed, same idempotency key
        assert [r["signed"] for r in Receiver.requests] == [True, True]
        assert len({r["key"] for r in Receiver.requests}) == 1
        page = Receiver.requests[0]["body"]
        assert page["to"]["staff"] == "d_sun" and page["rung"] == "on_call" and page["type"] == "emergency_page"
        assert "chest" not in json.dumps(page)  # never the patient's words
        # only now, after the gateway's 2xx, is the patient told the doctor was alerted
        assert [s.outbound.key for s in platform.sent] == ["triage.emergency_ambulance", "paging.delivered"]
        ticket = await _ticket(bot)
        assert ticket.paging == "delivered"
        assert await _events(bot, ticket.id) == ["offered", "paged", "page_delivered"]
        audit = await bot.store.read(lambda c: c.execute(sa.select(AUDIT.c.action).where(
            AUDIT.c.subject == ticket.id)).scalars().all())
        assert {"page_ladder_started", "page", "page_delivered"} <= set(audit)

        # the crash: the gateway accepted, the process died before recording it
        await bot.store.write(lambda c: c.execute(OUTBOX.update().where(OUTBOX.c.channel == "pager").values(
            status="sending", lease_until=clock.now(), sent_at=None)))
        clock.advance(timedelta(seconds=10))
        assert await bot.sender.sweep() == 1
        await bot.settle()
        assert len(Receiver.requests) == 3 and len({r["key"] for r in Receiver.requests}) == 1
        assert len(Receiver.acted) == 1  # the gateway's duplicate check dropped the resend
        assert [s.outbound.key for s in platform.sent].count("paging.delivered") == 1  # said once

        # nobody acknowledges: the next on-call is paged by the durable ladder clock
        clock.advance(timedelta(minutes=2))
        await bot.timers.tick()
        await bot.settle()
        assert Receiver.requests[-1]["body"]["to"]["staff"] == "d_zhou"
        assert Receiver.requests[-1]["body"]["rung"] == "next_on_call"
    finally:
        await bot.stop()


async def test_nobody_reachable_on_call_tells_the_patient_to_call_120_at_once(tmp_path, sqlite_url):
    bot, platform, clock = build(tmp_path, sqlite_url)  # no staff accounts, no pager gateway
    await bot.start(background=False)
    try:
        await bot.runtime.handle(platform.inbound("p1", "胸口剧痛出冷汗", locale="zh-CN"))
        await bot.settle()
        keys = [s.outbound.key for s in platform.sent]
        assert keys == ["triage.emergency_ambulance", "paging.unreachable"]
        assert "120" in platform.sent[-1].outbound.text and "已呼叫" not in platform.sent[-1].outbound.text
        ticket = await _ticket(bot)
        assert ticket.paging == "unreachable"
        assert (await _events(bot, ticket.id)).count("page_rung_empty") == 4
        # someone logs in later and acknowledges: the patient is told who
        await bot.handoff.add_staff("d_sun", "孙医生", "doctor", "password123", title="主治医师",
                                    departments=["internal_medicine"])
        admin_ok = await bot.handoff.paging.open_alerts(await bot.handoff.staff("d_sun"))
        assert [a["ticket"] for a in admin_ok] == [ticket.id]
        assert await bot.handoff.paging.acknowledge(ticket.id, await bot.handoff.staff("d_sun"))
        await bot.settle()
        assert platform.sent[-1].outbound.key == "paging.acknowledged" and "孙医生" in platform.sent[-1].outbound.text
    finally:
        await bot.stop()


async def test_an_emergency_shown_to_a_doctor_who_was_not_paged_stays_theirs_to_open_and_take(tmp_path, sqlite_url):
    """The ladder reached nobody; a dermatologist's console shows the alert, which makes it delivered and
    the patient is told. The alert must not then vanish from her console: she may still read the ticket
    and acknowledge it (before, `delivered` ended the 'reached nobody' state that let her see it)."""
    bot, platform, clock = build(tmp_path, sqlite_url)
    await bot.handoff.add_staff("d_wang", "王建国", "doctor", "password123", departments=["dermatology"])
    await bot.start(background=False)
    try:
        ticket = await _emergency(bot, platform, "my wife has crushing chest pain and is sweating", "en")
        assert ticket.paging == "unreachable"
        wang = await bot.handoff.staff("d_wang")
        await bot.handoff.paging.seen(ticket.id, wang)  # her console displayed the alert
        await bot.settle()
        ticket = await _ticket(bot)
        assert ticket.paging == "delivered" and platform.sent[-1].outbound.key == "paging.seen_after_unreachable"
        assert "d_wang" in await bot.handoff.paging.paged_staff(ticket.id)
        assert [a["ticket"] for a in await bot.handoff.paging.open_alerts(wang)] == [ticket.id]  # still hers
        assert bot.handoff.paging.may_acknowledge(wang, ticket, await bot.handoff.paging.paged_staff(ticket.id))
        await bot.handoff.paging.seen(ticket.id, wang)  # a reload: no second "alerted" to the patient
        await bot.settle()
        assert [s.outbound.key for s in platform.sent].count("paging.seen_after_unreachable") == 1
        events = await bot.store.read(lambda c: c.execute(sa.select(EVENTS.c.kind).where(
            EVENTS.c.ticket_id == ticket.id)).scalars().all())
        assert events.count("page_delivered") == 1  # nor a second history line per page load
        # ... and it did not leave every other console: a second doctor, of another department and not on
        # call, still sees the alert the ladder could give nobody, until someone acknowledges it
        await bot.handoff.add_staff("d_gu", "顾医生", "doctor", "password123", departments=["gynaecology"])
        gu = await bot.handoff.staff("d_gu")
        assert [a["ticket"] for a in await bot.handoff.paging.open_alerts(gu)] == [ticket.id]
        assert await bot.handoff.paging.acknowledge(ticket.id, wang)
        assert await bot.handoff.paging.open_alerts(gu) == []
        await bot.settle()
        assert platform.sent[-1].outbound.key == "paging.acknowledged"
        assert (await _ticket(bot)).assignee == "d_wang"
        # no reply within the urgent first-response clock (5 min): escalated, but the emergency
        # department has no backup, so it stays hers — it must not drop out of every inbox
        clock.advance(timedelta(minutes=6))
        await bot.timers.tick()
        await bot.settle()
        after = await _ticket(bot)
        assert after.escalations == 1 and after.assignee == "d_wang" and after.status == "assigned"
    finally:
        await bot.stop()


async def test_taking_an_emergency_answers_its_page(tmp_path, sqlite_url):
    """A doctor who takes (抢单) an emergency whose page is still open has answered it: the ladder
    stops and the alert leaves the consoles; before, the banner stayed until a separate Acknowledge."""
    bot, platform, clock = build(tmp_path, sqlite_url)
    await bot.start(background=False)
    try:
        ticket = await _emergency(bot, platform, "胸口剧痛出冷汗", "zh-CN")
        assert ticket.paging == "unreachable" and ticket.department == "emergency"
        await bot.handoff.add_staff("d_er", "急诊医生", "doctor", "password123", departments=["emergency"])
        er = await bot.handoff.staff("d_er")
        assert [a["ticket"] for a in await bot.handoff.paging.open_alerts(er)] == [ticket.id]
        assert await bot.handoff.take(ticket.id, er)
        await bot.settle()
        ticket = await _ticket(bot)
        assert ticket.paging == "acknowledged" and ticket.acknowledged_by == "d_er" and ticket.assignee == "d_er"
        assert await bot.handoff.paging.open_alerts(er) == []
        assert "acknowledged" in await _events(bot, ticket.id)
    finally:
        await bot.stop()


async def test_an_unstaffed_roster_is_named_at_start_and_a_lost_emergency_shows_to_anyone_signed_in(
        tmp_path, sqlite_url, caplog):
    """A fresh install: the roster names d_sun, d_wu and d_zhou, only a dermatologist has an account.
    The log says whom nobody can page; the emergency that reached nobody is not hidden from the one
    doctor who is signed in, who may read and take it."""
    bot, platform, clock = build(tmp_path, sqlite_url)
    await bot.handoff.add_staff("d_wang", "王建国", "doctor", "password123", departments=["dermatology"])
    with caplog.at_level(logging.WARNING, logger="carebot.paging"):
        await bot.start(background=False)
    try:
        assert await bot.handoff.paging.unstaffed() == ["d_sun", "d_wu", "d_zhou"]
        warned = [r.getMessage() for r in caplog.records if r.name == "carebot.paging"]
        assert len(warned) == 1 and "d_sun, d_wu, d_zhou" in warned[0] and "carebot staff add" in warned[0]
        ticket = await _emergency(bot, platform, "my dad's face is drooping and he can't talk", "en")
        assert ticket.paging == "unreachable"
        wang = await bot.handoff.staff("d_wang")
        assert not bot.handoff.can_view(wang, ticket)  # not her department ...
        assert [a["ticket"] for a in await bot.handoff.paging.open_alerts(wang)] == [ticket.id]  # ... yet shown
        assert await bot.handoff.paging.acknowledge(ticket.id, wang)
        # once the roster's people have accounts, nothing is said
        for who in ("d_sun", "d_wu", "d_zhou"):
            await bot.handoff.add_staff(who, who, "doctor", "password123", departments=["emergency"])
        assert await bot.handoff.paging.unstaffed() == []
    finally:
        await bot.stop()


async def test_a_paged_emergency_stays_with_whom_it_was_paged_to(tmp_path, sqlite_url):
    """Only a ladder that reached nobody opens an alert to everyone: a live page is not shown to a
    doctor of another department who was not paged."""
    bot, platform, clock = build(tmp_path, sqlite_url)
    await bot.handoff.add_staff("d_sun", "孙医生", "doctor", "password123", departments=["emergency"])
    await bot.handoff.add_staff("d_wang", "王建国", "doctor", "password123", departments=["dermatology"])
    await bot.start(background=False)
    try:
        ticket = await _emergency(bot, platform, "胸口剧痛出冷汗", "zh-CN")
        assert ticket.paging in ("paging", "delivered")
        assert await bot.handoff.paging.open_alerts(await bot.handoff.staff("d_wang")) == []
        assert [a["ticket"] for a in await bot.handoff.paging.open_alerts(await bot.handoff.staff("d_sun"))] \
            == [ticket.id]
    finally:
        await bot.stop()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sets(st.sampled_from(DAYS), min_size=1), st.integers(0, 24 * 60 - 1),
                          st.integers(0, 24 * 60 - 1)), min_size=1, max_size=4))
def test_the_gaps_from_the_rosters_changes_are_the_gaps_minute_by_minute(shifts) -> None:
    """`uncovered_week` asks once per stretch between the rosters' starts and ends: the same answer
    as asking for every minute of the week."""
    hhmm = [(sorted(days), f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}") for days, a, b in shifts]

    def covered(local) -> bool:
        return any((DAYS[local.weekday()] in days) if a == b else on_days(days, a, b, local) for days, a, b in hhmm)

    assert uncovered_week(covered, [t for _, a, b in hhmm for t in (a, b)]) == uncovered_week(covered)
