"""Web chat settings, read from the environment (defaults serve a clinic on one machine)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError, ConfigProblem


def _number(name: str, default: str, minimum: float = 0) -> float:
    raw = os.environ.get(name, default).strip() or default
    try:
        value = float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError([ConfigProblem("environment", 0, name, f"{raw!r} is not a number >= {minimum:g}")])
    return value


@dataclass(frozen=True)
class WebchatConfig:
    origins: tuple[str, ...] = ()  # besides the page's own origin; "*" allows any (not advised)
    media_dir: Path = Path("media")
    max_text: int = 2000  # characters of one patient message
    max_upload_bytes: int = 8 * 1024 * 1024
    token_days: float = 90.0  # a session token's lifetime; it is renewed on every visit
    visitor_rate: tuple[int, float] = (20, 10.0)  # messages per seconds from one visitor
    ip_rate: tuple[int, float] = (120, 10.0)  # messages (and new sessions) per seconds from one IP
    upload_rate: tuple[int, float] = (10, 60.0)  # uploads per seconds from one visitor
    history_limit: int = 200  # messages a (re)connecting widget receives at most in one go
    hello_timeout: float = 10.0  # seconds a new socket has to say who it is

    @classmethod
    def from_env(cls) -> WebchatConfig:
        origins = tuple(o.strip().rstrip("/") for o in os.environ.get("CAREBOT_WEBCHAT_ORIGINS", "").split(",")
                        if o.strip())
        return cls(
            origins=origins,
            media_dir=Path(os.environ.get("CAREBOT_MEDIA_DIR", "").strip() or "media"),
            max_text=int(_number("CAREBOT_WEBCHAT_MAX_TEXT", "2000", 1)),
            max_upload_bytes=int(_number("CAREBOT_WEBCHAT_MAX_UPLOAD_MB", "8", 0.001) * 1024 * 1024),
            token_days=_number("CAREBOT_WEBCHAT_TOKEN_DAYS", "90", 0.001),
            visitor_rate=(int(_number("CAREBOT_WEBCHAT_VISITOR_RATE", "20", 1)), 10.0),
            ip_rate=(int(_number("CAREBOT_WEBCHAT_IP_RATE", "120", 1)), 10.0),
        )

    def origin_allowed(self, origin: str, host: str) -> bool:
        """Same-origin always; otherwise the allow-list. No Origin header: not a browser (a
        browser always sends one on a WebSocket), so cross-site hijacking is not possible."""
        if not origin:
            return True
        origin = origin.rstrip("/")
        if origin in (f"http://{host}", f"https://{host}"):
            return True
        return "*" in self.origins or origin in self.origins
