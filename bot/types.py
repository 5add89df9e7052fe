"""The contracts that cross carebot's parts: what comes in, what goes out, what the engine asks for.

Everything here is platform-free and JSON-serialisable. Adapters turn platform requests into
`Inbound`s and deliver `Outbound`s; the engine turns an `Inbound` into `Effect`s; the runtime carries
the effects out. Dataclasses (not pydantic) because these sit on the hot path of every message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar, Literal

InboundKind = Literal[
    "text",  # a typed message
    "choice",  # a button / quick reply press; payload carries the button value
    "media",  # an image, file or voice note; media carries the reference
    "command",  # "/start", "/cancel" …
    "join",  # a member joined a group or opened a chat
    "leave",
    "staff_reply",  # a human staff member wrote to the patient through a ticket
    "staff_event",  # ticket lifecycle from staff: taken, closed, transferred …
    "timer",  # a durable timer came due
    "action_result",  # the runtime finished an action the engine asked for
]


@dataclass(frozen=True, slots=True)
class Address:
    """Where a conversation lives on one platform.

    A direct chat is one conversation per (channel, chat_id, thread_id); chat_id and user_id are
    usually the same person. In a group (`is_group`) the bot replies to the group's chat (chat_id,
    thread_id) but each member has a conversation of their own — their flow stack, slots, tickets
    and timers — so `conversation_id` adds `user_id` there (bot/group.py).
    """

    channel: str
    chat_id: str
    user_id: str = ""
    thread_id: str = ""
    is_group: bool = False
    org: str = "default"

    @property
    def conversation_id(self) -> str:
        base = f"{self.org}:{self.channel}:{self.chat_id}"
        if self.thread_id:
            base = f"{base}:{self.thread_id}"
        # a group member's own conversation; a direct chat's id is unchanged (no migration)
        return f"{base}/{self.user_id}" if self.is_group and self.user_id else base

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "chat_id": self.chat_id, "user_id": self.user_id,
                "thread_id": self.thread_id, "is_group": self.is_group, "org": self.org}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Address:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Media:
    """A reference to a piece of media: a URL, a platform file id or a stored upload path."""

    kind: Literal["image", "file", "audio", "video"] = "image"
    ref: str = ""
    mime: str = ""
    size: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True)
class Inbound:
    kind: InboundKind
    address: Address
    message_id: str  # the platform's message id: de-duplication key together with the channel
    received_at: datetime
    text: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    media: Media | None = None
    locale: str = ""  # a hint from the platform (user language), may be empty
    # In a group: the message mentions the bot or replies to one of the bot's messages. The adapter
    # sets it (and removes the mention from `text`); commands and button presses are addressed by
    # their kind. In a group the bot answers only addressed messages (bot/group.py). Unused in a
    # direct chat, where every message is for the bot.
    addressed: bool = False

    @property
    def dedupe_key(self) -> str:
        return f"{self.address.channel}:{self.message_id}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["received_at"] = self.received_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Inbound:
        data = dict(data)
        data["address"] = Address.from_dict(data["address"])
        data["received_at"] = datetime.fromisoformat(data["received_at"])
        if data.get("media"):
            data["media"] = Media(**data["media"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Button:
    label: str  # already rendered for the locale
    value: str  # the payload sent back when pressed
    key: str = ""  # the content key the label came from


@dataclass(frozen=True, slots=True)
class Outbound:
    """One thing to do on a platform. `op` says what; adapters declare which ops they support."""

    op: Literal["say", "delete", "restrict", "ban", "notify_staff", "page"]
    address: Address
    text: str = ""
    key: str = ""  # the content key this text was rendered from ("" for staff-written text)
    buttons: tuple[Button, ...] = ()
    media: Media | None = None
    sender: str = "bot"  # "bot", or "staff:<id>" when a human wrote it
    sender_name: str = ""  # the doctor's name and title shown to the patient
    target_message_id: str = ""  # for delete / restrict
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # written out by hand: dataclasses.asdict deep-copies and was a tenth of a turn's cost
        return {
            "op": self.op, "address": self.address.to_dict(), "text": self.text, "key": self.key,
            "buttons": [{"label": b.label, "value": b.value, "key": b.key} for b in self.buttons],
            "media": _media_dict(self.media), "sender": self.sender, "sender_name": self.sender_name,
            "target_message_id": self.target_message_id, "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outbound:
        data = dict(data)
        data["address"] = Address.from_dict(data["address"])
        data["buttons"] = tuple(Button(**b) for b in data.get("buttons", ()))
        if data.get("media"):
            data["media"] = Media(**data["media"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What an adapter reports after trying to deliver an Outbound."""

    ok: bool
    platform_message_id: str = ""
    retryable: bool = True  # False: the platform said no for good (blocked, chat gone)
    error: str = ""
    retry_after: float = 0.0  # seconds the platform asked us to wait


# ---------------------------------------------------------------------------------------------
# Effects: what the engine (and the pipeline) ask the runtime to do. The engine only returns them.


@dataclass(frozen=True, slots=True)
class Effect:
    kind: ClassVar[str] = "effect"

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["kind"] = self.kind
        return _jsonable(data)


@dataclass(frozen=True, slots=True)
class Send(Effect):
    kind: ClassVar[str] = "send"
    outbound: Outbound


@dataclass(frozen=True, slots=True)
class ScheduleTimer(Effect):
    """Fire `name` for this conversation at `due_at`; a timer of the same name is replaced."""

    kind: ClassVar[str] = "schedule"
    name: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CancelTimer(Effect):
    kind: ClassVar[str] = "cancel"
    name: str


@dataclass(frozen=True, slots=True)
class OpenTicket(Effect):
    kind: ClassVar[str] = "open_ticket"
    department: str = ""
    priority: str = "normal"
    reason: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    # the ticket's first messages, in order, as (author, body): "patient" or "bot" — an emergency
    # ticket opens with the patient's own words and what the bot told them
    transcript: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateTicket(Effect):
    """Append to or change the open ticket: a relayed patient message, a raised priority …"""

    kind: ClassVar[str] = "update_ticket"
    message: str = ""
    media: Media | None = None
    priority: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True)
class Tag(Effect):
    kind: ClassVar[str] = "tag"
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordEvent(Effect):
    """An append-only record: survey answers, consent, triage assessments, audit entries."""

    kind: ClassVar[str] = "record"
    event: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Moderate(Effect):
    kind: ClassVar[str] = "moderate"
    outbound: Outbound  # delete / restrict / ban; degraded before commit where a platform can't (bot/runtime/degrade.py)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallAction(Effect):
    """Run a named action (Python callable, in-process rasa-sdk Action, or remote action server).

    The runtime runs it within the same turn and resumes the engine with an Inbound of kind
    `action_result` whose payload is an `ActionResult.to_dict()`.
    """

    kind: ClassVar[str] = "action"
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""


def _media_dict(media: Media | None) -> dict[str, Any] | None:
    if media is None:
        return None
    return {"kind": media.kind, "ref": media.ref, "mime": media.mime, "size": media.size, "name": media.name}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return value
