"""What a group message contains: blocklist hits and locked kinds of content.

Text is read in two forms: the canonical text (NFKC, Simplified Chinese, lower case — the form the
red-flag rules read) and the same with spaces, dots and look-alike separators squeezed out, so "加 微
信", "加.微.信" and "ｗｅｃｈａｔ" all reach one form. Locks look at the text and at the hints an adapter
puts in `Inbound.payload` (see `HINTS`): a forwarded message, a shared contact card, links hidden
behind text, a QR code the platform detected in an image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.groups.policy import Rule
from bot.types import Inbound
from bot.understand.normalize import canonical

# What an adapter may say about a message beyond its text (all optional; absent means "no"):
HINTS = {
    "forwarded": "the message was forwarded from elsewhere",
    "contact": "the message is a shared contact card (a phone contact, a WeChat 名片)",
    "links": "a list of URLs hidden behind text (a platform's text links)",
    "qr": "the platform (or the adapter) found a QR code in the image",
    "reply_to": "the message replies to another: {message_id, user_id}",
}

_SQUEEZE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff._\-·•・,，。、|/\\*~'\"`]+")
LINK = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9][a-z0-9-]{0,62}\.(?:com|cn|net|org|io|me|cc|top|xyz|info|"
                  r"ly|link|app|site|vip|shop|ink|club|online|tk|ru)\b(?:/\S*)?|\bt\.me/\S+", re.IGNORECASE)
PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"  # mainland mobile
                   r"|(?<!\d)0\d{2,3}[\s-]?\d{7,8}(?!\d)"  # landline with area code
                   r"|(?<![\w+])\+\d{1,3}(?:[\s-]?\d){7,12}(?!\d)")  # international
EMAIL = re.compile(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def forms(text: str) -> tuple[str, ...]:
    """The forms of `text` a blocklist entry is tried on."""
    norm = canonical(text)
    squeezed = _SQUEEZE.sub("", norm)
    return (norm, squeezed) if squeezed != norm else (norm,)


def blocklist_hit(text: str, rules: list[Rule]) -> Rule | None:
    """The first rule (in policy order) that matches the message."""
    if not text.strip():
        return None
    shapes = forms(text)
    for rule in rules:
        if any(rule.regex.search(s) for s in shapes):
            return rule
    return None


@dataclass(frozen=True)
class Found:
    """Locked kinds of content found in one message."""

    kinds: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.kinds)


def locked_content(inbound: Inbound) -> Found:
    """Which lockable kinds this message carries: links, forwards, contacts, phone, email, qr."""
    text, hints = inbound.text, inbound.payload if isinstance(inbound.payload, dict) else {}
    norm = canonical(text) if text else ""
    kinds = []
    if hints.get("links") or (norm and LINK.search(EMAIL.sub(" ", norm))):  # an address's domain is no link
        kinds.append("links")
    if hints.get("forwarded"):
        kinds.append("forwards")
    if hints.get("contact"):
        kinds.append("contacts")
    if norm and PHONE.search(norm):
        kinds.append("phone")
    if norm and EMAIL.search(norm):
        kinds.append("email")
    if hints.get("qr"):
        kinds.append("qr")
    return Found(tuple(kinds))
