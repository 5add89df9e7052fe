"""Messages the patient did not ask for — check-ins, follow-ups, news — respect the patient:
nothing after STOP/退订 (`opted_out`), no more than a weekly cap, nothing in quiet hours (the timer
waits until they end). A reply to the patient's own message, and above all an emergency reply, is
never held back: only turns started by a timer are proactive, and a timer scheduled with
`payload: {proactive: false}` (staff-facing clocks) is not either.

Care messages are not marketing: a reminder the patient or their doctor asked for (a timer whose
payload says `care: true`, e.g. a medication dose) comes at the time asked for, quiet hours or
not, and never counts against or is held by the weekly cap. STOP still silences it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.care.config import Proactive
from bot.engine.state import State
from bot.types import Effect, Inbound, RecordEvent, Send

WEEK = timedelta(days=7)


def is_proactive(inbound: Inbound) -> bool:
    return inbound.kind == "timer" and inbound.payload.get("proactive", True) is not False


def is_care(inbound: Inbound) -> bool:
    """A message someone asked for (a dose reminder): exempt from quiet hours and the weekly cap."""
    return inbound.kind == "timer" and inbound.payload.get("care") is True


class ProactivePolicy:
    def __init__(self, settings: Proactive):
        self.settings = settings

    def postpone_until(self, now: datetime) -> datetime | None:
        """The end of the quiet hours `now` falls in, or None when it is not quiet."""
        quiet = self.settings.quiet_hours
        return None if quiet is None else quiet.closes(now)

    async def hold_until(self, state: State, store: Any, now: datetime,
                         care: bool = False) -> tuple[datetime, str] | None:
        """When a proactive turn must wait, until when and why. Holding (rather than dropping) keeps
        a reminder chain alive: it speaks again once the patient opts back in or the week frees up.
        A care message (`care`) waits only for an opted-out patient."""
        if state.opted_out:
            return now + timedelta(days=1), "opted_out"  # look again tomorrow
        if care:
            return None
        cap = self.settings.weekly_cap
        from bot.store.store import EVENT

        times = await store.read(lambda c: c.execute(sa.select(EVENT.c.at).where(
            EVENT.c.conversation_id == state.conversation_id, EVENT.c.kind == "proactive_sent",
            EVENT.c.at > now - WEEK).order_by(EVENT.c.at.desc()).limit(max(cap, 1))).scalars().all())
        if len(times) >= cap:
            oldest = min(times) if times else now
            return max(oldest + WEEK, now + timedelta(minutes=1)), "weekly_cap"
        return None

    @staticmethod
    def mark_sent(effects: list[Effect]) -> list[Effect]:
        """Count a proactive turn that said something against the weekly cap."""
        if any(isinstance(e, Send) for e in effects):
            return [*effects, RecordEvent("proactive_sent", {})]
        return effects
