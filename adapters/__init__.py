"""Platform adapters. Each subpackage speaks one platform and turns it into Inbound/Outbound."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.adapter import Adapter
    from bot.settings import Settings


def default_adapters(settings: Settings) -> list[Adapter]:
    """The adapters `carebot run` serves: the web chat at /chat and the staff console at /console
    (which also decides which staff may open a patient's uploaded photos)."""
    from adapters.console import ConsoleAdapter
    from adapters.webchat import WebchatAdapter

    console = ConsoleAdapter(settings)
    return [WebchatAdapter(settings, staff_media_access=console.staff_may_see_media), console]
