"""The pipeline a message goes through: safety → moderation → hand-off relay → engine.

Each stage is a small callable in the style of aiogram's middleware: it looks at the turn, may add
effects or change the state, and awaits `call_next` to let later stages run — or doesn't, to stop
them (the safety stage stops everything after an emergency reply). A stage may await (a shared rate
limit in `Coord`, say) but the turn's result is still a function of the state and the inbound: the
engine itself stays pure and synchronous. The hand-off relay lives with the hand-off
(`bot/handoff/relay.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Awaitable, Callable, Protocol

from bot.engine.engine import Engine
from bot.engine.state import State
from bot.types import Effect, Inbound

PATIENT_INPUT = frozenset({"text", "choice", "media", "command"})


@dataclass
class TurnContext:
    state: State
    inbound: Inbound
    now: datetime
    effects: list[Effect] = field(default_factory=list)
    # set by the safety stage: while an emergency waits for a person, the relay lets the engine answer
    # this patient message too (an ordinary request, or the answer to its question); it still reaches
    # the urgent ticket
    bot_answers: bool = False


Next = Callable[[TurnContext], Awaitable[None]]


class Stage(Protocol):
    async def __call__(self, ctx: TurnContext, call_next: Next) -> None: ...


async def _end(ctx: TurnContext) -> None:
    """After the last stage: nothing more to do."""


class Pipeline:
    def __init__(self, stages: list[Stage]):
        self.stages = stages
        chain: Next = _end
        for stage in reversed(stages):  # built once: stage i's call_next is stage i+1
            chain = partial(stage, call_next=chain)
        self._first = chain

    async def run(self, state: State, inbound: Inbound, now: datetime) -> tuple[State, list[Effect]]:
        ctx = TurnContext(state.clone(), inbound, now)
        await self._first(ctx)
        return ctx.state, ctx.effects


class EngineStage:
    """The last stage: the flow engine."""

    def __init__(self, engine: Engine):
        self.engine = engine

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        ctx.state, effects = self.engine.step(ctx.state, ctx.inbound, ctx.now)
        ctx.effects.extend(effects)
        await call_next(ctx)
