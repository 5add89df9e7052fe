"""The hand-off relay: the pipeline stage between safety and the engine while a person has the thread.

Staff replies and ticket news (`Inbound` kinds `staff_reply` and `staff_event`, sent by
`HandoffService`) become messages to the patient here, in the patient's language; the patient's
own messages become ticket messages while the conversation's mode is `human`.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.engine.answers import clean
from bot.engine.engine import Engine, mentions
from bot.flow.loader import normalize
from bot.pipeline import PATIENT_INPUT, Next, TurnContext
from bot.triage.model import EMERGENCY_LEVELS
from bot.types import Outbound, Send, UpdateTicket

STAFFED_SLOT = "_staffed_by"  # a person took the thread (assigned, or replied); cleared when it closes
PASSED_SLOT = "_passed_told"  # the ticket whose waiting patient was told their added words reached it


QUEUE_NEWS_SLOT = "_queue_news"  # the last position / expected wait the queue told the patient
# "还要等多久？", "什么时候轮到我", "how long will it be", "any idea when": a question about the wait
_ASKS_WAIT = re.compile(r"(还要|要|得)?等(多久|多长时间|到什么时候|到啥时候)|多久(才|能|轮到|有人)|什么时候(轮到|能|才|有人|回复)|"
                        r"啥时候(轮到|能|才|有人)|排到第几|前面还有几|轮到我|\bhow\s+(long|much\s+longer)\b|\bwhen\s+will\b|"
                        r"\bany\s+(idea|update)\b|\bstill\s+waiting\b|\bwhere\s+am\s+i\s+in\s+the\s+queue\b", re.I)


class RelayStage:
    """While a human handles the thread, the patient's messages go to the ticket and flows pause;
    a staff reply goes to the patient on their own channel, marked with the doctor's name. Flows
    marked `during_handoff: true` (opt-out, forget me, revoke consent) still answer their triggers.
    Ticket news (queued, assigned, waiting, transferred) is told to the patient in their language."""

    NEWS = {"queued": "handoff.queued", "assigned": "handoff.assigned", "waiting": "handoff.waiting",
            "transferred": "handoff.transferred",
            # emergency paging (bot/handoff/paging.py): said only once it has happened
            "paged": "paging.delivered", "acknowledged": "paging.acknowledged", "unreachable": "paging.unreachable"}

    LEAVE = "leave_queue"  # flows/leave_queue.yml: the patient withdraws their request

    AFTER_HOURS = {"handoff.queued": "handoff.queued_after_hours", "handoff.waiting": "handoff.waiting_after_hours"}

    def __init__(self, engine: Engine):
        self.engine = engine

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        inbound, state = ctx.inbound, ctx.state
        if inbound.kind == "staff_reply":
            p = inbound.payload
            if not p.get("internal"):
                state.slots[STAFFED_SLOT] = str(p.get("staff_name", "") or p.get("staff_id", ""))
            if p.get("internal"):  # an internal note never reaches the patient
                return
            ctx.effects.append(Send(Outbound(
                op="say", address=state.address, text=inbound.text, sender=f"staff:{p.get('staff_id', '')}",
                sender_name=str(p.get("staff_name", "")), media=inbound.media)))
            return
        if inbound.kind == "staff_event":
            event = inbound.payload.get("event")
            if event == "closed":
                # no "how likely are you to recommend us?" after an emergency: the family has other things
                # on their mind (found by the session 11 walkthrough); its quality is reviewed by staff
                emergency = state.triage_level in EMERGENCY_LEVELS
                state.mode = "bot"
                state.last_ticket_id = state.ticket_id or str(inbound.payload.get("ticket_id", ""))
                state.ticket_id = ""
                state.triage_level = ""
                state.episode.clear()
                state.slots.pop(STAFFED_SLOT, None)
                if inbound.payload.get("status", "resolved") == "resolved" and not emergency:
                    await call_next(ctx)  # the engine runs the handoff_closed flow (the survey)
                return
            if event == "assigned":
                state.slots[STAFFED_SLOT] = str(inbound.payload.get("staff_name", "") or "staff")
            if event in self.NEWS and state.mode == "human":
                key = "paging.seen_after_unreachable" if event == "paged" and inbound.payload.get("update") \
                    else self.NEWS[event]
                self._news(ctx, key, inbound.payload)
            return
        if state.mode == "human" and inbound.kind in PATIENT_INPUT:
            if ctx.bot_answers:  # an ordinary request after an emergency: the team sees it, the bot answers it
                ctx.effects.append(UpdateTicket(message=inbound.text or str(inbound.payload.get("value", "")),
                                                media=inbound.media))
                await call_next(ctx)
                return
            flow = self.engine.trigger_for(inbound)
            if flow is None and not state.slots.get(STAFFED_SLOT) and self._withdraws(inbound.text):
                flow = "cancel"  # "不想等了，取消吧": the leave flow asks to confirm before anything is withdrawn
            if flow == "cancel" and self.LEAVE in self.engine.flows.flows:
                # 取消 / cancel while the thread is with the care team means the request for a doctor
                ctx.inbound = replace(inbound, kind="choice", payload={"value": self.LEAVE})
                await call_next(ctx)
                return
            if flow is not None and self.engine.flows.get(flow).flow.during_handoff:
                await call_next(ctx)
                return
            if flow is not None and not state.slots.get(STAFFED_SLOT):
                # the menu, /start, help … while still in the queue: say where they are rather than
                # relay a command to a doctor who has not taken the thread yet
                ctx.effects.append(Send(Outbound(
                    op="say", address=state.address, key="handoff.still_waiting",
                    text=self.engine.content.render("handoff.still_waiting", state.locale, {}))))
                return
            top = state.top  # the answer to a question such a flow asked (forget me? yes)
            if top is not None and top.wait and self.engine.flows.get(top.flow).flow.during_handoff:
                await call_next(ctx)
                return
            ctx.effects.append(UpdateTicket(message=inbound.text or str(inbound.payload.get("value", "")),
                                            media=inbound.media))
            news = state.slots.get(QUEUE_NEWS_SLOT)
            if not state.slots.get(STAFFED_SLOT) and isinstance(news, dict) and _ASKS_WAIT.search(inbound.text or ""):
                # "还要等多久？": the last word the queue gave (position, expected time), said again — never a
                # new promise the queue did not make
                self._say(ctx, str(news.get("key", "handoff.still_waiting")), news.get("values") or {})
                return
            if not state.slots.get(STAFFED_SLOT) and state.slots.get(PASSED_SLOT) != state.ticket_id:
                # the first thing they add while nobody has the thread yet: say it reached the ticket (once
                # per ticket — after hours the wait is long, and silence reads as lost)
                state.slots[PASSED_SLOT] = state.ticket_id
                ctx.effects.append(Send(Outbound(
                    op="say", address=state.address, key="handoff.message_passed",
                    text=self.engine.content.render("handoff.message_passed", state.locale, {}))))
            return
        await call_next(ctx)

    def _withdraws(self, text: str) -> bool:
        """While the request waits for a person: a message that says to cancel it in more words than an
        exact keyword ("不想等了，取消吧", "actually never mind, please cancel") — one of leave_queue's or
        the cancel flow's words anywhere in it (Chinese anywhere, English as whole words)."""
        t = normalize(clean(text))
        if not t or t.startswith("/"):
            return False
        return any(mentions(t, word) for rule in self.engine.flows.keywords if rule.flow in (self.LEAVE, "cancel")
                   for word in rule.words)

    def _news(self, ctx: TurnContext, key: str, payload: dict) -> None:  # type: ignore[type-arg]
        values = {**payload, "minutes": payload.get("minutes", ""), "position": payload.get("position", "")}
        if payload.get("reply_basis") == "after_hours" and key in self.AFTER_HOURS:
            key = self.AFTER_HOURS[key]  # one promise: when staff are back, never "within N minutes" too
        if key.startswith(("handoff.queued", "handoff.waiting")):  # what "how long?" is answered with
            ctx.state.slots[QUEUE_NEWS_SLOT] = {"key": key, "values": {k: v for k, v in values.items()
                                                                       if isinstance(v, (str, int, float))}}
        self._say(ctx, key, values)

    def _say(self, ctx: TurnContext, key: str, values: dict) -> None:  # type: ignore[type-arg]
        ctx.effects.append(Send(Outbound(
            op="say", address=ctx.state.address, key=key,
            text=self.engine.content.render(key, ctx.state.locale, values))))
