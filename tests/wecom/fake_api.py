"""A fake WeCom server API on loopback: a real HTTP server (Starlette + uvicorn on a free port) that
speaks the endpoints carebot calls, with WeCom's rules as the tests need them:

- `gettoken`: a token per application secret, valid `expires_in` seconds on the fake's clock;
  an expired token answers 42001, an unknown one 40014; `gettoken_calls` counts refreshes.
- WeChat Customer Service (kf): `sync_msg` pages through the messages with a cursor and `has_more`;
  `send_msg` only in service states 0/1 (new, bot) and only within 48 hours of the customer's last
  message, at most 5 messages per customer message; `send_msg_on_event` answers a welcome code once;
  `service_state/get|trans`.
- Application messages (`message/send`, text and textcard) and internal group chats
  (`appchat/create|update|send`): more than `member_limit` messages per member per window are accepted and
  silently dropped — as WeCom does — so only `delivered` shows what a person really received.
- External contacts: `send_welcome_msg` (a welcome code is good for 20 seconds, once), tags
  (`get_corp_tag_list`, `add_corp_tag`, `mark_tag`), contact-me ways (`add_contact_way`,
  `get_contact_way`) and customer groups (`groupchat/list`, `groupchat/get`).
- `fail_next(path, errcode)` makes the next call of an endpoint fail (45009, 45033 …).

It also plays WeCom's side of callbacks: `callback(fields)` encrypts an event the way WeCom does and
returns the query and XML body to POST to carebot's callback URL.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Callable
from xml.sax.saxutils import escape

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.wecom.crypto import WeComCrypto

# the fake's error codes (WeCom's global error codes where WeCom documents them)
INVALID_SECRET, INVALID_TOKEN, TOKEN_EXPIRED = 40001, 40014, 42001
FREQ_LIMIT, CONCURRENT_LIMIT = 45009, 45033
KF_STATE_REFUSES_SEND = 95018  # the session is with a human servicer or ended: the API may not send
KF_OUTSIDE_WINDOW = 95026  # no customer message in the last 48 hours, or 5 messages already sent
KF_DUPLICATE_MSGID = 95033
INVALID_CODE = 41051  # a welcome code used twice or too late
WINDOW_SECONDS, WINDOW_MESSAGES = 48 * 3600, 5


@dataclass
class KfMessage:
    msgid: str
    open_kfid: str
    external_userid: str
    send_time: int
    origin: int  # 3 the customer, 4 a system event, 5 a servicer
    msgtype: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"msgid": self.msgid, "open_kfid": self.open_kfid, "external_userid": self.external_userid,
                "send_time": self.send_time, "origin": self.origin, "msgtype": self.msgtype,
                self.msgtype: self.body}


@dataclass
class Window:
    last_customer_at: float = 0.0
    sent: int = 0


@dataclass
class FakeWeCom:
    corp_id: str = "wwcarebot0000test"
    token: str = "callbacktoken"
    aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    secrets: dict[str, str] = field(default_factory=lambda: {"kf-secret": "kf", "app-secret": "app",
                                                             "contact-secret": "contact"})
    now: Callable[[], float] = time.time  # the fake's clock (tests pass their pinned clock)
    expires_in: int = 7200
    member_limit: tuple[int, float] = (30, 60.0)  # messages per member per seconds (real time)
    gettoken_delay: float = 0.0

    def __post_init__(self) -> None:
        self.crypto = WeComCrypto(self.token, self.aes_key, self.corp_id)
        self.tokens: dict[str, tuple[str, float]] = {}  # access token → (secret, expires at)
        self.gettoken_calls: dict[str, int] = defaultdict(int)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.kf_messages: list[KfMessage] = []
        self.kf_sent: list[dict[str, Any]] = []
        self.kf_msgids: set[str] = set()
        self.service_state: dict[tuple[str, str], tuple[int, str]] = {}
        self.windows: dict[tuple[str, str], Window] = defaultdict(Window)
        self.welcome_codes: dict[str, tuple[float, bool]] = {}  # code → (issued at, used)
        self.welcomes: list[dict[str, Any]] = []
        self.kf_welcome_codes: dict[str, bool] = {}
        self.tag_groups: list[dict[str, Any]] = []
        self.marked: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.contact_ways: dict[str, dict[str, Any]] = {}
        self.group_chats: dict[str, dict[str, Any]] = {}
        self.appchats: dict[str, dict[str, Any]] = {}
        self.delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)  # member → messages received
        self.dropped: dict[str, int] = defaultdict(int)
        self._member_hits: dict[str, deque[float]] = defaultdict(deque)
        self._failures: dict[str, list[int]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------------------------

    def start(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        app = Starlette(routes=[Route("/cgi-bin/{path:path}", self._handle, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake WeCom API did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(5)

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        self._failures[path].extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every access token expires now (the next call with one answers 42001)."""
        self.tokens = {t: (s, self.now() - 1) for t, (s, _) in self.tokens.items()}

    # -- WeCom's side: what happens on the platform ---------------------------------------------------

    def customer_says(self, open_kfid: str, external_userid: str, text: str = "", *, msgtype: str = "text",
                      body: dict[str, Any] | None = None) -> KfMessage:
        """A WeChat user writes to the kf account: the message waits for sync_msg, the window opens."""
        message = KfMessage(f"msg{next(self._ids)}", open_kfid, external_userid, int(self.now()), 3, msgtype,
                            body if body is not None else {"content": text})
        with self._lock:
            self.kf_messages.append(message)
            self.windows[(open_kfid, external_userid)] = Window(self.now(), 0)
            state = self.service_state.get((open_kfid, external_userid), (0, ""))
            if state[0] == 4:
                self.service_state[(open_kfid, external_userid)] = (0, "")
        return message

    def kf_event(self, open_kfid: str, external_userid: str, event: dict[str, Any]) -> KfMessage:
        message = KfMessage(f"evt{next(self._ids)}", open_kfid, external_userid, int(self.now()), 4, "event",
                            {"open_kfid": open_kfid, "external_userid": external_userid, **event})
        with self._lock:
            self.kf_messages.append(message)
        return message

    def enter_session(self, open_kfid: str, external_userid: str, scene_param: str = "") -> str:
        code = f"kfwelcome{next(self._ids)}"
        self.kf_welcome_codes[code] = False
        self.kf_event(open_kfid, external_userid, {"event_type": "enter_session", "scene": "carebot",
                                                   "scene_param": scene_param, "welcome_code": code})
        return code

    def add_contact(self, userid: str, external_userid: str, state: str = "") -> dict[str, str]:
        """A WeChat user adds a staff member (by a contact-me QR): the callback fields WeCom sends."""
        code = f"welcome{next(self._ids)}"
        self.welcome_codes[code] = (self.now(), False)
        fields = {"ToUserName": self.corp_id, "FromUserName": "sys", "CreateTime": str(int(self.now())),
                  "MsgType": "event", "Event": "change_external_contact", "ChangeType": "add_external_contact",
                  "UserID": userid, "ExternalUserID": external_userid, "WelcomeCode": code}
        if state:
            fields["State"] = state
        return fields

    def kf_callback_fields(self, open_kfid: str) -> dict[str, str]:
        return {"ToUserName": self.corp_id, "CreateTime": str(int(self.now())), "MsgType": "event",
                "Event": "kf_msg_or_event", "Token": f"synctoken{next(self._ids)}", "OpenKfId": open_kfid}

    def callback(self, fields: dict[str, str], *, timestamp: int | None = None) -> tuple[dict[str, str], str]:
        """Encrypt an event as WeCom does: the query (msg_signature, timestamp, nonce) and the XML body."""
        inner = "<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items()) + "</xml>"
        ts = str(timestamp if timestamp is not None else int(self.now()))
        nonce = str(secrets.randbelow(10**9))
        encrypt, signature = self.crypto.encrypt(inner, nonce, ts)
        body = f"<xml><ToUserName><![CDATA[{escape(self.corp_id)}]]></ToUserName>" \
               f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body

    def url_check(self, echo: str = "carebot-echo-123") -> dict[str, str]:
        ts, nonce = str(int(self.now())), "42"
        encrypt, signature = self.crypto.encrypt(echo, nonce, ts)
        return {"msg_signature": signature, "timestamp": ts, "nonce": nonce, "echostr": encrypt}

    def add_group_chat(self, chat_id: str, owner: str, name: str, members: list[str]) -> None:
        self.group_chats[chat_id] = {"chat_id": chat_id, "name": name, "owner": owner,
                                     "create_time": int(self.now()), "member_list": [
                                         {"userid": m, "type": 2 if m.startswith("wm") else 1,
                                          "join_time": int(self.now()), "join_scene": 3} for m in members],
                                     "admin_list": []}

    # -- the HTTP API ---------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        path = request.path_params["path"]
        body: dict[str, Any] = {}
        if request.method == "POST":
            raw = await request.body()
            if raw:
                import json

                body = json.loads(raw)
        query = dict(request.query_params)
        with self._lock:
            self.calls.append((path, body))
        if path == "gettoken":
            if self.gettoken_delay:
                await asyncio.sleep(self.gettoken_delay)
            return JSONResponse(self._gettoken(query))
        failures = self._failures.get(path)
        if failures:
            return JSONResponse({"errcode": failures.pop(0), "errmsg": "injected failure"})
        token = query.get("access_token", "")
        known = self.tokens.get(token)
        if known is None:
            return JSONResponse({"errcode": INVALID_TOKEN, "errmsg": "invalid access_token"})
        if known[1] <= self.now():
            return JSONResponse({"errcode": TOKEN_EXPIRED, "errmsg": "access_token expired"})
        handler = getattr(self, "_" + path.replace("/", "_"), None)
        if handler is None:
            return JSONResponse({"errcode": 60011, "errmsg": f"no such api {path}"}, status_code=404)
        with self._lock:
            result = handler(body, known[0])
        return JSONResponse({"errcode": 0, "errmsg": "ok", **result} if "errcode" not in result else result)

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        secret = query.get("corpsecret", "")
        if query.get("corpid") != self.corp_id or secret not in self.secrets:
            return {"errcode": INVALID_SECRET, "errmsg": "invalid credential"}
        self.gettoken_calls[secret] += 1
        token = f"tok-{self.secrets[secret]}-{secrets.token_hex(6)}"
        self.tokens[token] = (secret, self.now() + self.expires_in)
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    @staticmethod
    def _error(code: int, message: str) -> dict[str, Any]:
        return {"errcode": code, "errmsg": message}

    # kf ---------------------------------------------------------------------------------------------

    def _kf_sync_msg(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        kfid = body.get("open_kfid", "")
        mine = [m for m in self.kf_messages if not kfid or m.open_kfid == kfid]
        start = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit") or 1000), 1000)
        page = mine[start:start + limit]
        return {"next_cursor": str(start + len(page)), "has_more": int(start + len(page) < len(mine)),
                "msg_list": [m.to_json() for m in page]}

    def _kf_send_msg(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        key = (body.get("open_kfid", ""), body.get("touser", ""))
        msgid = body.get("msgid") or f"sent{next(self._ids)}"
        if msgid in self.kf_msgids:
            return self._error(KF_DUPLICATE_MSGID, "msgid already exists")
        state = self.service_state.get(key, (0, ""))[0]
        if state not in (0, 1):
            return self._error(KF_STATE_REFUSES_SEND, f"session state {state} does not allow API messages")
        window = self.windows.get(key)
        if window is None or self.now() - window.last_customer_at > WINDOW_SECONDS or window.sent >= WINDOW_MESSAGES:
            return self._error(KF_OUTSIDE_WINDOW, "outside the 48-hour / 5-message window")
        window.sent += 1
        self.kf_msgids.add(msgid)
        self.kf_sent.append(body)
        return {"msgid": msgid}

    def _kf_send_msg_on_event(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        code = body.get("code", "")
        if self.kf_welcome_codes.get(code, True):
            return self._error(INVALID_CODE, "invalid or used code")
        self.kf_welcome_codes[code] = True
        self.kf_sent.append({**body, "on_event": True})
        return {"msgid": f"welcome{next(self._ids)}"}

    def _kf_service_state_get(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        state, servicer = self.service_state.get((body.get("open_kfid", ""), body.get("external_userid", "")), (0, ""))
        return {"service_state": state, "servicer_userid": servicer}

    def _kf_service_state_trans(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        key = (body.get("open_kfid", ""), body.get("external_userid", ""))
        state = int(body.get("service_state", -1))
        if state not in (1, 2, 3, 4):
            return self._error(95014, "invalid service_state")
        if state == 3 and not body.get("servicer_userid"):
            return self._error(95014, "servicer_userid is required for state 3")
        self.service_state[key] = (state, body.get("servicer_userid", "") if state == 3 else "")
        return {"msg_code": f"code{next(self._ids)}"}

    def servicer_ends_session(self, open_kfid: str, external_userid: str, servicer: str) -> None:
        """The human servicer ends the session in the WeCom app (state 4: ended)."""
        self.service_state[(open_kfid, external_userid)] = (4, "")
        self.kf_event(open_kfid, external_userid, {"event_type": "session_status_change", "change_type": 3,
                                                   "old_servicer_userid": servicer, "msg_code": "endcode"})

    # application messages and group chats ------------------------------------------------------------

    def _deliver(self, member: str, message: dict[str, Any]) -> None:
        limit, per = self.member_limit
        hits = self._member_hits[member]
        now = time.monotonic()
        while hits and hits[0] <= now - per:
            hits.popleft()
        if len(hits) >= limit:
            self.dropped[member] += 1  # WeCom accepts it and nobody ever sees it
            return
        hits.append(now)
        self.delivered[member].append(message)

    def _message_send(self, body: dict[str, Any], secret: str) -> dict[str, Any]:
        if self.secrets.get(secret) != "app":
            return self._error(48002, "api forbidden for this secret")
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        if not users:
            return self._error(40031, "invalid user list")
        for user in users:
            self._deliver(user, {"via": "app", **body})
        return {"invaliduser": "", "msgid": f"app{next(self._ids)}"}

    def _appchat_create(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        users = list(body.get("userlist", []))
        if len(users) < 2:
            return self._error(86215, "a group chat needs at least 2 members")
        chatid = body.get("chatid") or f"chat{next(self._ids)}"
        if chatid in self.appchats:
            return self._error(86215, "chatid exists")
        self.appchats[chatid] = {"name": body.get("name", ""), "owner": body.get("owner") or users[0],
                                 "userlist": users, "messages": []}
        return {"chatid": chatid}

    def _appchat_update(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        chat = self.appchats.get(body.get("chatid", ""))
        if chat is None:
            return self._error(86003, "chat not found")
        chat["userlist"] = [u for u in chat["userlist"] if u not in body.get("del_user_list", [])]
        chat["userlist"] += [u for u in body.get("add_user_list", []) if u not in chat["userlist"]]
        return {}

    def _appchat_send(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        chat = self.appchats.get(body.get("chatid", ""))
        if chat is None:
            return self._error(86003, "chat not found")
        chat["messages"].append(body)
        for member in chat["userlist"]:
            self._deliver(member, {"via": "appchat", "chatid": body["chatid"], **body})
        return {}

    # external contacts ------------------------------------------------------------------------------

    def _externalcontact_send_welcome_msg(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        code = body.get("welcome_code", "")
        issued = self.welcome_codes.get(code)
        if issued is None or issued[1] or self.now() - issued[0] > 20:
            return self._error(INVALID_CODE, "invalid welcome_code: used, unknown or older than 20 seconds")
        self.welcome_codes[code] = (issued[0], True)
        self.welcomes.append({**body, "at": self.now()})
        return {}

    def _externalcontact_get_corp_tag_list(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        return {"tag_group": self.tag_groups}

    def _externalcontact_add_corp_tag(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        name = body.get("group_name", "")
        group = next((g for g in self.tag_groups if g["group_name"] == name), None)
        if group is None:
            group = {"group_id": f"et{next(self._ids)}", "group_name": name, "tag": []}
            self.tag_groups.append(group)
        added = []
        for tag in body.get("tag", []):
            if any(t["name"] == tag["name"] for t in group["tag"]):
                return self._error(40071, "tag name exists")
            added.append({"id": f"et{next(self._ids)}", "name": tag["name"]})
        group["tag"].extend(added)
        return {"tag_group": {"group_id": group["group_id"], "group_name": name, "tag": added}}

    def _externalcontact_mark_tag(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        known = {t["id"] for g in self.tag_groups for t in g["tag"]}
        tags = list(body.get("add_tag", [])) + list(body.get("remove_tag", []))
        if any(t not in known for t in tags):
            return self._error(40068, "invalid tagid")
        key = (body.get("userid", ""), body.get("external_userid", ""))
        self.marked[key] |= set(body.get("add_tag", []))
        self.marked[key] -= set(body.get("remove_tag", []))
        return {}

    def tag_names(self, userid: str, external_userid: str) -> set[str]:
        names = {t["id"]: t["name"] for g in self.tag_groups for t in g["tag"]}
        return {names[t] for t in self.marked[(userid, external_userid)]}

    def _externalcontact_add_contact_way(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        if len(body.get("state", "")) > 30:
            return self._error(40058, "state is longer than 30 characters")
        config_id = f"cw{next(self._ids)}"
        way = {"config_id": config_id, "type": body.get("type"), "scene": body.get("scene"),
               "state": body.get("state", ""), "user": body.get("user", []),
               "qr_code": f"https://wework.qpic.cn/wwpic/{config_id}/0"}
        self.contact_ways[config_id] = way
        return {"config_id": config_id, "qr_code": way["qr_code"]}

    def _externalcontact_get_contact_way(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        way = self.contact_ways.get(body.get("config_id", ""))
        return {"contact_way": way} if way else self._error(41044, "invalid config_id")

    def _externalcontact_groupchat_list(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        ids = sorted(self.group_chats)
        start = int(body.get("cursor") or 0)
        limit = int(body.get("limit") or 100)
        page = ids[start:start + limit]
        more = start + len(page) < len(ids)
        return {"group_chat_list": [{"chat_id": c, "status": 0} for c in page],
                "next_cursor": str(start + len(page)) if more else ""}

    def _externalcontact_groupchat_get(self, body: dict[str, Any], _secret: str) -> dict[str, Any]:
        chat = self.group_chats.get(body.get("chat_id", ""))
        return {"group_chat": chat} if chat else self._error(40050, "invalid chat_id")
