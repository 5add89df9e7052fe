"""Console sessions: an HMAC-signed cookie, no database row, so any worker can check one.

    carebot_console = v1.<base64 JSON {s: staff id or "", n: nonce, i: issued, a: last active}>.<HMAC>

A visitor gets an anonymous session (no staff id) on the login page, so the login form carries a
CSRF token too; a successful login issues a new session with a new nonce (no session fixation).
The CSRF token is an HMAC of the nonce: per session, nothing to store. A session ends after
`IDLE` without a request, after `ABSOLUTE` in any case, or at logout (the nonce is put on a revoked
list in the database, `bot/handoff/logins.py`: it holds across restarts and every worker).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from bot.inputs import same_secret

COOKIE = "carebot_console"
IDLE = 12 * 3600  # seconds without a request before a session ends
ABSOLUTE = 7 * 86400
RENEW_AFTER = 60  # re-sign the cookie (moving "last active") at most once a minute


@dataclass(frozen=True)
class ConsoleSession:
    staff_id: str  # "" before login
    nonce: str
    issued: int
    active: int

    @property
    def logged_in(self) -> bool:
        return bool(self.staff_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: str):
        # keys of their own, derived, so no other carebot signature can be replayed as one of these
        self._key = hmac.new(secret.encode(), b"carebot-console-session", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret.encode(), b"carebot-console-csrf", hashlib.sha256).digest()

    def new(self, now: float, staff_id: str = "") -> ConsoleSession:
        return ConsoleSession(staff_id, secrets.token_urlsafe(18), int(now), int(now))

    def dump(self, session: ConsoleSession) -> str:
        body = "v1." + _b64(json.dumps({"s": session.staff_id, "n": session.nonce, "i": session.issued,
                                        "a": session.active}, separators=(",", ":")).encode())
        return f"{body}.{_b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())}"

    def load(self, cookie: str | None, now: float) -> ConsoleSession | None:
        """The session in a cookie, or None when it is missing, forged or expired."""
        if not cookie or len(cookie) > 600 or not cookie.isascii() or cookie.count(".") != 2:
            return None
        version, payload, signature = cookie.split(".")
        body = f"{version}.{payload}"
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if version != "v1" or not same_secret(expected, signature):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = ConsoleSession(str(data["s"]), str(data["n"]), int(data["i"]), int(data["a"]))
        except (ValueError, KeyError, TypeError, RecursionError):
            return None
        if now - session.active > IDLE or now - session.issued > ABSOLUTE or session.active > now + 300:
            return None
        return session

    def touched(self, session: ConsoleSession, now: float) -> ConsoleSession | None:
        """The session with "last active" moved to now, or None when the cookie need not change."""
        if now - session.active < RENEW_AFTER:
            return None
        return ConsoleSession(session.staff_id, session.nonce, session.issued, int(now))

    def csrf(self, session: ConsoleSession) -> str:
        return _b64(hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).digest())

    def csrf_ok(self, session: ConsoleSession, token: str) -> bool:
        return same_secret(self.csrf(session), token)
