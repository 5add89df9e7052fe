"""Platform adapters. Each subpackage speaks one platform and turns it into Inbound/Outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapter import Adapter
    from bot.settings import Settings


def default_adapters(settings: Settings) -> list[Adapter]:
    """The adapters `carebot run` serves with the given settings: the web chat at /chat."""
    from adapters.webchat import WebchatAdapter

    return [WebchatAdapter(settings)]
