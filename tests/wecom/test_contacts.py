"""External contacts against the fake WeCom API: welcome within 20 seconds, a contact-me QR whose
state starts intake, and customer groups whose moderation goes to the owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from adapters.wecom.contacts import CONTACT, CUSTOMER_GROUP
from bot.runtime.degrade import degrade
from bot.types import Address, Outbound
from tests.wecom.conftest import stop


async def test_a_new_contact_is_welcomed_within_20_seconds_with_a_link_into_intake(make_harness) -> None:
    h = await make_harness()
    try:
        h.wecom.contacts.kf_link = "https://work.weixin.qq.com/kfid/kfcCarebot"
        way = await h.wecom.contacts.contact_me(["SunLi"], "intake-spring")
        assert h.fake.contact_ways[way["config_id"]]["state"] == "intake-spring"
        fields = h.fake.add_contact("SunLi", "wmNew01", state="intake-spring")
        issued = h.clock.now().timestamp()
        response = await h.post(fields)
        assert response.status_code == 200 and response.text == "success"  # answered before the welcome
        await h.settle()
        assert len(h.fake.welcomes) == 1
        welcome = h.fake.welcomes[0]
        assert welcome["at"] - issued <= 20  # WeCom's limit for the welcome code
        assert "开始问诊" in welcome["text"]["content"]
        link = welcome["attachments"][0]["link"]["url"]
        assert link.endswith("scene_param=intake-spring")
        row = await h.bot.store.read(lambda c: c.execute(sa.select(CONTACT)).first())
        assert row.userid == "SunLi" and row.state == "intake-spring" and row.welcomed_at is not None
        # the same callback again (WeCom retried): nobody is welcomed twice
        await h.post(fields)
        await h.settle()
        assert len(h.fake.welcomes) == 1
    finally:
        await stop(h)


async def test_a_welcome_code_past_20_seconds_is_refused_by_wecom_and_recorded_as_not_welcomed(make_harness) -> None:
    h = await make_harness()
    try:
        fields = h.fake.add_contact("SunLi", "wmLate01")
        h.clock.advance(timedelta(seconds=21))
        assert not await h.wecom.contacts.added("SunLi", "wmLate01", "", fields["WelcomeCode"])
        row = await h.bot.store.read(lambda c: c.execute(sa.select(CONTACT)).first())
        assert row.welcomed_at is None
    finally:
        await stop(h)


async def test_a_contact_me_state_must_fit_wecom(make_harness) -> None:
    h = await make_harness()
    try:
        with pytest.raises(ValueError, match="30 characters"):
            await h.wecom.contacts.contact_me(["SunLi"], "x" * 31)
        with pytest.raises(ValueError, match="staff member"):
            await h.wecom.contacts.contact_me([], "spring")
    finally:
        await stop(h)


async def test_customer_groups_are_read_and_a_moderation_wecom_cannot_do_alerts_the_owner(make_harness) -> None:
    h = await make_harness()
    try:
        h.fake.add_group_chat("wrGroup01", "HealthWang", "糖友互助群", ["HealthWang", "wmA", "wmB"])
        h.fake.add_group_chat("wrGroup02", "NurseLi", "术后康复群", ["NurseLi", "wmC"])
        assert await h.wecom.contacts.refresh_groups() == 2
        h.fake.group_chats["wrGroup01"]["member_list"].append({"userid": "wmD", "type": 2})
        await h.post({"ToUserName": h.fake.corp_id, "FromUserName": "sys", "MsgType": "event",
                      "CreateTime": str(int(h.clock.now().timestamp())), "Event": "change_external_chat",
                      "ChatId": "wrGroup01", "ChangeType": "update", "UpdateDetail": "add_member"})
        await h.settle()
        rows = {r.chat_id: r for r in await h.bot.store.read(lambda c: c.execute(sa.select(CUSTOMER_GROUP)).all())}
        assert rows["wrGroup01"].owner == "HealthWang" and rows["wrGroup01"].members == 4
        # a moderation rule wants a message deleted: WeCom lets no API do that in a customer group
        delete = Outbound(op="delete", address=Address("wecom", "wrGroup01", "wmD", is_group=True),
                          target_message_id="m9", extra={"reason": "advertising"})
        content = h.bot.engine.content
        [notice] = degrade(delete, h.wecom.capabilities, "console",
                           patient=lambda k, v: content.render(k, "zh-CN", v),
                           staff_render=lambda k, v: content.render(k, "zh-CN", v))
        assert notice.op == "notify_staff" and notice.address.channel == "wecom"
        delivery = await h.wecom.send(notice, "carebot-outbox-mod1")
        assert delivery.ok
        [alert] = h.fake.delivered["HealthWang"]
        assert alert["msgtype"] == "text" and "wrGroup01" in alert["text"]["content"]
        assert not h.fake.delivered["NurseLi"]
        # and the bot never tries to speak in a customer group through the API
        say = await h.wecom.send(Outbound(op="say", address=Address("wecom", "wrGroup01", "wmD", is_group=True),
                                          text="hi"), "k")
        assert not say.ok and not say.retryable
    finally:
        await stop(h)
