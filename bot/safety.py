"""The safety stage: red-flag triage on every patient message, in every mode, before any flow.

An emergency is answered at once with the local emergency route, the running flow is stopped (no
more intake questions), an urgent hand-off is opened (or the open one raised to urgent) and the
pipeline ends there. The conversation's triage level only ever goes up until the episode closes.
"""

from __future__ import annotations

from typing import Any

from bot.engine.state import State
from bot.flow.content import Content
from bot.pipeline import Next, TurnContext
from bot.triage import PatientContext, TriageRules, assess, max_level
from bot.types import CancelTimer, OpenTicket, Outbound, RecordEvent, Send, UpdateTicket

SCREENED = frozenset({"text", "choice", "media", "command"})
FALLBACK_REPLY = "triage.emergency"


def patient_context(state: State) -> PatientContext:
    """What the conversation already knows about the patient (from intake slots)."""
    slots = state.slots
    months = slots.get("age_months")
    if months is None and isinstance(slots.get("age"), (int, float)):
        months = int(slots["age"] * 12)
    pregnant = slots.get("pregnant")
    return PatientContext(
        age_months=int(months) if isinstance(months, (int, float)) else None,
        sex=slots.get("sex") if isinstance(slots.get("sex"), str) else None,
        pregnant=pregnant if isinstance(pregnant, bool) else None,
    )


class SafetyStage:
    def __init__(self, rules: dict[str, TriageRules], content: Content, base_locale: str):
        self.rules = rules
        self.content = content
        self.base_locale = base_locale

    def _rules_for(self, locale: str) -> TriageRules | None:
        return self.rules.get(locale) or self.rules.get(locale.split("-")[0]) or self.rules.get(self.base_locale)

    def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        inbound, state = ctx.inbound, ctx.state
        text = inbound.text.strip()
        rules = self._rules_for(state.locale or self.base_locale)
        if inbound.kind not in SCREENED or not text or rules is None or text.startswith("/"):
            call_next(ctx)
            return
        result = assess(text, rules, patient_context(state))
        if result.level not in ("self_care", "consultation"):
            ctx.effects.append(RecordEvent("triage", {
                "level": result.level, "department": result.department,
                "rules": [m.rule for m in result.matched]}))
        state.triage_level = max_level(state.triage_level or "self_care", result.level)
        if not result.is_emergency:
            call_next(ctx)
            return
        numbers = list(result.emergency_numbers)
        key = result.reply_key if self.content.has(result.reply_key) else FALLBACK_REPLY
        reply_ctx: dict[str, Any] = {"numbers": " / ".join(numbers), "emergency_numbers": numbers,
                                     "level": result.level, **state.slots}
        ctx.effects.append(Send(Outbound(
            op="say", address=state.address, key=key,
            text=self.content.render(key, state.locale or self.base_locale, reply_ctx),
            extra={"priority": "emergency"})))
        for frame in state.stack:  # no more intake questions: the emergency comes first
            if frame.timer:
                ctx.effects.append(CancelTimer(frame.timer))
        state.stack.clear()
        if state.mode == "human":
            ctx.effects.append(UpdateTicket(message=text, priority="urgent"))
        else:
            ctx.effects.append(OpenTicket(
                department=result.department or "emergency", priority="urgent", reason="red_flag",
                summary={"triage_level": result.level, "rules": [m.rule for m in result.matched],
                         "slots": dict(state.slots)}))
            state.mode = "human"
