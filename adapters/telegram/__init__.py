"""Telegram: patients in private chats and groups, staff in a forum supergroup — on aiogram 3, with
integrations for an existing aiogram or python-telegram-bot bot (docs/telegram.md).

The package's names load on first use (PEP 562): `carebot run` reads `adapters.telegram.config` to
learn whether Telegram is configured at all, and importing aiogram (its ~640 pydantic models) costs
~3.5 s of CPU, which a server without a Telegram token must not pay before it is ready."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.telegram.adapter import TelegramAdapter
    from adapters.telegram.config import TelegramConfig
    from adapters.telegram.parse import CHANNEL

__all__ = ["CHANNEL", "TelegramAdapter", "TelegramConfig"]
_WHERE = {"TelegramAdapter": "adapters.telegram.adapter", "TelegramConfig": "adapters.telegram.config",
          "CHANNEL": "adapters.telegram.parse"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
