"""The callback URL: verification, tampering and stale timestamps refused, duplicates dropped,
200 at once and the event processed after it was written down."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from adapters.wecom.callback import CALLBACK, dedupe_key
from tests.wecom.conftest import KFID, stop


async def test_url_verification_answers_the_plain_echostr(make_harness) -> None:
    h = await make_harness()
    try:
        query = h.fake.url_check("1288432023552776189")
        response = await h.client.get("/wecom/callback", params=query)
        assert response.status_code == 200 and response.text == "1288432023552776189"
        bad = await h.client.get("/wecom/callback", params={**query, "msg_signature": "0" * 40})
        assert bad.status_code == 403 and "msg_signature" in bad.text
        missing = await h.client.get("/wecom/callback", params={"timestamp": "1"})
        assert missing.status_code == 400 and "echostr" in missing.text
    finally:
        await stop(h)


async def test_tampered_stale_and_garbage_callbacks_are_refused_with_4xx(make_harness) -> None:
    h = await make_harness()
    try:
        fields = h.fake.kf_callback_fields(KFID)
        query, body = h.fake.callback(fields)
        forged = await h.client.post("/wecom/callback", params={**query, "nonce": "1"}, content=body.encode())
        assert forged.status_code == 403
        stale_query, stale_body = h.fake.callback(fields, timestamp=int(h.clock.now().timestamp()) - 3600)
        stale = await h.client.post("/wecom/callback", params=stale_query, content=stale_body.encode())
        assert stale.status_code == 403 and "timestamp" in stale.text
        garbage = await h.client.post("/wecom/callback", params=query, content=b"<xml><nope")
        assert garbage.status_code == 400
        empty = await h.client.post("/wecom/callback", params=query, content=b"<xml></xml>")
        assert empty.status_code == 400 and "Encrypt" in empty.text
        rows = await h.bot.store.read(lambda c: c.execute(sa.select(sa.func.count()).select_from(CALLBACK)).scalar())
        assert rows == 0  # nothing refused was written down or acted on
        assert not [c for c in h.fake.calls if c[0] == "kf/sync_msg"]
    finally:
        await stop(h)


async def test_a_redelivered_callback_is_processed_once(make_harness) -> None:
    h = await make_harness()
    try:
        h.fake.customer_says(KFID, "wmPatient1", "你好")
        fields = h.fake.kf_callback_fields(KFID)
        first = await h.post(fields)
        second = await h.post(fields)  # WeCom retries when it did not see our 200 in time
        assert first.text == second.text == "success"
        await h.settle()
        rows = await h.bot.store.read(lambda c: c.execute(sa.select(CALLBACK)).all())
        assert len(rows) == 1 and rows[0].processed_at is not None
        assert len([c for c in h.fake.calls if c[0] == "kf/sync_msg"]) == 1
    finally:
        await stop(h)


async def test_an_accepted_callback_survives_a_crash_before_processing(make_harness) -> None:
    h = await make_harness()
    try:
        h.fake.customer_says(KFID, "wmPatient2", "你好")
        fields = h.fake.kf_callback_fields(KFID)
        row_id = await h.wecom.accept(fields)  # written down and answered, then the process died
        assert row_id is not None
        h.clock.advance(timedelta(minutes=1))
        await h.wecom.tick()  # the next process (or tick) finds it
        await h.settle()
        assert h.fake.kf_sent, "the patient got an answer"
        done = await h.bot.store.read(lambda c: c.execute(sa.select(CALLBACK.c.processed_at)).scalar())
        assert done is not None
    finally:
        await stop(h)


def test_events_are_keyed_by_sender_time_and_event() -> None:
    a = {"Event": "change_external_contact", "ChangeType": "add_external_contact", "UserID": "SunLi",
         "ExternalUserID": "wm1", "CreateTime": "1700000000"}
    assert dedupe_key(a) == dedupe_key(dict(a))
    assert dedupe_key(a) != dedupe_key({**a, "ExternalUserID": "wm2"})
    assert dedupe_key(a) != dedupe_key({**a, "CreateTime": "1700000001"})
    assert dedupe_key({"MsgId": "42", **a}) == "msg:42"
