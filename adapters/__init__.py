"""Platform adapters. Each subpackage speaks one platform and turns it into Inbound/Outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapter import Adapter
    from bot.settings import Settings


def default_adapters(settings: Settings) -> list[Adapter]:
    """The adapters `carebot run` serves: the web chat at /chat and the staff console at /console
    (which also decides which staff may open a patient's uploaded photos), Telegram when
    CAREBOT_TELEGRAM_TOKEN is set (docs/telegram.md), WeCom when CAREBOT_WECOM_CORP_ID is
    (docs/wecom.md), and the pager webhook when CAREBOT_PAGER_WEBHOOK_URL is set."""
    from adapters.console import ConsoleAdapter
    from adapters.webchat import WebchatAdapter

    console = ConsoleAdapter(settings)
    adapters: list[Adapter] = [WebchatAdapter(settings, staff_media_access=console.staff_may_see_media), console]
    from adapters.telegram.config import TelegramConfig

    telegram = TelegramConfig.from_env()
    if telegram is not None:  # CAREBOT_TELEGRAM_TOKEN: patients on Telegram (webhook at /telegram/webhook)
        from adapters.telegram import TelegramAdapter

        adapters.append(TelegramAdapter(telegram))
    if settings.pager_webhook_url:  # emergency pages to an SMS / phone / pager gateway
        from adapters.pager import PagerWebhookAdapter

        adapters.append(PagerWebhookAdapter(settings.pager_webhook_url, settings.pager_webhook_secret))
    from adapters.wecom.config import WeComConfig

    wecom = WeComConfig.from_env()
    if wecom.enabled:  # patients on WeChat Customer Service, staff on WeCom
        from adapters.wecom.adapter import WeComAdapter

        adapters.append(WeComAdapter(wecom))
    return adapters
