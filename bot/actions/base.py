"""What an action sees and what it gives back.

An action is how Python code joins a flow: look up a price, check a quota, ask a hospital system.
The engine never runs one itself — it returns a `CallAction` effect; the runtime runs the action and
feeds its `ActionResult` back to the engine in the same turn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Protocol

from bot.types import Address


@dataclass(frozen=True, slots=True)
class ActionContext:
    name: str  # the action's registered name
    args: dict[str, Any]  # the step's `args`, already rendered
    slots: dict[str, Any]  # a copy of the conversation's slots
    address: Address
    conversation_id: str
    locale: str
    now: datetime
    latest_text: str = ""  # the patient's latest message (never logged)
    store: Any = None  # the runtime's bot.store.store.Store, for actions that read records


@dataclass(slots=True)
class ActionMessage:
    """A message an action wants sent: a content key, or literal text (rasa `utter_message`)."""

    key: str = ""
    text: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)  # [{"title": .., "payload": ..}]
    image: str = ""
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ActionResult:
    slots: dict[str, Any] = field(default_factory=dict)  # slot values to set
    messages: list[ActionMessage] = field(default_factory=list)
    ok: bool = True
    error: str = ""  # for the log and the internal-error repair: no personal data

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionResult:
        return cls(
            slots=dict(data.get("slots", {})),
            messages=[ActionMessage(**m) for m in data.get("messages", [])],
            ok=bool(data.get("ok", True)),
            error=str(data.get("error", "")),
        )


class Action(Protocol):
    """Anything the runtime can run for a flow step."""

    async def run(self, ctx: ActionContext) -> ActionResult: ...


ActionFunc = Callable[[ActionContext], "ActionResult | dict[str, Any] | Awaitable[ActionResult | dict[str, Any]]"]
