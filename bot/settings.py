"""Settings from the environment. Defaults run a clinic on one machine with no set-up."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ConfigError, ConfigProblem


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./carebot.db"
    redis_url: str = ""
    flows_dir: Path = Path("flows")
    content_dir: Path = Path("content")
    base_locale: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    secret: str = ""
    actions: tuple[str, ...] = ()
    rasa_action_url: str = ""
    sqlite_synchronous: str = "NORMAL"
    outbox_lease_seconds: float = 30.0
    log_level: str = "INFO"
    pager_webhook_url: str = ""  # the SMS / phone / pager gateway emergency pages are POSTed to
    pager_webhook_secret: str = ""  # signs them (HMAC-SHA256); required with the URL

    @classmethod
    def from_env(cls) -> Settings:
        port = _env("CAREBOT_PORT", "8000")
        if not port.isdigit():
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_PORT",
                                             f"{port!r} is not a port number (1-65535)")])
        sync = _env("CAREBOT_SQLITE_SYNCHRONOUS", "NORMAL").upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError([ConfigProblem("environment", 0, "CAREBOT_SQLITE_SYNCHRONOUS",
                                             f"{sync!r} is not valid; use NORMAL or FULL")])
        return cls(
            database_url=_env("DATABASE_URL", "sqlite:///./carebot.db"),
            redis_url=_env("REDIS_URL"),
            flows_dir=Path(_env("CAREBOT_FLOWS", "flows")),
            content_dir=Path(_env("CAREBOT_CONTENT", "content")),
            base_locale=_env("CAREBOT_LOCALE", "zh-CN"),
            timezone=_env("CAREBOT_TIMEZONE", "Asia/Shanghai"),
            host=_env("CAREBOT_HOST", "127.0.0.1"),
            port=int(port),
            worker_id=_env("CAREBOT_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}",
            secret=_env("CAREBOT_SECRET"),
            actions=tuple(m.strip() for m in _env("CAREBOT_ACTIONS").split(",") if m.strip()),
            rasa_action_url=_env("CAREBOT_RASA_ACTION_URL"),
            sqlite_synchronous=sync,
            outbox_lease_seconds=float(_env("CAREBOT_OUTBOX_LEASE", "30")),
            pager_webhook_url=_env("CAREBOT_PAGER_WEBHOOK_URL"),
            pager_webhook_secret=_env("CAREBOT_PAGER_WEBHOOK_SECRET"),
            log_level=_env("CAREBOT_LOG_LEVEL", "INFO").upper(),
        )

    def server_secret(self) -> str:
        """CAREBOT_SECRET, or a random one kept next to the SQLite database for development."""
        if self.secret:
            return self.secret
        path = Path(".carebot-secret")
        if path.exists():
            return path.read_text().strip()
        value = secrets.token_urlsafe(32)
        path.write_text(value)
        path.chmod(0o600)
        return value
