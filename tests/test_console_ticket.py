"""The ticket page a doctor works from: the whole episode (the bot conversation before the hand-off,
the patient, staff replies, internal notes), photos through the console's audited media route, and a
clinical summary with labels in the staff member's language; the inbox rows that lead there."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.webchat import WebchatAdapter
from adapters.webchat.config import WebchatConfig
from bot.types import Media
from tests.test_console import Browser, Setup, derm, setup  # noqa: F401 (fixtures)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
INTAKE = ("你好", "choice:consult", "同意", "choice:yes", "否", "我想快速问个问题", "脸上长了很多痘痘，有点痒",
          "两周", "choice:4", "choice:self", "二十五岁", "女", "没有", "choice:skip", "是的", "choice:none", "好的")


@pytest.fixture
def clinic(derm: Setup, tmp_path: Path) -> Setup:  # noqa: F811
    webchat = WebchatAdapter(derm.bot.settings, replace(WebchatConfig(), media_dir=tmp_path / "media"))
    derm.bot.adapters.add(webchat)
    derm.run(webchat.start, derm.bot.runtime)
    return derm


def photo(s: Setup, chat: str) -> str:
    """The patient sends a photo (stored by the web chat's media store, as an upload would be)."""
    webchat = s.bot.adapters.get("webchat")
    stored = s.run(webchat.media.save, f"default:memory:{chat}", PNG, s.clock.now())
    ref = f"webchat:{stored.id}"
    s.run(s.bot.runtime.handle, s.memory.inbound(chat, kind="media", media=Media("image", ref, "image/png", len(PNG)),
                                                 now=s.clock.now()))
    s.run(s.bot.settle)
    return ref


def test_the_ticket_shows_the_whole_episode_with_notes_marked(clinic: Setup) -> None:
    clinic.patient("p1", *INTAKE)
    ticket = clinic.ticket_of("p1").id
    clinic.clock.advance(timedelta(minutes=3))
    clinic.patient("p1", "晚上更痒")
    doctor = Browser(clinic)
    doctor.login("d_li")
    doctor.post(f"/console/tickets/{ticket}/note", {"text": "Likely acne; ask about cosmetics"},
                csrf_from=f"/console/tickets/{ticket}")
    page = doctor.get(f"/console/tickets/{ticket}").text
    conversation = page[page.index('class="cb-msgs"'):page.index("</ol>")]
    # the bot's questions and the patient's answers before the hand-off, in order, then after it
    order = ["脸上长了很多痘痘", "两周", "二十五岁", "Above: the conversation with the bot", "晚上更痒",
             "Likely acne"]
    positions = [conversation.find(o) for o in order]
    assert -1 not in positions and positions == sorted(positions), positions
    assert conversation.count("cb-msg-bot") >= 10  # what the bot asked and told is there too
    assert re.search(r"cb-msg-note.*?not sent to the patient.*?Likely acne", conversation, re.S)


def test_the_clinical_summary_has_labels_and_no_internal_slots(clinic: Setup) -> None:
    clinic.patient("p1", *INTAKE)
    ticket = clinic.ticket_of("p1").id
    for locale, labels, values in (
            ("en", ("Complaint", "Since when", "Severity", "Age and sex", "Pregnancy", "Department (confidence)",
                    "Consent version", "Red flags"), ("4/10", "25 years · female", "not asked", "2026-03")),
            ("zh-CN", ("主诉", "持续时间", "严重程度", "年龄 / 性别", "妊娠", "科室（置信度）", "同意书版本", "危险信号"),
             ("25 岁 · 女", "未询问"))):
        doctor = Browser(clinic, locale=locale)
        doctor.login("d_li")
        page = doctor.get(f"/console/tickets/{ticket}").text
        summary = page[page.index("cb-summary"):]
        summary = summary[:summary.index("</section>")]
        for text in (*labels, *values):
            assert text in summary, (locale, text)
        assert "confidence" in summary or "置信度" in summary
        for internal in ("consent_current", "price_text", "reply_sample", "quota_left", "_staffed_by",
                         "department_confident", "emergency"):
            assert internal not in summary, internal


def test_an_emergency_summary_names_the_level_in_the_staff_language(clinic: Setup) -> None:
    clinic.patient("p9", "我胸口剧痛，喘不上气，出冷汗")
    ticket = clinic.ticket_of("p9")
    assert ticket.reason == "red_flag"
    admin = Browser(clinic, locale="zh-CN")
    admin.login("admin")
    page = admin.get(f"/console/tickets/{ticket.id}").text
    summary = page[page.index("cb-summary"):]
    assert "急症" in summary and "cb-alert-value" in summary and "胸口剧痛" in summary
    assert "emergency</dd>" not in summary
    red_flags = summary[summary.index("危险信号"):summary.index("</dd>", summary.index("危险信号"))]
    assert "“" in red_flags and "chest_pain" not in red_flags  # the patient's words, not rule ids


def test_an_emergency_typed_into_an_open_ticket_is_what_its_summary_says(clinic: Setup) -> None:
    """A patient waiting for a dermatologist types an emergency: the ticket is re-routed, and its clinical
    summary says the emergency and the words that raised it, not the earlier 'no red flag'."""
    ticket_id = clinic.hand_off("p7")
    clinic.patient("p7", "我爸突然嘴歪了 右手抬不起来")
    ticket = clinic.ticket_of("p7")
    assert ticket.id == ticket_id and ticket.department == "emergency"
    admin = Browser(clinic, locale="zh-CN")
    admin.login("admin")
    page = admin.get(f"/console/tickets/{ticket.id}").text
    summary = page[page.index("cb-summary"):]
    red_flags = summary[summary.index("危险信号"):summary.index("</dd>", summary.index("危险信号"))]
    assert "救护车" in red_flags and "“" in red_flags and "嘴歪" in red_flags


def test_a_photo_is_inline_through_the_audited_media_route(clinic: Setup) -> None:
    ticket = clinic.hand_off("p1")
    ref = photo(clinic, "p1")
    doctor = Browser(clinic)
    doctor.login("d_li")
    page = doctor.get(f"/console/tickets/{ticket}").text
    src = re.search(r'<img src="([^"]+)"[^>]*class="cb-thumb"', page)
    assert src and ref.replace(":", "%3A") in src.group(1)
    shown = doctor.get(src.group(1).replace("&amp;", "&"))
    assert shown.status_code == 200 and shown.content == PNG and shown.headers["content-type"] == "image/png"
    assert "sandbox" in shown.headers["content-security-policy"]
    assert [a.detail for a in clinic.audit(action="view_media", subject=ticket)] and ref in clinic.audit(
        action="view_media", subject=ticket)[-1].detail
    # another department's doctor: refused and audited; a ref of another conversation: not found
    other = Browser(clinic)
    other.login("d_gu")
    assert other.get(src.group(1).replace("&amp;", "&")).status_code == 403
    other_ticket = clinic.hand_off("p2")
    foreign = doctor.get(f"/console/tickets/{other_ticket}/media?ref={ref}")
    assert foreign.status_code == 404
    assert doctor.get(f"/console/tickets/{ticket}/media?ref=webchat:{'0' * 32}").status_code == 404
    assert doctor.get(f"/console/tickets/{ticket}/media?ref=nothing").status_code == 404
    assert Browser(clinic).get(src.group(1).replace("&amp;", "&")).status_code == 303  # no session: login


def test_inbox_rows_name_the_patient_preview_waiting_and_unread(clinic: Setup) -> None:
    clinic.patient("p1", *INTAKE)
    ticket = clinic.ticket_of("p1").id
    clinic.clock.advance(timedelta(minutes=20))
    clinic.patient("p1", "晚上更痒", "还有点红")
    doctor = Browser(clinic)
    doctor.login("d_li")
    rows = doctor.get("/console/inbox/rows").text
    row = rows[rows.index(f'data-ticket="{ticket}"'):]
    row = row[:row.index("</tr>")]
    assert "脸上长了很多痘痘" in row and "female" in row and "25 years" in row
    assert re.search(r'cb-unread-count[^>]*>2<', row)
    assert re.search(r'class="cb-patient">#[0-9a-f]{6}<', row)
    assert "20 min ago" in row  # waiting since the ticket opened: nobody has answered
    assert ticket in doctor.get("/console/inbox/rows?waiting=1").text
    doctor.post(f"/console/tickets/{ticket}/take", csrf_from=f"/console/tickets/{ticket}")
    doctor.post(f"/console/tickets/{ticket}/reply", {"text": "Please tell me which products you use on your face."},
                csrf_from=f"/console/tickets/{ticket}")
    clinic.run(clinic.bot.settle)
    after = doctor.get("/console/inbox/rows").text
    row = after[after.index(f'data-ticket="{ticket}"'):]
    row = row[:row.index("</tr>")]
    assert "cb-unread-count" not in row and "answered" in row
    assert ticket not in doctor.get("/console/inbox/rows?waiting=1").text
    assert ticket in doctor.get("/console/inbox/rows?mine=1").text


def test_the_inbox_names_on_call_people_nobody_can_page(clinic: Setup) -> None:
    """The shipped roster names d_sun, d_wu and d_zhou; this clinic made no accounts for them."""
    for locale, words in (("en", "no console account"), ("zh-CN", "没有控制台账号")):
        doctor = Browser(clinic, locale=locale)
        doctor.login("d_li")
        page = doctor.get("/console/inbox").text
        banner = re.search(r'<p class="cb-unstaffed" role="alert">(.*?)</p>', page, re.S)
        assert banner and words in banner.group(1) and "d_sun · d_wu · d_zhou" in banner.group(1)
    for who in ("d_sun", "d_wu", "d_zhou"):
        clinic.staff(who, who, departments=("emergency",))
    doctor = Browser(clinic)
    doctor.login("d_li")
    assert "cb-unstaffed" not in doctor.get("/console/inbox").text
