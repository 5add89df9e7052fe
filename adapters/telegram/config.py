"""The Telegram adapter's settings, from the environment (docs/telegram.md)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bot.errors import ConfigError, ConfigProblem

TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,100}")
SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram allows in secret_token
DEFAULT_API = "https://api.telegram.org"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    webhook_secret: str = ""  # X-Telegram-Bot-Api-Secret-Token; required to serve the webhook
    webhook_path: str = "/telegram/webhook"
    public_url: str = ""  # https://bot.example.org — set-webhook registers public_url + webhook_path
    api_base: str = DEFAULT_API  # a local Bot API server, or the fake one in tests
    username: str = ""  # the bot's @username without @; asked with getMe when empty
    staff_chat_id: str = ""  # the staff supergroup with forum topics (one topic per ticket)
    staff_locale: str = ""  # the language of what carebot writes in the staff group ("" = the content's base)
    staff_sweep_seconds: float = 30.0  # how often topics are checked against their tickets (a lost feed message)
    max_file_bytes: int = 10 * 1024 * 1024
    # Telegram's limits (core.telegram.org/bots/faq): ~30 messages per second for the bot, about one
    # per second in a chat (short bursts allowed), 20 per minute in a group. Shared across workers
    # through Coord; a little under the ceiling so that clock jitter between us and Telegram never
    # turns into a 429.
    overall: Rate = Rate(30, 1.03)
    per_chat: Rate = Rate(3, 3.1)
    per_group: Rate = Rate(20, 61.0)
    private_commands: tuple[str, ...] = ("/consult", "/intake")  # in a group: a deep link to a private chat
    org: str = "default"

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    @classmethod
    def from_env(cls) -> TelegramConfig | None:
        """None when CAREBOT_TELEGRAM_TOKEN is not set; ConfigError naming the variable when a value is wrong."""
        token = os.environ.get("CAREBOT_TELEGRAM_TOKEN", "").strip()
        if not token:
            return None
        problems = []
        if not TOKEN.fullmatch(token):
            problems.append(ConfigProblem("environment", 0, "CAREBOT_TELEGRAM_TOKEN",
                                          "not a bot token (BotFather gives one like 123456789:AAE…)"))
        secret = os.environ.get("CAREBOT_TELEGRAM_WEBHOOK_SECRET", "").strip()
        if secret and not SECRET.fullmatch(secret):
            problems.append(ConfigProblem("environment", 0, "CAREBOT_TELEGRAM_WEBHOOK_SECRET",
                                          "use 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"))
        public = os.environ.get("CAREBOT_TELEGRAM_PUBLIC_URL", "").strip().rstrip("/")
        if public and not public.startswith("https://"):
            problems.append(ConfigProblem("environment", 0, "CAREBOT_TELEGRAM_PUBLIC_URL",
                                          f"{public!r}: Telegram delivers webhooks only to https:// URLs"))
        staff = os.environ.get("CAREBOT_TELEGRAM_STAFF_CHAT", "").strip()
        if staff and not re.fullmatch(r"-100\d{5,15}", staff):
            problems.append(ConfigProblem("environment", 0, "CAREBOT_TELEGRAM_STAFF_CHAT",
                                          f"{staff!r}: a supergroup id looks like -1001234567890"))
        staff_locale = os.environ.get("CAREBOT_TELEGRAM_STAFF_LOCALE", "").strip()
        if staff_locale and staff_locale not in ("zh-CN", "en"):
            problems.append(ConfigProblem("environment", 0, "CAREBOT_TELEGRAM_STAFF_LOCALE",
                                          f"{staff_locale!r}: use zh-CN or en"))
        if problems:
            raise ConfigError(problems)
        return cls(token=token, webhook_secret=secret, public_url=public, staff_chat_id=staff, staff_locale=staff_locale,
                   api_base=os.environ.get("CAREBOT_TELEGRAM_API", DEFAULT_API).strip().rstrip("/") or DEFAULT_API,
                   username=os.environ.get("CAREBOT_TELEGRAM_USERNAME", "").strip().lstrip("@"))
