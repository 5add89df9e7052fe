"""Telegram: patients in private chats and groups, staff in a forum supergroup — on aiogram 3, with
integrations for an existing aiogram or python-telegram-bot bot (docs/telegram.md)."""

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.config import TelegramConfig
from adapters.telegram.parse import CHANNEL

__all__ = ["CHANNEL", "TelegramAdapter", "TelegramConfig"]
