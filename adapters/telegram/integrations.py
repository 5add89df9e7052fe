"""carebot inside a bot a team already runs. Both hand each update, as Telegram's raw JSON, to
`TelegramAdapter.feed` — the road the webhook takes — so carebot keeps the conversation's state,
de-duplication and delivery; neither library's FSM or persistence is used.

aiogram 3 — include the router in your Dispatcher (after your own routers: it takes every update of
the kinds it listens to that reached it)::

    dp.include_router(carebot_router(adapter))

python-telegram-bot 21+ — add the handler to your Application (in a later group than your own
handlers, so yours see updates first)::

    application.add_handler(CarebotHandler(adapter), group=1)

The adapter must be started with the carebot runtime (`CareBot.start`) in the same event loop;
replies go out through carebot's outbox with the adapter's own aiogram client and the same token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram import Router
from aiogram.types import Update as AiogramUpdate
from telegram import Update as PTBUpdate
from telegram.ext import BaseHandler

if TYPE_CHECKING:
    from adapters.telegram.adapter import TelegramAdapter

# the update kinds carebot reads (parse.py); ask Telegram for them with allowed_updates
UPDATE_KINDS = ("message", "edited_message", "callback_query", "my_chat_member", "chat_member")


def carebot_router(adapter: TelegramAdapter, name: str = "carebot") -> Router:
    """An aiogram Router that hands every update it receives to carebot."""
    router = Router(name=name)

    async def hand_over(_event: Any, event_update: AiogramUpdate) -> None:
        await adapter.feed(event_update.model_dump(mode="json", exclude_none=True, by_alias=True))

    for kind in UPDATE_KINDS:
        router.observers[kind].register(hand_over)
    return router


class CarebotHandler(BaseHandler[PTBUpdate, Any, None]):
    """A python-telegram-bot handler that hands every update it is given to carebot."""

    def __init__(self, adapter: TelegramAdapter, *, block: bool = True):
        super().__init__(self._hand_over, block=block)
        self.adapter = adapter

    def check_update(self, update: object) -> bool:
        return isinstance(update, PTBUpdate) and any(getattr(update, kind, None) is not None
                                                     for kind in UPDATE_KINDS)

    async def _hand_over(self, update: PTBUpdate, _context: Any) -> None:
        await self.adapter.feed(update.to_dict())
