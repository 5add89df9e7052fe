"""Signed session tokens: a visitor id and an issue time, HMAC-SHA256 with the server secret.

`v1.<visitor>.<issued unix seconds>.<signature>` — no database row, so any worker can check one.
The widget keeps it in localStorage; a reload or a visit next week continues the conversation,
and every visit renews it, so only a visitor who stays away longer than its lifetime starts anew.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from bot.inputs import same_secret


class BadToken(Exception):
    """The token is malformed, forged, or expired."""


@dataclass(frozen=True)
class Session:
    visitor: str
    issued: int  # unix seconds
    token: str


def _sign(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class TokenSigner:
    def __init__(self, secret: str, lifetime_seconds: float):
        # a key of its own, derived, so a web chat token can never be replayed as another signature
        self._key = hmac.new(secret.encode(), b"carebot-webchat-session", hashlib.sha256).digest()
        self.lifetime = lifetime_seconds

    def issue(self, now: float, visitor: str | None = None) -> Session:
        visitor = visitor or "v" + secrets.token_hex(12)
        issued = int(now)
        body = f"v1.{visitor}.{issued}"
        return Session(visitor, issued, f"{body}.{_sign(self._key, body)}")

    def verify(self, token: str, now: float) -> Session:
        ok = isinstance(token, str) and len(token) < 200 and token.isascii()  # str.isalnum/isdigit take any script
        parts = token.split(".") if ok else []
        if len(parts) != 4 or parts[0] != "v1" or not parts[1].isalnum() or not parts[2].isdigit():
            raise BadToken("malformed")
        body = ".".join(parts[:3])
        if not same_secret(_sign(self._key, body), parts[3]):
            raise BadToken("bad signature")
        issued = int(parts[2])
        if issued > now + 300 or now - issued > self.lifetime:
            raise BadToken("expired")
        return Session(parts[1], issued, token)
