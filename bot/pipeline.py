"""The pipeline a message goes through: safety → moderation → hand-off relay → engine.

Each stage is a small pure callable in the style of a middleware: it looks at the turn, may add
effects or change the state, and calls `call_next` to let later stages run — or doesn't, to stop
them (the safety stage stops everything after an emergency reply). No stage does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Protocol

from bot.engine.engine import Engine
from bot.engine.state import State
from bot.types import Effect, Inbound, Outbound, Send, UpdateTicket

PATIENT_INPUT = frozenset({"text", "choice", "media", "command"})
STAFFED_SLOT = "_staffed_by"  # a person took the thread (assigned, or replied); cleared when it closes


@dataclass
class TurnContext:
    state: State
    inbound: Inbound
    now: datetime
    effects: list[Effect] = field(default_factory=list)


Next = Callable[[TurnContext], None]


class Stage(Protocol):
    def __call__(self, ctx: TurnContext, call_next: Next) -> None: ...


class Pipeline:
    def __init__(self, stages: list[Stage]):
        self.stages = stages

    def run(self, state: State, inbound: Inbound, now: datetime) -> tuple[State, list[Effect]]:
        ctx = TurnContext(state.clone(), inbound, now)
        self._call(0, ctx)
        return ctx.state, ctx.effects

    def _call(self, i: int, ctx: TurnContext) -> None:
        if i < len(self.stages):
            self.stages[i](ctx, lambda c: self._call(i + 1, c))


class EngineStage:
    """The last stage: the flow engine."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        ctx.state, effects = self.engine.step(ctx.state, ctx.inbound, ctx.now)
        ctx.effects.extend(effects)
        call_next(ctx)


class RelayStage:
    """While a human handles the thread, the patient's messages go to the ticket and flows pause;
    a staff reply goes to the patient on their own channel, marked with the doctor's name. Flows
    marked `during_handoff: true` (opt-out, forget me, revoke consent) still answer their triggers.
    Ticket news (queued, assigned, waiting, transferred) is told to the patient in their language."""

    NEWS = {"queued": "handoff.queued", "assigned": "handoff.assigned", "waiting": "handoff.waiting",
            "transferred": "handoff.transferred",
            # emergency paging (bot/handoff/paging.py): said only once it has happened
            "paged": "paging.delivered", "acknowledged": "paging.acknowledged", "unreachable": "paging.unreachable"}

    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, ctx: TurnContext, call_next: Next) -> None:
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
                state.mode = "bot"
                state.last_ticket_id = state.ticket_id or str(inbound.payload.get("ticket_id", ""))
                state.ticket_id = ""
                state.triage_level = ""
                state.episode.clear()
                state.slots.pop(STAFFED_SLOT, None)
                if inbound.payload.get("status", "resolved") == "resolved":
                    call_next(ctx)  # the engine runs the handoff_closed flow (the survey)
                return
            if event == "assigned":
                state.slots[STAFFED_SLOT] = str(inbound.payload.get("staff_name", "") or "staff")
            if event in self.NEWS and state.mode == "human":
                self._news(ctx, self.NEWS[event], inbound.payload)
            return
        if state.mode == "human" and inbound.kind in PATIENT_INPUT:
            flow = self.engine.trigger_for(inbound)
            if flow is not None and self.engine.flows.get(flow).flow.during_handoff:
                call_next(ctx)
                return
            top = state.top  # the answer to a question such a flow asked (forget me? yes)
            if top is not None and top.wait and self.engine.flows.get(top.flow).flow.during_handoff:
                call_next(ctx)
                return
            ctx.effects.append(UpdateTicket(message=inbound.text or str(inbound.payload.get("value", "")),
                                            media=inbound.media))
            return
        call_next(ctx)

    def _news(self, ctx: TurnContext, key: str, payload: dict) -> None:  # type: ignore[type-arg]
        content = self.engine.content
        values = {**payload, "minutes": payload.get("minutes", ""), "position": payload.get("position", "")}
        keys = [key]
        if payload.get("out_of_hours"):
            keys.append("handoff.out_of_hours")
        for k in keys:
            ctx.effects.append(Send(Outbound(
                op="say", address=ctx.state.address, key=k,
                text=content.render(k, ctx.state.locale, values))))
