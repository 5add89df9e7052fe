"""WeChat Customer Service end to end against the fake WeCom API: intake from a campaign link with
the cursor kept across a restart, hand-off to a doctor and back, an emergency paged to the on-call
doctor and the care-team group, tags after triage, and the 48-hour / 5-message window."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from adapters.wecom.kf import CURSOR, SESSION
from bot.store.store import TICKET
from bot.types import Address, Outbound
from tests.wecom.conftest import KFID, stop


async def ask_for_a_person(h, user: str) -> None:
    """人工 → consent (yes, yes, no) → dermatology pressed in the kf menu."""
    for text in ("人工", "是", "是", "否"):
        await h.patient_says(user, text)
    h.fake.customer_says(KFID, user, msgtype="text", body={"content": "皮肤科", "menu_id": "dermatology"})
    await h.post(h.fake.kf_callback_fields(KFID))
    await h.settle()


def texts(fake, user: str) -> list[str]:
    return [m.get("text", {}).get("content") or m.get("msgmenu", {}).get("head_content", "")
            for m in fake.kf_sent if m.get("touser") == user]


async def test_kf_intake_from_a_campaign_link_keeps_its_cursor_across_a_restart(make_harness) -> None:
    h = await make_harness()
    user = "wmIntake01"
    try:
        # the patient opens the chat from a kf link carrying the campaign's state
        h.fake.enter_session(KFID, user, scene_param="intake-spring")
        assert (await h.post(h.fake.kf_callback_fields(KFID))).text == "success"
        await h.settle()
        welcome = [m for m in h.fake.kf_sent if m.get("on_event")]
        assert len(welcome) == 1 and "回复任意内容即可开始" in welcome[0]["text"]["content"]
        # their first words are screened, then the intake the link named starts
        await h.patient_says(user, "好的")
        keys = await h.keys(user)
        assert any(k.startswith(("consent.", "intake.")) for k in keys), keys
        first_cursor = await h.bot.store.read(lambda c: c.execute(sa.select(CURSOR.c.cursor)).scalar())
        assert first_cursor == "2"
        sent_before = len(h.fake.kf_sent)
    finally:
        await stop(h)

    # a restart: a new process on the same database reads on from the saved cursor
    h2 = await make_harness()
    try:
        await h2.patient_says(user, "同意")
        syncs = [body for path, body in h2.fake.calls if path == "kf/sync_msg"]
        assert syncs[-1]["cursor"] == "2"  # not from the start: nothing is answered twice
        assert len(h2.fake.kf_sent) > sent_before
        assert len([k for k in await h2.keys(user) if k == "wecom.welcome_intake"]) == 0
        state = await h2.bot.store.read(lambda c: c.execute(sa.select(SESSION.c.state)).scalar())
        assert state == ""  # the campaign state was used once
    finally:
        await stop(h2)


async def test_hand_off_to_a_doctor_and_back(make_harness) -> None:
    h = await make_harness()
    user = "wmHandoff01"
    try:
        await ask_for_a_person(h, user)
        ticket = await h.bot.store.read(lambda c: c.execute(sa.select(TICKET)).first())
        assert ticket is not None and ticket.conversation_id == f"default:wecom:{user}"
        # the patient's care team gets a group chat and hears of the ticket (ids only)
        chat = next(iter(h.fake.appchats.values()))
        assert {"NurseLi", "HealthWang"} <= set(chat["userlist"])
        assert ticket.id in chat["messages"][0]["text"]["content"]
        assert "转人工" not in chat["messages"][0]["text"]["content"]
        # a doctor replies in the console: the patient reads it on WeChat, named
        await h.bot.handoff.add_staff("d_doc", "周医生", "doctor", "password123", title="主治医师",
                                      departments=["dermatology"])
        doctor = await h.bot.handoff.staff("d_doc")
        assert await h.bot.handoff.take(ticket.id, doctor)
        await h.settle()
        await h.bot.handoff.reply(ticket.id, doctor, "您好，我是周医生，请问症状持续多久了？")
        await h.settle()
        assert any("请问症状持续多久了" in t for t in texts(h.fake, user))
        await h.patient_says(user, "两天了")
        # the doctor closes: the survey comes and the bot has the thread again
        await h.bot.handoff.close(ticket.id, doctor)
        await h.settle()
        conv = await h.bot.handoff.tickets.conversation(f"default:wecom:{user}")
        assert conv["mode"] == "bot"
        assert "survey" in " ".join(await h.keys(user))
    finally:
        await stop(h)


async def test_servicer_mode_hands_the_session_to_wecom_and_takes_it_back(make_harness) -> None:
    h = await make_harness(handoff="servicer")
    user = "wmServicer01"
    try:
        await ask_for_a_person(h, user)
        assert h.fake.service_state[(KFID, user)][0] == 2  # in the kf account's pool for a servicer
        ticket = await h.bot.store.read(lambda c: c.execute(sa.select(TICKET)).first())
        # a servicer takes it in WeCom, then ends the session there
        h.fake.service_state[(KFID, user)] = (3, "SunLi")
        h.fake.kf_event(KFID, user, {"event_type": "session_status_change", "change_type": 1,
                                     "new_servicer_userid": "SunLi"})
        await h.post(h.fake.kf_callback_fields(KFID))
        await h.settle()
        h.fake.servicer_ends_session(KFID, user, "SunLi")
        await h.post(h.fake.kf_callback_fields(KFID))
        await h.settle()
        status = await h.bot.store.read(lambda c: c.execute(sa.select(TICKET.c.status).where(
            TICKET.c.id == ticket.id)).scalar())
        assert status not in ("pending", "queued", "assigned", "escalated")
        conv = await h.bot.handoff.tickets.conversation(f"default:wecom:{user}")
        assert conv["mode"] == "bot"
        # back with the bot: the patient writes again and the bot answers over the API
        before = len(texts(h.fake, user))
        await h.patient_says(user, "/start")
        assert len(texts(h.fake, user)) > before
    finally:
        await stop(h)


async def test_an_emergency_pages_the_on_call_doctor_and_the_care_team_group(make_harness) -> None:
    h = await make_harness()
    user = "wmEmergency01"
    try:
        await h.patient_says(user, "胸口剧痛出冷汗")
        keys = await h.keys(user)
        assert keys[0] == "triage.emergency_ambulance"
        card = [m for m in h.fake.delivered["SunLi"] if m.get("msgtype") == "textcard"]
        assert len(card) == 1 and card[0]["agentid"] == 1000002
        assert "胸口" not in str(card[0])  # never the patient's words
        ticket = await h.bot.store.read(lambda c: c.execute(sa.select(TICKET)).first())
        group = next(c for c in h.fake.appchats.values() if "SunLi" in c["userlist"])
        assert any("急诊呼叫" in m["text"]["content"] and ticket.id in m["text"]["content"] for m in group["messages"])
        assert ticket.paging == "delivered"
        assert "paging.delivered" in keys  # told only once WeCom took the page
    finally:
        await stop(h)


async def test_tags_after_triage_reach_the_contact(make_harness) -> None:
    h = await make_harness()
    user = "wmTagged01"
    try:
        await h.post(h.fake.add_contact("SunLi", user, state="spring"))
        await h.settle()
        await h.patient_says(user, "胸口剧痛出冷汗")
        assert {"triage_emergency_ambulance", "dept_emergency"} <= h.fake.tag_names("SunLi", user)
        group = next(g for g in h.fake.tag_groups if g["group_name"] == "carebot")
        assert "triage_emergency_ambulance" in {t["name"] for t in group["tag"]}
    finally:
        await stop(h)


async def test_the_window_is_never_overrun_and_the_patient_is_told_before_it_closes(make_harness) -> None:
    h = await make_harness()
    user = "wmWindow01"
    try:
        await h.patient_says(user, "/start")
        h.fake.kf_sent.clear()
        h.fake.customer_says(KFID, user, "hi")  # a fresh window on WeCom's side …
        await h.wecom.kf._customer_wrote(KFID, user, h.clock.now())  # … and on ours
        results = [await h.wecom.send(Outbound(op="say", address=Address("wecom", user, user), text=f"m{i}"),
                                      f"carebot-outbox-w{i}") for i in range(5)]
        assert [r.ok for r in results] == [True, True, True, True, False]
        sent = texts(h.fake, user)
        assert sent[:4] == ["m0", "m1", "m2", "m3"] and "请在方便时回复" in sent[4]  # 4 messages, then the ask
        assert len(sent) == 5  # WeCom's five, never a sixth
        assert "last message is kept" in results[4].error or "full" in results[4].error
        # 48 hours later nothing goes out
        h.clock.advance(timedelta(hours=49))
        late = await h.wecom.send(Outbound(op="say", address=Address("wecom", user, user), text="late"), "k-late")
        assert not late.ok and not late.retryable and "48 hours" in late.error
    finally:
        await stop(h)
