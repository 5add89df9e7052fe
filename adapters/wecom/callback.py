"""The callback URL WeCom posts to (`/wecom/callback`): URL verification, decryption, freshness,
de-duplication, and a fast 200.

    GET  ?msg_signature&timestamp&nonce&echostr   → the decrypted echostr as plain text
    POST ?msg_signature&timestamp&nonce, <xml><Encrypt>…</Encrypt></xml>
         → signature and ReceiveId checked (crypto.py), timestamp within tolerance of our clock,
           the event written to `wecom_callback` (unique on MsgId, or sender + CreateTime + event),
           "success" at once; the adapter processes the row afterwards and marks it done.

A forged, stale or unreadable request gets a 4xx naming the problem; nothing here answers 5xx.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapters.wecom.crypto import WeComCryptoError
from adapters.wecom.models import WecomCallback

if TYPE_CHECKING:
    from adapters.wecom.adapter import WeComAdapter

log = logging.getLogger("carebot.wecom.callback")

CALLBACK = WecomCallback.__table__
PATH = "/wecom/callback"
MAX_BODY = 256 * 1024


def parse_xml(text: str) -> dict[str, str]:
    """A WeCom XML message as a flat dict of its top-level fields (ValueError when it is not XML)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    return {child.tag: (child.text or "").strip() for child in root}


def dedupe_key(fields: dict[str, str]) -> str:
    """MsgId for a message; for an event the sender, CreateTime and the event (kf: the sync token,
    which WeCom makes new for every callback)."""
    if fields.get("MsgId"):
        return f"msg:{fields['MsgId']}"
    event = fields.get("Event", "")
    if event == "kf_msg_or_event":
        return f"kf:{fields.get('OpenKfId', '')}:{fields.get('Token', '')}"
    sender = "/".join(fields.get(k, "") for k in ("FromUserName", "UserID", "ExternalUserID", "ChatId"))
    return ":".join(["evt", sender, fields.get("CreateTime", ""), event, fields.get("ChangeType", ""),
                     fields.get("UpdateDetail", "")])[:300]


def _refuse(status: int, why: str) -> Response:
    return PlainTextResponse(why, status_code=status)


def callback_routes(adapter: WeComAdapter) -> list[Route]:
    async def verify(request: Request) -> Response:
        q = request.query_params  # decoded once by Starlette: echostr is used as it arrives
        missing = [k for k in ("msg_signature", "timestamp", "nonce", "echostr") if not q.get(k)]
        if missing:
            return _refuse(400, f"missing query parameters: {', '.join(missing)}")
        try:
            echo = adapter.crypto.verify_url(q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"])
        except WeComCryptoError as exc:
            log.warning("wecom URL verification refused: %s", type(exc).__name__)
            return _refuse(403, str(exc))
        return PlainTextResponse(echo)

    async def receive(request: Request) -> Response:
        q = request.query_params
        missing = [k for k in ("msg_signature", "timestamp", "nonce") if not q.get(k)]
        if missing:
            return _refuse(400, f"missing query parameters: {', '.join(missing)}")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _refuse(413, f"body over {MAX_BODY} bytes")
        try:
            encrypt = parse_xml(raw.decode("utf-8")).get("Encrypt", "")
        except (ValueError, UnicodeDecodeError) as exc:
            return _refuse(400, f"the body is not WeCom's XML: {exc}")
        if not encrypt:
            return _refuse(400, "the body has no <Encrypt> element")
        try:
            plain = adapter.crypto.decrypt(q["msg_signature"], q["timestamp"], q["nonce"], encrypt)
        except WeComCryptoError as exc:
            log.warning("wecom callback refused: %s", type(exc).__name__)
            return _refuse(403, str(exc))
        try:
            sent = int(q["timestamp"])
        except ValueError:
            return _refuse(400, f"timestamp {q['timestamp']!r} is not a number")
        now = adapter.now()
        if abs(now.timestamp() - sent) > adapter.config.timestamp_tolerance:
            log.warning("wecom callback refused: stale timestamp")
            return _refuse(403, f"timestamp {sent} is more than {adapter.config.timestamp_tolerance:.0f}s "
                                "from now (a replay, or a clock to fix)")
        try:
            fields = parse_xml(plain)
        except ValueError as exc:
            return _refuse(400, f"the decrypted message is not XML: {exc}")
        row_id = await adapter.accept(fields)
        if row_id is not None:
            adapter.process_later(row_id, fields)
        return PlainTextResponse("success")

    return [Route(PATH, verify, methods=["GET"]), Route(PATH, receive, methods=["POST"])]


def insert_callback(conn: sa.Connection, fields: dict[str, str], now: Any) -> int | None:
    """The callback's row id, or None when it was received before (a duplicate)."""
    key = dedupe_key(fields)
    if conn.execute(sa.select(CALLBACK.c.id).where(CALLBACK.c.dedupe_key == key)).first() is not None:
        return None
    # a race with another worker inserting the same key raises IntegrityError: the caller's duplicate
    result = conn.execute(CALLBACK.insert().values(
        dedupe_key=key, event=(fields.get("Event") or fields.get("MsgType", ""))[:64],
        payload=json.dumps(fields, ensure_ascii=False), received_at=now))
    return int(result.inserted_primary_key[0])
