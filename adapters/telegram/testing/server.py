"""A fake Telegram Bot API: a real HTTP server on loopback speaking the subset of methods carebot
calls, with Telegram's JSON envelope, limits and errors — so the adapter, aiogram and
python-telegram-bot are tested over HTTP exactly as they meet Telegram, never with mocks.

    POST|GET /bot<token>/<method>      JSON, x-www-form-urlencoded or multipart (files: attach://)
    GET      /file/bot<token>/<path>   a file's bytes (after getFile)

Every answer is `{"ok": true, "result": …}` or `{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": …}}`. What it enforces, as Telegram does (core.telegram.org/bots/faq,
/bots/api):

- limits on sent messages: ~30 per second for the whole bot, about one per second in one chat
  (short bursts allowed), 20 per minute in one group → 429 `Too Many Requests: retry after N`;
- 403 `Forbidden: bot was blocked by the user`, 400 `Bad Request: chat not found`, 401 for a wrong
  token, 409 for getUpdates while a webhook is set;
- texts of 1-4096 characters after entity parsing, HTML that parses (only Telegram's tags, `<`,
  `>` and `&` escaped), callback data of 1-64 bytes, only http(s)/tg URLs in buttons.

A test plays Telegram's side through it: `push(update)` hands an update to the webhook that
`setWebhook` set (with the secret header) or queues it for `getUpdates`; `sent` and `calls` show
what the bot did. Sizes are the real ones unless `Limits` is given (the benchmark scales them).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import ClientSession, ClientTimeout, web

from adapters.telegram.testing.moderation import ModerationAPI


@dataclass(frozen=True)
class Window:
    """At most `count` events in any `seconds`."""

    count: int
    seconds: float


@dataclass(frozen=True)
class Limits:
    overall: Window = Window(30, 1.0)
    per_chat: Window = Window(3, 3.0)  # "avoid more than one message per second", short bursts allowed
    per_group: Window = Window(20, 60.0)


@dataclass
class SentMessage:
    """A message the bot sent (or edited), as the fake keeps it."""

    chat_id: int
    message_id: int
    method: str
    text: str = ""  # as sent (HTML source when parse_mode is HTML)
    parse_mode: str = ""
    reply_markup: dict[str, Any] | None = None
    thread_id: int | None = None
    reply_to: int | None = None
    contact: dict[str, Any] | None = None
    file: bytes | str | None = None  # uploaded bytes, or the file id / URL named
    caption: str = ""
    at: float = 0.0

    @property
    def visible(self) -> str:
        """The text a person reads: tags removed, entities decoded."""
        source = self.text or self.caption
        return html.unescape(_TAG.sub("", source)) if self.parse_mode == "HTML" else source

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [b for row in rows for b in row]


class ApiError(Exception):
    def __init__(self, code: int, description: str, **parameters: Any):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


RATED = frozenset({"sendMessage", "sendPhoto", "sendDocument", "sendContact", "sendLocation", "copyMessage"})
_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a", "tg-spoiler", "span",
         "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)([^<>]*)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_JSON_FIELDS = {"reply_markup", "reply_parameters", "allowed_updates", "entities", "caption_entities",
                "link_preview_options", "permissions"}


def check_html(text: str) -> str:
    """The visible text of Telegram HTML, or ApiError as Telegram refuses it."""
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None or m.group(2).lower() not in _TAGS:
                name = m.group(2) if m else text[i + 1:i + 8]
                raise ApiError(400, f"Bad Request: can't parse entities: Unsupported start tag \"{name}\" at "
                                    f"byte offset {len(text[:i].encode())}")
            tag = m.group(2).lower()
            if m.group(1):
                if not stack or stack.pop() != tag:
                    raise ApiError(400, f"Bad Request: can't parse entities: Unmatched end tag at byte offset "
                                        f"{len(text[:i].encode())}, expected \"</{stack[-1] if stack else ''}>\"")
            else:
                stack.append(tag)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                raise ApiError(400, "Bad Request: can't parse entities: Can't find end of the entity starting at "
                                    f"byte offset {len(text[:i].encode())}")
            i = m.end()
        elif ch == ">":
            raise ApiError(400, f"Bad Request: can't parse entities: Unexpected end tag at byte offset "
                                f"{len(text[:i].encode())}")
        else:
            i += 1
    if stack:
        raise ApiError(400, f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
                            f"\"{stack[-1]}\"")
    return html.unescape(_TAG.sub("", text))


class FakeBotAPI(ModerationAPI):
    def __init__(self, token: str = "123456789:AAFakeTokenForCarebotTests_0123456789", *,
                 username: str = "carebot_test_bot", limits: Limits | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.limits = limits or Limits()
        self.clock = clock
        self.chats: dict[int, dict[str, Any]] = {}
        self.blocked: set[int] = set()  # users who blocked the bot
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, dict[str, Any], int]] = []  # (method, params, HTTP status)
        self.answered: dict[str, dict[str, Any]] = {}  # callback query id → the answer
        self.files: dict[str, tuple[bytes, str]] = {}  # file_id → (bytes, path)
        self.topics: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)  # chat → thread → topic
        self.webhook: dict[str, Any] = {}
        self.webhook_errors: list[str] = []
        self.rate_limited = 0  # how many requests got a 429
        self._queue: deque[dict[str, Any]] = deque()  # updates for getUpdates
        self._queued = asyncio.Event()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._message_ids: dict[int, itertools.count[int]] = defaultdict(lambda: itertools.count(1000))
        self._update_ids = itertools.count(100_000)
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None
        self.base_url = ""
        self._init_moderation()  # group members, the bot's rights, members' messages (moderation.py)

    # -- the world the bot lives in ----------------------------------------------------------------

    @property
    def me(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "carebot", "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def private(self, user_id: int, first_name: str = "Patient", language_code: str = "zh-hans") -> dict[str, Any]:
        """A person the bot can write to (they opened the chat); returns the `from` user object."""
        self.chats[user_id] = {"id": user_id, "type": "private", "first_name": first_name}
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    def user(self, user_id: int, first_name: str = "Member", language_code: str = "zh-hans") -> dict[str, Any]:
        """A person who has not opened a chat with the bot (the bot cannot write to them)."""
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    def group(self, chat_id: int, title: str = "Patients", *, forum: bool = False) -> dict[str, Any]:
        """A supergroup (ids below -100…), optionally with forum topics; returns its chat object."""
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        return dict(chat)

    def migrate(self, old_id: int, new_id: int) -> None:
        """A group became a supergroup: the old id is gone (sends there get `migrate_to_chat_id`)."""
        chat = self.chats.pop(old_id, {"title": "Patients"})
        self.chats[new_id] = {**chat, "id": new_id, "type": "supergroup"}
        self.chats[old_id] = {"migrated_to": new_id}

    def put_file(self, data: bytes, name: str = "file.bin") -> str:
        """A file a user sent: its file_id (getFile then serves the bytes)."""
        file_id = f"F{secrets.token_hex(8)}"
        self.files[file_id] = (data, f"documents/{file_id}_{name}")
        return file_id

    def messages(self, chat_id: int, thread_id: int | None = None) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id and (thread_id is None or m.thread_id == thread_id)]

    def texts(self, chat_id: int, thread_id: int | None = None) -> list[str]:
        return [m.visible for m in self.messages(chat_id, thread_id) if m.method != "editMessageReplyMarkup"]

    # -- Telegram's side of an update -----------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def push(self, update: dict[str, Any]) -> int:
        """Deliver one update as Telegram would: POSTed to the webhook (the HTTP status is returned;
        a non-2xx answer would be retried by Telegram, so it is kept as pending) or queued for
        getUpdates (returns 0)."""
        if not self.webhook.get("url"):
            self._queue.append(update)
            self._queued.set()
            return 0
        headers = {"Content-Type": "application/json"}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        return await self.post_webhook(json.dumps(update).encode(), headers)

    async def post_webhook(self, body: bytes, headers: dict[str, str]) -> int:
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=60))
        async with self._client.post(self.webhook["url"], data=body, headers=headers) as response:
            await response.read()
            if not 200 <= response.status < 300:
                self.webhook_errors.append(f"Wrong response from the webhook: {response.status}")
            return response.status

    # -- the server -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{host}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        for data, path in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            params = await self._params(request)
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            if method in RATED:
                self._rate(params)
            result = await handler(params) if asyncio.iscoroutinefunction(handler) else handler(params)
        except ApiError as exc:
            self.calls.append((method, params, exc.code))
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
            return web.json_response(body, status=exc.code)
        self.calls.append((method, params, 200))
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.read()
            if body:
                try:
                    params.update(json.loads(body))
                except ValueError:
                    raise ApiError(400, "Bad Request: can't parse JSON object") from None
        elif request.content_type == "multipart/form-data":
            files: dict[str, bytes] = {}
            reader = await request.multipart()
            async for part in reader:
                if part.filename is not None and part.name:
                    files[part.name] = bytes(await part.read())
                elif part.name:
                    params[part.name] = await part.text()
            for key, value in list(params.items()):
                if isinstance(value, str) and value.startswith("attach://"):
                    params[key] = files.get(value.removeprefix("attach://"), b"")
        elif request.method == "POST":
            params.update(await request.post())
        for key in _JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
        return params

    def _rate(self, params: dict[str, Any]) -> None:
        chat_id = self._chat_id(params)
        chat = self.chats.get(chat_id, {})
        now = self.clock()
        windows = [("all", self.limits.overall), (f"chat:{chat_id}", self.limits.per_chat)]
        if chat.get("type") in ("group", "supergroup"):
            windows.append((f"group:{chat_id}", self.limits.per_group))
        for key, limit in windows:
            hits = self._windows[key]
            while hits and hits[0] <= now - limit.seconds:
                hits.popleft()
            if len(hits) >= limit.count:
                wait = max(1, math.ceil(hits[0] + limit.seconds - now))
                self.rate_limited += 1
                raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        for key, _limit in windows:
            self._windows[key].append(now)

    # -- methods ---------------------------------------------------------------------------------------

    def _chat_id(self, params: dict[str, Any]) -> int:
        try:
            return int(params.get("chat_id", ""))
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if "migrated_to" in chat:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=chat["migrated_to"])
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _m_getMe(self, _params: dict[str, Any]) -> dict[str, Any]:
        return self.me

    def _message(self, method: str, params: dict[str, Any], chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
        thread = params.get("message_thread_id")
        thread_id = int(thread) if thread not in (None, "") else None
        if thread_id is not None and thread_id not in self.topics.get(chat["id"], {}):
            raise ApiError(400, "Bad Request: message thread not found")
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        markup = params.get("reply_markup")
        self._check_markup(markup)
        record = SentMessage(chat["id"], next(self._message_ids[chat["id"]]), method, reply_markup=markup,
                             thread_id=thread_id, reply_to=int(reply_to) if reply_to else None, at=self.clock(),
                             **fields)
        self.sent.append(record)
        message: dict[str, Any] = {"message_id": record.message_id, "from": self.me, "chat": dict(chat),
                                   "date": int(time.time())}
        if record.text:
            message["text"] = record.visible
        if markup:
            message["reply_markup"] = markup
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if record.contact:
            message["contact"] = record.contact
        return message

    def _text(self, params: dict[str, Any], name: str = "text", limit: int = 4096, required: bool = True) -> str:
        text = str(params.get(name, ""))
        visible = check_html(text) if params.get("parse_mode") == "HTML" else text
        if required and not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(visible.encode("utf-16-le")) // 2 > limit:
            raise ApiError(400, "Bad Request: message is too long" if name == "text"
                           else "Bad Request: message caption is too long")
        return text

    def _check_markup(self, markup: Any) -> None:
        if not markup:
            return
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if rows is None:
            return
        buttons = [b for row in rows for b in row]
        if len(buttons) > 100:
            raise ApiError(400, "Bad Request: reply markup is too long")
        for button in buttons:
            if not str(button.get("text", "")).strip():
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and not re.match(r"(https?|tg)://", str(url)):
                raise ApiError(400, f"Bad Request: inline keyboard button URL '{url}' is invalid: unsupported "
                                    "URL protocol")

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        text = self._text(params)
        return self._message("sendMessage", params, chat, text=text, parse_mode=str(params.get("parse_mode", "")))

    def _media(self, method: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        value = params.get(name)
        if not value:
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        if isinstance(value, str) and value not in self.files and not value.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = self._text(params, "caption", 1024, required=False)
        message = self._message(method, params, chat, file=value, caption=caption,
                                parse_mode=str(params.get("parse_mode", "")))
        if isinstance(value, bytes):
            file_id = f"F{secrets.token_hex(8)}"
            self.files[file_id] = (value, f"{name}s/{file_id}")
        else:
            file_id = value
        if name == "photo":
            message["photo"] = [{"file_id": file_id, "file_unique_id": file_id[:8], "width": 800, "height": 600}]
        else:
            message["document"] = {"file_id": file_id, "file_unique_id": file_id[:8]}
        if caption:
            message["caption"] = self.sent[-1].visible
        return message

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._media("sendPhoto", "photo", params)

    def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._media("sendDocument", "document", params)

    def _m_sendContact(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        if not params.get("phone_number") or not params.get("first_name"):
            raise ApiError(400, "Bad Request: phone number and first name must be non-empty")
        contact = {"phone_number": str(params["phone_number"]), "first_name": str(params["first_name"])}
        return self._message("sendContact", params, chat, contact=contact)

    def _edit(self, params: dict[str, Any]) -> SentMessage:
        chat = self._chat(params)
        message_id = int(params.get("message_id", 0) or 0)
        for record in self.sent:
            if record.chat_id == chat["id"] and record.message_id == message_id:
                return record
        raise ApiError(400, "Bad Request: message to edit not found")

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._edit(params)
        markup = params.get("reply_markup") or None
        if markup == record.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply "
                                "markup are exactly the same as a current content and reply markup of the message")
        self._check_markup(markup)
        record.reply_markup = markup
        self.sent.append(SentMessage(record.chat_id, record.message_id, "editMessageReplyMarkup",
                                     reply_markup=markup, at=self.clock()))
        return {"message_id": record.message_id, "chat": self.chats[record.chat_id], "date": int(time.time()),
                "from": self.me}

    def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._edit(params)
        record.text = self._text(params)
        record.parse_mode = str(params.get("parse_mode", ""))
        record.reply_markup = params.get("reply_markup") or None
        return {"message_id": record.message_id, "chat": self.chats[record.chat_id], "date": int(time.time()),
                "from": self.me, "text": record.visible}

    def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        return self._delete(params)  # the bot's own message, or a member's with the right (moderation.py)

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if not query_id or query_id in self.answered:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self.answered[query_id] = {"text": params.get("text", ""), "show_alert": params.get("show_alert", False)}
        return True

    def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        data, path = self.files[file_id]
        if len(data) > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": file_id[:8], "file_size": len(data), "file_path": path}

    def _m_createForumTopic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        if not chat.get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        name = str(params.get("name", ""))
        if not 1 <= len(name) <= 128:
            raise ApiError(400, "Bad Request: TOPIC_TITLE_EMPTY" if not name else "Bad Request: TOPIC_TITLE_TOO_LONG")
        thread_id = next(self._message_ids[chat["id"]])
        topic = {"message_thread_id": thread_id, "name": name, "icon_color": 7322096}
        self.topics[chat["id"]][thread_id] = {**topic, "closed": False}
        return topic

    def _topic(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(params)
        topic = self.topics.get(chat["id"], {}).get(int(params.get("message_thread_id", 0) or 0))
        if topic is None:
            raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return topic

    def _m_editForumTopic(self, params: dict[str, Any]) -> bool:
        topic = self._topic(params)
        if params.get("name"):
            topic["name"] = str(params["name"])
        return True

    def _m_closeForumTopic(self, params: dict[str, Any]) -> bool:
        topic = self._topic(params)
        if topic["closed"]:
            raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic["closed"] = True
        return True

    def _m_reopenForumTopic(self, params: dict[str, Any]) -> bool:
        topic = self._topic(params)
        if not topic["closed"]:
            raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic["closed"] = False
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url", ""))
        secret = str(params.get("secret_token", ""))
        if url and not url.startswith(("https://", "http://127.", "http://localhost")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret and not _SECRET.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._queue.clear()
        self.webhook = {"url": url, "secret_token": secret,
                        "allowed_updates": params.get("allowed_updates") or []} if url else {}
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._queue.clear()
        self.webhook = {}
        return True

    def _m_getWebhookInfo(self, _params: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                                "pending_update_count": len(self._queue)}
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        if self.webhook_errors:
            info["last_error_date"] = int(time.time())
            info["last_error_message"] = self.webhook_errors[-1]
        return info

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                                "to delete the webhook first")
        offset = int(params.get("offset", 0) or 0)
        limit = min(100, int(params.get("limit", 100) or 100))
        timeout = min(50.0, float(params.get("timeout", 0) or 0))
        while self._queue and offset and self._queue[0]["update_id"] < offset:
            self._queue.popleft()  # confirmed by the offset: Telegram forgets them
        if not self._queue and timeout > 0:
            self._queued.clear()
            try:
                await asyncio.wait_for(self._queued.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return list(itertools.islice(self._queue, limit))

    def _m_setMyCommands(self, _params: dict[str, Any]) -> bool:
        return True

    def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        return True

