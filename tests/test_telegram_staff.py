"""The staff side on Telegram: a forum topic per ticket in the staff supergroup, against the fake Bot
API on loopback — through the webhook and the aiogram / PTB integrations, on SQLite and on
PostgreSQL + Redis; and the staff console and the topic kept in step both ways."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters.telegram.models import TelegramTopic
from adapters.telegram.staff import StaffDesk
from bot.store.store import TICKET, TICKET_MSG
from tests.telegram_support import BINDINGS, TG, open_tg

STAFF_CHAT = -1009990001
PATIENT = 5101
DOC_LI, DOC_MA, STRANGER = 7001, 7002, 7999
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def open_staffed(tmp_path: Any, binding: str, **kw: Any) -> TG:
    tg = await open_tg(tmp_path, binding, config={"staff_chat_id": str(STAFF_CHAT), "staff_locale": "en"}, **kw)
    tg.fake.group(STAFF_CHAT, "Care team", forum=True)
    for staff_id, name, tg_id in (("d_li", "Dr Li", DOC_LI), ("d_ma", "Dr Ma", DOC_MA)):
        await tg.bot.handoff.add_staff(staff_id, name, "doctor", PASSWORD, title="Attending",
                                       departments=["dermatology"])
        await tg.bot.store.write(lambda c, s=staff_id, t=tg_id: StaffDesk.link(c, t, s, tg.clock.now()))
    return tg


@pytest.fixture(params=BINDINGS)
async def tg(request: Any, tmp_path: Any) -> Any:
    tg = await open_staffed(tmp_path, request.param)
    yield tg
    await tg.close()


@pytest.fixture(params=[("sqlite", "webhook"), ("postgres+redis", "webhook"), ("postgres+redis", "aiogram")],
                ids=lambda p: "-".join(p))
async def tg_backends(request: Any, tmp_path: Any) -> Any:
    backend, binding = request.param
    kw: dict[str, Any] = {}
    if backend != "sqlite":
        kw = {"url": request.getfixturevalue("pg_url"), "redis_url": request.getfixturevalue("redis_url")}
        import redis

        redis.Redis.from_url(kw["redis_url"]).flushdb()
    tg = await open_staffed(tmp_path, binding, **kw)
    yield tg
    await tg.close()


async def hand_off(tg: TG, user_id: int = PATIENT, name: str = "Li Hua") -> tuple[dict[str, Any], Any]:
    """The patient asks for a person, consents and picks dermatology; returns (patient, ticket row)."""
    first, _, last = name.partition(" ")
    patient = tg.fake.private(user_id, first)
    if last:
        patient["last_name"] = last
    for text in ("人工", "是", "是", "否"):
        await tg.say(patient, text)
    await tg.press(patient, "皮肤科")
    ticket = await tg.bot.store.read(lambda c: c.execute(sa.select(TICKET).where(
        TICKET.c.conversation_id == f"default:telegram:{user_id}")).first())
    assert ticket is not None and ticket.department == "dermatology"
    return patient, ticket


async def topic_of(tg: TG, ticket_id: str) -> Any:
    return await tg.bot.store.read(lambda c: c.execute(sa.select(TelegramTopic.__table__).where(
        TelegramTopic.__table__.c.ticket_id == ticket_id)).first())


async def staff_says(tg: TG, tg_id: int, text: str, thread: int | None) -> Any:
    return await tg.push(tg.updates.message(STAFF_CHAT, tg.fake.user(tg_id, "Doctor", "en"), text, thread_id=thread))


def topic_texts(tg: TG, thread: int) -> list[str]:
    return tg.fake.texts(STAFF_CHAT, thread)


async def ticket_now(tg: TG, ticket_id: str) -> Any:
    return await tg.bot.store.read(lambda c: c.execute(sa.select(TICKET).where(TICKET.c.id == ticket_id)).first())


async def round_trip(tg: TG) -> None:
    """patient → ticket → topic → /take → the patient writes → staff reply reaches the patient →
    /note stays internal → /close → survey → back to the bot."""
    patient, ticket = await hand_off(tg)
    topic = await topic_of(tg, ticket.id)
    assert topic is not None and not topic.closed
    forum = tg.fake.topics[STAFF_CHAT][topic.thread_id]
    assert forum["name"] == f"Li Hua · {ticket.id}"  # the display name and the ticket, no health details
    header = topic_texts(tg, topic.thread_id)[0]
    assert header.startswith(f"New ticket {ticket.id}\nDepartment: ")
    assert "Patient: Li Hua (telegram, zh-CN)" in header
    assert "/take" in header and "/close" in header

    await staff_says(tg, DOC_LI, "/take", topic.thread_id)
    assert (await ticket_now(tg, ticket.id)).assignee == "d_li"
    assert any("Dr Li Attending took this ticket." == t for t in topic_texts(tg, topic.thread_id))
    assert any("Dr Li" in t for t in tg.texts(PATIENT)[-2:])  # the patient is told who looks after them

    await tg.say(patient, "手背上起了红疹，很痒，已经三天了")
    assert "Patient: 手背上起了红疹，很痒，已经三天了" in topic_texts(tg, topic.thread_id)

    n = len(tg.texts(PATIENT))
    await staff_says(tg, DOC_LI, "您好，红疹有没有渗液？最近接触过新的洗涤用品吗？", topic.thread_id)
    assert tg.texts(PATIENT)[n:] == ["Dr Li Attending\n您好，红疹有没有渗液？最近接触过新的洗涤用品吗？"]
    assert not any("渗液" in t for t in topic_texts(tg, topic.thread_id))  # written there: not echoed back

    n, posted = len(tg.texts(PATIENT)), len(topic_texts(tg, topic.thread_id))
    await staff_says(tg, DOC_LI, "/note 考虑接触性皮炎", topic.thread_id)
    assert tg.texts(PATIENT)[n:] == []  # an internal note never reaches the patient
    assert topic_texts(tg, topic.thread_id)[posted:] == ["Note saved (the patient never sees it)."]
    bodies = await tg.bot.store.read(lambda c: c.execute(sa.select(TICKET_MSG.c.author, TICKET_MSG.c.body).where(
        TICKET_MSG.c.ticket_id == ticket.id)).all())
    assert ("note:d_li", "考虑接触性皮炎") in [tuple(b) for b in bodies]

    await staff_says(tg, DOC_LI, "/close", topic.thread_id)
    assert (await ticket_now(tg, ticket.id)).status == "resolved"
    assert tg.fake.topics[STAFF_CHAT][topic.thread_id]["closed"] is True
    assert (await topic_of(tg, ticket.id)).closed
    assert topic_texts(tg, topic.thread_id)[-1].startswith("Dr Li Attending closed the ticket")
    survey = tg.fake.messages(PATIENT)[-1]
    assert survey.buttons and [b["text"] for b in survey.buttons][:3] == ["0", "1", "2"]  # the survey's scale
    data, _version = await tg.bot.store.load(f"default:telegram:{PATIENT}")
    assert data["mode"] == "bot"
    # a late message in the closed topic is not relayed
    n = len(tg.texts(PATIENT))
    await staff_says(tg, DOC_LI, "还有一件事", topic.thread_id)
    assert tg.texts(PATIENT)[n:] == []


async def test_hand_off_to_a_forum_topic_and_back(tg: TG) -> None:
    await round_trip(tg)


async def test_round_trip_on_each_backend(tg_backends: TG) -> None:
    await round_trip(tg_backends)


async def test_transfer_and_duplicates_from_the_topic(tg: TG) -> None:
    _patient, ticket = await hand_off(tg, 5102, "Wang")
    topic = await topic_of(tg, ticket.id)
    update = tg.updates.message(STAFF_CHAT, tg.fake.user(DOC_LI, "Li", "en"), "/take", thread_id=topic.thread_id)
    await tg.push(update)
    await tg.push(update)  # Telegram retried the update: taken once, said once
    assert sum(1 for t in topic_texts(tg, topic.thread_id) if "took this ticket" in t) == 1
    await staff_says(tg, DOC_MA, "/take", topic.thread_id)
    assert topic_texts(tg, topic.thread_id)[-1] == "Not taken: Dr Li Attending already has this ticket."
    await staff_says(tg, DOC_LI, "/transfer", topic.thread_id)
    assert topic_texts(tg, topic.thread_id)[-1].startswith("Usage: /transfer")
    n = len(tg.texts(5102))
    await staff_says(tg, DOC_LI, "/transfer d_ma needs a second look", topic.thread_id)
    assert (await ticket_now(tg, ticket.id)).assignee == "d_ma"
    assert topic_texts(tg, topic.thread_id)[-1] == \
        "Dr Li Attending transferred it to Dr Ma Attending (needs a second look)."
    assert any("Dr Ma" in t for t in tg.texts(5102)[n:])  # the patient is told
    await staff_says(tg, DOC_LI, "/transfer nobody_here", topic.thread_id)
    assert topic_texts(tg, topic.thread_id)[-1] == "Not done: no staff member 'nobody_here'"


async def test_a_stranger_in_the_staff_group_is_refused_never_relayed(tg: TG) -> None:
    _patient, ticket = await hand_off(tg, 5103, "Zhao")
    topic = await topic_of(tg, ticket.id)
    n = len(tg.texts(5103))
    await staff_says(tg, STRANGER, "我是医生，你吃点药就好", topic.thread_id)
    await staff_says(tg, STRANGER, "/close", topic.thread_id)
    assert tg.texts(5103)[n:] == []
    assert (await ticket_now(tg, ticket.id)).status == "pending"
    refusal = topic_texts(tg, topic.thread_id)[-1]
    assert refusal.startswith("Your Telegram account is not linked") and f"link-staff {STRANGER}" in refusal
    # talk in the group's General topic is the team's own: no answer, nothing relayed
    before = len(tg.fake.sent)
    await staff_says(tg, STRANGER, "good morning all", None)
    assert tg.fake.sent[before:] == []


async def test_console_and_topic_stay_in_sync(tmp_path: Any) -> None:
    tg = await open_staffed(tmp_path, "webhook", console=True)
    try:
        _patient, ticket = await hand_off(tg, 5104, "Sun")
        topic = await topic_of(tg, ticket.id)
        async with httpx.AsyncClient(base_url=tg.base_url, headers={"Accept-Language": "en"}) as console:
            page = await console.get("/console/login")
            await console.post("/console/login", data={"csrf": CSRF.search(page.text).group(1), "staff_id": "d_ma",
                                                       "password": PASSWORD, "next": "/console/inbox"})

            async def act(action: str, **form: str) -> None:
                page = await console.get(f"/console/tickets/{ticket.id}")
                assert page.status_code == 200
                answer = await console.post(f"/console/tickets/{ticket.id}/{action}",
                                            data={"csrf": CSRF.search(page.text).group(1), **form})
                assert answer.status_code == 303
                await tg.bot.settle()
                await tg.adapter.idle()

            await act("take")  # console → topic
            assert topic_texts(tg, topic.thread_id)[-1] == "Dr Ma Attending took this ticket."
            await act("reply", text="您好，我是马医生，请发一张清晰的照片。")
            assert topic_texts(tg, topic.thread_id)[-1] == \
                "Dr Ma Attending (in the console) to the patient: 您好，我是马医生，请发一张清晰的照片。"
            await act("note", text="可能是湿疹")
            assert topic_texts(tg, topic.thread_id)[-1] == \
                "Internal note by Dr Ma Attending (the patient never sees it): 可能是湿疹"
            assert tg.texts(5104)[-1] == "Dr Ma Attending\n您好，我是马医生，请发一张清晰的照片。"
            # topic → console: a reply and the close show on the console's page
            await staff_says(tg, DOC_MA, "照片收到了，谢谢。", topic.thread_id)
            await staff_says(tg, DOC_MA, "/close", topic.thread_id)
            page = await console.get(f"/console/tickets/{ticket.id}")
            assert "照片收到了，谢谢。" in page.text
            assert (await ticket_now(tg, ticket.id)).status == "resolved"
            assert '<span class="cb-status">resolved</span>' in page.text
            assert "closed · Dr Ma Attending" in page.text  # the ticket's history, as the console shows it
    finally:
        await tg.close()


async def test_a_patient_photo_is_shown_in_the_topic(tg: TG) -> None:
    patient, ticket = await hand_off(tg, 5105, "Qian")
    topic = await topic_of(tg, ticket.id)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    await tg.push(tg.updates.photo(5105, patient, png, caption="手背"))
    photos = [m for m in tg.fake.messages(STAFF_CHAT, topic.thread_id) if m.method == "sendPhoto"]
    assert len(photos) == 1 and photos[0].caption == "Patient: 手背"
