"""The adapter contract. Platform details stop at `adapters/`; this is all `bot/` knows of them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.types import Address, Delivery, Outbound

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService
    from bot.runtime.runtime import Runtime


@dataclass(frozen=True)
class Capabilities:
    """What the platform can do. The runtime fits every outbound to it before the commit
    (bot/runtime/degrade.py): an op it cannot do, buttons it cannot show, media, long text."""

    ops: frozenset[str] = frozenset({"say"})  # which Outbound ops the platform can do
    buttons: bool = True
    max_buttons: int = 10
    media: bool = True
    max_text: int = 4096
    note: str = ""  # why ops are missing here (capabilities_in: "the bot is no admin…"); the moderation log says it


@dataclass(frozen=True)
class RatePolicy:
    """Platform sending limits; the sender waits rather than be refused."""

    per_chat: tuple[int, float] = (20, 1.0)  # messages per seconds to one chat
    overall: tuple[int, float] = (1000, 1.0)  # messages per seconds for the whole bot


@dataclass(frozen=True)
class MediaFile:
    """A patient's upload as a local file, for staff to view (the console's audited media route)."""

    path: Path
    mime: str


class Adapter(ABC):
    channel: str = ""
    capabilities: Capabilities = Capabilities()
    rate_policy: RatePolicy | None = RatePolicy()  # None: the adapter paces its own calls (Telegram)

    @abstractmethod
    async def send(self, outbound: Outbound, idempotency_key: str) -> Delivery:
        """Deliver one outbound. `idempotency_key` is stable across retries of the same row: pass it
        to the platform's duplicate check where the platform has one."""

    async def capabilities_in(self, address: Address) -> Capabilities:
        """What the platform can do in this chat. The declared `capabilities` by default; a platform
        where the bot's rights differ by chat (a Telegram group where the bot is no admin, or one
        without the right to ban) answers for the chat, and the moderation stage and the degrade rule
        fall back by it (bot/groups/acts.py, bot/runtime/degrade.py)."""
        return self.capabilities

    def deep_link(self, start: str) -> str:
        """A link that opens a private chat with the bot and starts it with `start` (Telegram's
        `t.me/<bot>?start=…`); "" when the platform has none. A group's welcome links to private
        intake with it (bot/groups)."""
        return ""

    def routes(self) -> list[Any]:
        """Starlette routes this adapter serves (webhooks, websockets). None by default."""
        return []

    def asgi_routes(self) -> dict[str, Any]:
        """Hot webhooks as pure ASGI apps by exact path, served ahead of Starlette's routing and
        request objects (bot/server.py `FastPaths`; the guard and the access log still apply).
        None by default."""
        return {}

    async def start(self, runtime: Runtime) -> None:
        """Called once the runtime runs; keep the runtime to hand it parsed Inbounds."""

    def bind_handoff(self, handoff: HandoffService) -> None:
        """Called once by `CareBot.build` with the hand-off facade, for an adapter that gives staff
        a place to work (a staff group on the platform). Nothing by default."""
        return None

    async def stop(self) -> None:
        return None

    async def erase(self, conversation_id: str, now: datetime) -> None:
        """The patient asked to be forgotten: delete what this adapter keeps for the conversation —
        a message log, uploaded files and their rows, platform media ids — keeping at most ids and
        times. The runtime calls it on every adapter (the conversation's channel or not), after
        bot's own records are erased; it must be safe to call twice. Nothing is kept by default."""
        return None

    async def open_media(self, ref: str, conversation_id: str) -> MediaFile | None:
        """The file behind a media reference this adapter made (`Media.ref`), when it belongs to
        that conversation; None otherwise. The caller (the staff console) checks who may see it and
        audits the view. None by default: the platform keeps its own media."""
        return None


@dataclass
class AdapterSet:
    adapters: dict[str, Adapter] = field(default_factory=dict)

    def add(self, adapter: Adapter) -> None:
        self.adapters[adapter.channel] = adapter

    def get(self, channel: str) -> Adapter | None:
        return self.adapters.get(channel)
