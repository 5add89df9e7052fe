"""The runtime: inbox → lock → pipeline → commit, then hand committed messages to the sender.

- De-duplication: a fast check in `coord`, and the database inbox (unique channel + message id)
  as the authority, written in the same transaction as the new state.
- Ordering: each conversation has a mailbox drained by one task, under a `coord` lock so other
  worker processes wait their turn; the state row's version catches anything the lock missed.
- Durability: state, outbox rows, timers and records commit together; only then is anything sent.
- Capabilities: before the commit each outbound is fitted to what its platform can do
  (bot/runtime/degrade.py), so the outbox holds what is really sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Literal

from bot import metrics
from bot.actions.base import ActionContext, ActionResult
from bot.adapter import AdapterSet
from bot.care.erasure import erase_records
from bot.clock import Clock
from bot.coord import Coord
from bot.coord.base import Hold
from bot.engine.engine import Engine
from bot.engine.state import State
from bot.pipeline import Pipeline
from bot.runtime.degrade import chat_capabilities, degrade_effects
from bot.runtime.proactive import ProactivePolicy, is_care, is_proactive
from bot.store.store import Duplicate, Store, TurnCommit, VersionConflict
from bot.store.writer import WriteFn
from bot.types import CallAction, Effect, Inbound, OpenTicket
from bot.unavailable import log_failure

if TYPE_CHECKING:
    from bot.actions.registry import ActionRegistry
    from bot.handoff.service import HandoffService
    from bot.runtime.sender import Sender

log = logging.getLogger("carebot.runtime")

MAX_ACTIONS_PER_TURN = 20
MAX_CONFLICT_RETRIES = 5


@dataclass
class Outcome:
    status: Literal["processed", "duplicate", "postponed"]
    effects: list[Effect] = field(default_factory=list)
    state: State | None = None


class Runtime:
    def __init__(self, *, pipeline: Pipeline, engine: Engine, store: Store, coord: Coord, clock: Clock,
                 actions: ActionRegistry | None = None, sender: Sender | None = None,
                 cache_size: int = 50_000, lock_ttl: float = 30.0, proactive: ProactivePolicy | None = None,
                 adapters: AdapterSet | None = None):
        self.pipeline = pipeline
        self.engine = engine
        self.store = store
        self.coord = coord
        self.clock = clock
        self.actions = actions
        self.sender = sender
        self.lock_ttl = lock_ttl
        self.proactive = proactive
        self.adapters = adapters or AdapterSet()
        self._cache: OrderedDict[str, State] = OrderedDict()
        self._cache_size = cache_size
        self._mailboxes: dict[str, deque[tuple[Inbound, asyncio.Future[Outcome], int | None, WriteFn | None]]] = {}
        # called with each committed turn, on the conversation's task: must not block or await
        # the same conversation (schedule work instead)
        self.after_commit: list[Callable[[TurnCommit], None]] = []
        self.listeners: list[asyncio.Queue[tuple[Inbound, Outcome]]] = []
        self.handoff: HandoffService | None = None  # set by CareBot.build: adapters close tickets through it
        # set when the server is asked to stop (SIGTERM): long-lived streams (server-sent events,
        # long polls) end at once, so the shutdown is not held up by clients that never leave
        self.stopping = asyncio.Event()

    async def erase(self, conversation_id: str, now: datetime) -> None:
        """Forget a conversation ("forget me"): the patient's text leaves bot's records, then every
        adapter erases what it keeps (`Adapter.erase`: the web chat's log and uploads). Ids, times
        and the audit trail stay."""
        await self.store.write(lambda conn: erase_records(conn, conversation_id, now))
        for adapter in list(self.adapters.adapters.values()):
            await adapter.erase(conversation_id, now)

    async def handle(self, inbound: Inbound, *, timer_id: int | None = None, also: WriteFn | None = None) -> Outcome:
        """Process one inbound message; returns once its effects are committed (safe to ack).
        `also` writes what the adapter keeps about the message in the turn's own transaction
        (not run for a duplicate).

        Nothing is awaited before the message joins its conversation's mailbox, so messages keep
        the order in which they reached this call; the duplicate check runs under the lock."""
        conv = inbound.address.conversation_id
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        box = self._mailboxes.get(conv)
        if box is None:
            box = self._mailboxes[conv] = deque()
            box.append((inbound, fut, timer_id, also))
            asyncio.create_task(self._drain(conv, box))
        else:
            box.append((inbound, fut, timer_id, also))
        return await fut

    async def _drain(self, conv: str, box: deque[tuple[Inbound, asyncio.Future[Outcome], int | None, WriteFn | None]]) -> None:
        """Process the mailbox while holding the conversation: one `coord.hold` for a run of
        messages, one `coord.step` between them, one `coord.release` when the mailbox is empty
        (with Redis each is one batched round trip). The seen-mark and the committed version of a
        message travel with the next step or the release, off the patient's path: the inbox row,
        written with the turn, is what makes a message processed."""
        metrics.ACTIVE.inc()
        hold: Hold | None = None
        done: str | None = None  # the dedupe key processed last, not yet marked seen
        version = 0  # the state version this hold committed last
        try:
            while True:
                while box:
                    inbound, fut, timer_id, also = box[0]
                    try:
                        if hold is None:
                            hold = await self.coord.hold(conv, inbound.dedupe_key, ttl=self.lock_ttl)
                            self._validate_cache(conv, hold.version)
                        elif not await self.coord.step(hold, done, version, inbound.dedupe_key, ttl=self.lock_ttl):
                            hold, done = None, None  # our lease ran out meanwhile: take it again
                            self._cache.pop(conv, None)
                            continue
                        done = None
                        outcome = await self._process(inbound, timer_id, also, seen=hold.seen)
                    except Exception as exc:
                        log_failure(log, exc, "turn failed conversation=%s kind=%s", conv, inbound.kind)
                        if not fut.done():
                            fut.set_exception(exc)
                    else:
                        if outcome.status == "duplicate" or outcome.state is not None:
                            done = inbound.dedupe_key
                        if outcome.state is not None:
                            version = max(version, outcome.state.version)
                        if not fut.done():
                            fut.set_result(outcome)
                        for q in self.listeners:
                            q.put_nowait((inbound, outcome))
                    box.popleft()
                if hold is None:
                    break
                try:
                    await self.coord.release(hold, done, version)
                except Exception as exc:  # the lock expires by itself; the inbox stays the authority
                    log_failure(log, exc, "release failed conversation=%s", conv)
                hold, done = None, None
                if not box:
                    break
        finally:
            del self._mailboxes[conv]
            metrics.ACTIVE.dec()

    def _validate_cache(self, conv: str, version: int | None) -> None:
        """Keep the cached state only while it is the version last committed (None: this process
        is the only writer, its cache is the truth)."""
        if version is None:
            return
        cached = self._cache.get(conv)
        if cached is not None and cached.version != version:
            del self._cache[conv]

    async def _load(self, inbound: Inbound) -> State:
        conv = inbound.address.conversation_id
        state = self._cache.get(conv)
        if state is not None:
            self._cache.move_to_end(conv)
            return state
        data, version = await self.store.load(conv)
        if data is None:
            return self.engine.new_state(inbound)
        return State.from_dict(data, version)

    def _remember(self, state: State) -> None:
        self._cache[state.conversation_id] = state
        self._cache.move_to_end(state.conversation_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _process(self, inbound: Inbound, timer_id: int | None, also: WriteFn | None = None, *,
                       seen: bool = False) -> Outcome:
        started = time.perf_counter()
        channel = inbound.address.channel
        if seen:
            metrics.INBOUND.labels(channel, inbound.kind, "duplicate").inc()
            return Outcome("duplicate")
        for _attempt in range(MAX_CONFLICT_RETRIES):
            before = await self._load(inbound)
            now = self.clock.now()
            if self.proactive is not None and is_proactive(inbound) and timer_id is not None:
                hold = await self.proactive.hold_until(before, self.store, now, care=is_care(inbound))
                if hold is not None:
                    await self.store.postpone_timer(timer_id, hold[0], now, before.conversation_id, hold[1])
                    return Outcome("postponed")
            state, effects = await self.pipeline.run(before, inbound, now)
            state, effects = await self._run_actions(state, effects, inbound, now)
            if self.proactive is not None and is_proactive(inbound) and not is_care(inbound):
                effects = self.proactive.mark_sent(effects)  # care messages never count against the cap
            content = self.engine.content
            effects = degrade_effects(effects, self.adapters, content.render, state.locale, content.base_locale,
                                      await chat_capabilities(effects, self.adapters))
            ticket_ids = {i: f"T{uuid.uuid4().hex[:12]}" for i, e in enumerate(effects) if isinstance(e, OpenTicket)}
            if ticket_ids:
                state.ticket_id = list(ticket_ids.values())[-1]
            commit = TurnCommit(
                conversation_id=state.conversation_id, address=state.address,
                state_json=json.dumps(state.to_dict(), ensure_ascii=False, default=str),
                mode=state.mode, locale=state.locale, expected_version=before.version, now=now,
                inbound=inbound, effects=effects, ticket_ids=ticket_ids,
                current_ticket=before.ticket_id if not ticket_ids else state.ticket_id, timer_id=timer_id,
                also=also)
            try:
                claimed = await self.store.commit_turn(commit)
            except Duplicate:
                metrics.INBOUND.labels(channel, inbound.kind, "duplicate").inc()
                return Outcome("duplicate")
            except VersionConflict:
                metrics.CONFLICTS.inc()
                self._cache.pop(state.conversation_id, None)
                continue
            state.version = before.version + 1
            self._remember(state)
            if self.sender is not None and claimed:
                self.sender.enqueue(claimed)
            for hook in self.after_commit:
                try:
                    hook(commit)
                except Exception:
                    log.exception("after-commit hook failed conversation=%s", state.conversation_id)
            metrics.INBOUND.labels(channel, inbound.kind, "processed").inc()
            metrics.TURN_SECONDS.observe(time.perf_counter() - started)
            return Outcome("processed", effects, state)
        raise VersionConflict(f"{inbound.address.conversation_id}: gave up after {MAX_CONFLICT_RETRIES} tries")

    async def _run_actions(self, state: State, effects: list[Effect], inbound: Inbound,
                           now: object) -> tuple[State, list[Effect]]:
        """Run the actions the engine asked for and resume it with their results, same turn."""
        for _ in range(MAX_ACTIONS_PER_TURN):
            calls = [e for e in effects if isinstance(e, CallAction)]
            if not calls:
                return state, effects
            call = calls[-1]
            effects = [e for e in effects if not isinstance(e, CallAction)]
            ctx = ActionContext(call.name, call.args, dict(call.slots), state.address, state.conversation_id,
                                state.locale, self.clock.now(), inbound.text, self.store)
            if self.actions is None:
                result = ActionResult(ok=False, error="no action registry configured")
            else:
                result = await self.actions.run(call.name, ctx)
            resume = Inbound(kind="action_result", address=inbound.address, message_id=f"{inbound.message_id}#a",
                             received_at=inbound.received_at,
                             payload={"call_id": call.call_id, "result": result.to_dict()})
            state, more = self.engine.step(state, resume, self.clock.now())
            effects = effects + more
        raise RuntimeError("too many actions in one turn")
