"""Group chats: the bot speaks in a group only when spoken to.

Every message a member writes in a group reaches the pipeline, so the safety stage screens all of
them — an emergency typed by anyone gets the emergency route, to that member, in the group. After
safety, `GroupStage` lets a group message go on to the hand-off relay and the flows only when it is
addressed to the bot:

- a command (`/start`, `/start@carebot`),
- a press of a button the bot sent (kind `choice`),
- a mention of the bot or a reply to one of its messages (`Inbound.addressed`, set by the adapter).

Anything else is the members talking among themselves: screened, then left alone. So is an edit
of an earlier message (`payload.edited`, in any chat): safety reads the new words, but the flow has
moved on and the edit does not answer a question again. Each member's
flow state is their own (`Address.conversation_id` carries the member in a group), while replies go
to the group's chat. Direct chats, timers, staff replies and ticket events are never held back.
"""

from __future__ import annotations

from bot.pipeline import PATIENT_INPUT, Next, TurnContext
from bot.types import Inbound

ADDRESSED_KINDS = frozenset({"command", "choice"})


def is_addressed(inbound: Inbound) -> bool:
    """Whether the bot should answer this message: always outside a group, and in a group when the
    message is a command, a button press, a mention of the bot or a reply to it; never an edit."""
    if inbound.kind not in PATIENT_INPUT:
        return True
    if inbound.payload.get("edited"):
        return False
    if not inbound.address.is_group:
        return True
    return inbound.addressed or inbound.kind in ADDRESSED_KINDS or inbound.text.lstrip().startswith("/")


class GroupStage:
    """Between safety and the relay: an unaddressed group message ends the turn here."""

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        if is_addressed(ctx.inbound):
            await call_next(ctx)
