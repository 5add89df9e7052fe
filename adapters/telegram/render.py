"""One carebot `Outbound` → the Bot API calls that deliver it (aiogram method objects; a text
message — most of what carebot sends — as a `Text`, which writes its own JSON body). Pure.

- Text is HTML (`parse_mode=HTML`); every character a patient, a doctor or an operator wrote is
  escaped, so `<`, `>` and `&` show as written and never break or inject markup. A staff reply is
  headed by the doctor's name in bold.
- Past 4,096 characters the text is cut at line breaks (else spaces) into several messages; the
  buttons ride on the last one.
- Buttons become an inline keyboard. A value that fits Telegram's 64-byte `callback_data` is sent
  as it is; a longer one as `#<index>`, resolved from the live keyboard the adapter keeps.
- An emergency message (`extra.call`: the numbers, ambulance first) is followed by one contact
  card per number. Telegram's inline buttons cannot open `tel:` links (only http(s) and tg://),
  and short numbers such as 120 are not turned into links in a message; a shared contact is the
  one thing a patient taps to call in every Telegram client.
- Media goes by Telegram file id (`telegram:<file_id>`, e.g. a photo the patient sent, shown to
  staff) or by http(s) URL; the text is its caption when it fits (1,024 characters).
"""

from __future__ import annotations

import functools
import html
import json
from dataclasses import dataclass, replace
from typing import Any, Callable

from aiogram.methods import SendContact, SendDocument, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.types import Button, Outbound

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64
MAX_BUTTONS = 100  # Telegram refuses a longer reply markup
HTML = "HTML"


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` characters, cut at the last line break (else space) before it."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text or not parts:
        parts.append(text)
    return parts


def callback_data(button: Button, index: int) -> str:
    value = button.value
    if value and not value.startswith("#") and len(value.encode()) <= MAX_CALLBACK_BYTES:
        return value
    return f"#{index}"


@functools.lru_cache(maxsize=4096)
def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """The inline keyboard for these buttons. Cached: a flow offers the same few sets again and
    again, and building the models is most of what rendering a message costs (the markup is never
    changed in place; `model_copy` makes a changed one)."""
    if not buttons:
        return None
    items = [InlineKeyboardButton(text=b.label or b.value, callback_data=callback_data(b, i))
             for i, b in enumerate(buttons[:MAX_BUTTONS])]
    per_row = 2 if all(len(b.text) <= 12 for b in items) else 1
    return InlineKeyboardMarkup(inline_keyboard=[items[i:i + per_row] for i in range(0, len(items), per_row)])


@functools.lru_cache(maxsize=4096)
def keyboard_json(buttons: tuple[Button, ...]) -> str:
    """The keyboard as it goes in a JSON body, serialised once per button set (serialising the
    models again for every message cost several times the rest of the body)."""
    markup = keyboard(buttons)
    return markup.model_dump_json(exclude_unset=True, exclude_none=True) if markup is not None else ""


@dataclass(frozen=True, slots=True)
class Text:
    """A `sendMessage` of HTML text, without building aiogram's `SendMessage` for each message (its
    validation was most of what planning a message cost): `body()` is the JSON the Bot API takes —
    the same fields `SendMessage.model_dump_json(exclude_unset=True, exclude_none=True)` gives, the
    keyboard's JSON cached per button set — and `method()` builds the aiogram model for any other
    road (a proxy, an error to read). `model_copy` is the models' own way to change a field."""

    chat_id: int | str
    text: str
    buttons: tuple[Button, ...] = ()
    message_thread_id: int | None = None
    reply_parameters: ReplyParameters | None = None
    parse_mode: str = HTML

    @property
    def reply_markup(self) -> InlineKeyboardMarkup | None:
        return keyboard(self.buttons) if self.buttons else None

    def model_copy(self, update: dict[str, Any]) -> Text:
        return replace(self, **update)

    def method(self) -> SendMessage:
        fields: dict[str, Any] = {"chat_id": self.chat_id, "text": self.text, "parse_mode": self.parse_mode}
        if self.message_thread_id is not None:
            fields["message_thread_id"] = self.message_thread_id
        if self.reply_parameters is not None:
            fields["reply_parameters"] = self.reply_parameters
        if self.buttons:
            fields["reply_markup"] = keyboard(self.buttons)
        return SendMessage(**fields)

    def body(self) -> bytes:
        fields: dict[str, Any] = {"chat_id": self.chat_id}
        if self.message_thread_id is not None:
            fields["message_thread_id"] = self.message_thread_id
        fields["text"] = self.text
        fields["parse_mode"] = self.parse_mode
        if self.reply_parameters is not None:
            fields["reply_parameters"] = self.reply_parameters.model_dump(mode="json", exclude_unset=True,
                                                                          exclude_none=True)
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        if self.buttons:
            body = f'{body[:-1]},"reply_markup":{keyboard_json(self.buttons)}}}'
        return body.encode()


def _file(ref: str) -> str | None:
    if ref.startswith("telegram:"):
        return ref.removeprefix("telegram:")
    if ref.startswith(("https://", "http://")):
        return ref
    return None


def plan(outbound: Outbound, chat_id: int | str, *, reply_to: int = 0,
         call_label: Callable[[str], str] = lambda n: n) -> list[TelegramMethod[Any] | Text]:
    """The calls that deliver a `say`, in order."""
    thread = int(outbound.address.thread_id) if outbound.address.thread_id.lstrip("-").isdigit() else None
    common: dict[str, Any] = {"chat_id": chat_id}
    if thread is not None:
        common["message_thread_id"] = thread
    head = f"<b>{escape(outbound.sender_name)}</b>\n" if outbound.sender_name and outbound.sender != "bot" else ""
    budget = MAX_TEXT - len(outbound.sender_name) - 1 if head else MAX_TEXT
    markup = keyboard(outbound.buttons)
    calls: list[TelegramMethod[Any] | Text] = []
    text = outbound.text
    file = _file(outbound.media.ref) if outbound.media is not None else None
    if file is not None and outbound.media is not None:
        kind, field = (SendPhoto, "photo") if outbound.media.kind == "image" else (SendDocument, "document")
        fits = bool(text) and len(head) + len(text) <= MAX_CAPTION
        calls.append(kind(**common, **{field: file}, caption=head + escape(text) if fits else None,
                          parse_mode=HTML if fits else None, reply_markup=markup if fits or not text else None))
        if fits:
            text = ""
    if text:
        parts = split_text(text, budget)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            calls.append(Text(chat_id, (head if i == 0 else "") + escape(part), outbound.buttons if last else (),
                              thread))
    for number in outbound.extra.get("call") or () if outbound.extra.get("priority") == "emergency" else ():
        calls.append(SendContact(**common, phone_number=str(number), first_name=call_label(str(number))[:64]))
    if reply_to and calls:
        calls[0] = calls[0].model_copy(update={"reply_parameters": ReplyParameters(
            message_id=reply_to, allow_sending_without_reply=True)})
    return calls
