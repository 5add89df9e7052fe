"""The safety stage: red-flag triage on every patient message, in every mode, before any flow.

An emergency is answered at once with the local emergency route, the running flow is stopped (no
more intake questions), an urgent hand-off is opened (or the open one raised to urgent) and the
pipeline ends there. The conversation's triage level only ever goes up until the episode closes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

from bot.engine.answers import Invalid, parse_yes_no
from bot.engine.state import State
from bot.flow.content import Content
from bot.handoff.relay import STAFFED_SLOT
from bot.pipeline import Next, TurnContext
from bot.triage import Assessment, PatientContext, max_level
from bot.triage.model import EMERGENCY_LEVELS, LEVEL_RANK
from bot.triage.guidance import Guidance
from bot.triage.screen import Screener, Screening, has_script_of
from bot.care.actions import patient_ref
from bot.understand.normalize import canonical
from bot.understand.slots import RELATIONS, relation
from bot.understand.values import read_values
from bot.types import Button, CancelTimer, Inbound, OpenTicket, Outbound, RecordEvent, Send, UpdateTicket

SCREENED = frozenset({"text", "choice", "media", "command"})
FALLBACK_REPLY = "triage.emergency"


def signs_of(result: Assessment) -> list[str]:
    """The patient's own words each fired rule matched ("face is drooping", "can't lift his arm"): what
    the doctor reads on the ticket, in place of rule ids."""
    return list(dict.fromkeys(part.strip() for m in result.matched if not m.rule.startswith("not_now:")
                              for part in m.span.split(" + ") if part.strip()))


def patient_context(state: State) -> PatientContext:
    """What the conversation already knows about the patient (from intake slots)."""
    slots = state.slots
    months = slots.get("age_months")
    if months is None and isinstance(slots.get("age"), (int, float)):
        months = int(slots["age"] * 12)
    pregnant = slots.get("pregnant")
    sex = slots.get("sex")
    if months is None and sex is None and pregnant is None:
        return _NOBODY_KNOWN  # most messages: one shared context (it is hashed into every screening's key)
    return PatientContext(
        age_months=int(months) if isinstance(months, (int, float)) else None,
        sex=sex if isinstance(sex, str) else None,
        pregnant=pregnant if isinstance(pregnant, bool) else None,
    )


_NOBODY_KNOWN = PatientContext()


EPISODE_WINDOW = timedelta(hours=6)  # earlier messages that still count with the new one
EPISODE_MESSAGES = 4  # at most this many earlier messages
SAFETY_YES, SAFETY_NO = "safety_yes", "safety_no"
CALLED_YES, CALLED_NO = "called_yes", "called_no"
CALLED_SLOT = "_called_emergency"  # the patient said the ambulance was called
CALLED_WORDS = frozenset({"打了", "已经打了", "打过了", "拨了", "已拨打", "拨打了", "叫了", "叫了救护车", "救护车来了",
                          "救护车在路上", "called", "i called", "already called", "i've called", "ive called",
                          "ambulance is coming", "they're coming", "on the way"})
# words about the emergency route itself: such a message is never an "ordinary request" after an emergency
ROUTE_WORDS = ("救护车", "急救", "急诊", "120", "ambulance", "paramedic", "emergency", "a&e")
CHECK_SLOT = "_safety_check"  # the question asked and the message it was about
# "已经打了120了，救护车还没到", "救护车说10分钟到", "we called 999, they're on the way": the call was made
_CALLED = re.compile(r"(已经|刚|刚刚|早就|早)?(打了|拨了|叫了|打过了|拨过了)(120|急救|救护车|电话)?|救护车(来了|到了|在路上|快到了|马上到|说[^，。,.!！?？]{0,8}到)"
                     r"|\b(i|we|i've|we've|ive|weve|have|already|just)\s+(\w+\s+)?called\b|\b(ambulance|paramedics?)\s+(is|are|'s|s)\s+"
                     r"(on\s+(the|their|its)\s+way|coming|here)\b|\bon\s+(the|their)\s+way\b", re.I)
_NOT_CALLED = re.compile(r"没打|没拨|没叫|还没打|不敢打|要不要打|\b(not yet|haven'?t|didn'?t|should i|shall i)\b", re.I)


def said_called(text: str) -> bool:
    """The message says the emergency number was called (not "should I call?", not "haven't yet")."""
    said = canonical(text).strip(" 。.!！")
    return said in CALLED_WORDS or (bool(_CALLED.search(said)) and not _NOT_CALLED.search(said))


class SafetyStage:
    """Screens every patient message (every language, every layer, with the episode's recent messages).

    - emergency → the emergency reply with the region's numbers, the flow stops, an urgent ticket;
    - a partial signal (a rule or the department lexicon saw a symptom and the learned layer is close
      to, but under, its threshold) → one yes/no safety
      question shown with the emergency route ("Is this happening now?"); the answer decides: yes →
      the emergency path, no → the turn goes on with the message the question was about.
    """

    def __init__(self, screener: Screener, content: Content, base_locale: str,
                 guidance: Guidance | None = None, region_numbers: dict[str, str] | None = None,
                 requests: Callable[[State, Inbound], str | None] | None = None):
        self.screener = screener
        self.content = content
        self.base_locale = base_locale
        self.guidance = guidance  # what to do while waiting, per red flag (content/guidance)
        self.region_numbers = region_numbers or {}  # content/care.yml region.numbers
        # the flow the bot would answer a request with alone, no hand-off (Engine.answers_alone)
        self.requests = requests

    async def __call__(self, ctx: TurnContext, call_next: Next) -> None:
        inbound, state = ctx.inbound, ctx.state
        locale = state.locale or self.base_locale
        check = state.slots.pop(CHECK_SLOT, None)
        if isinstance(check, dict) and inbound.kind in SCREENED and await self._answer_check(ctx, check, call_next):
            return
        text = inbound.text.strip()
        if inbound.kind not in SCREENED or not text or text.startswith("/") or self.screener.rules_for(locale) is None:
            await call_next(ctx)
            return
        patient = patient_context(state)
        screening = self.screener.screen(text, locale, patient)
        asks = self.screener.wants_question(screening, evidence_needed=False)  # the learned layer at its question level
        earlier: list[str] = []
        if self._says_something(screening, text, asks):
            # read it together with the episode's earlier medical messages ("宝宝两个月" … "发烧了")
            earlier = self._window(state, ctx.now)
            if earlier:
                joined = self.screener.screen("\n".join(earlier + [text]), locale, patient)
                before = LEVEL_RANK[max_level(state.triage_level or "self_care", screening.assessment.level)]
                if LEVEL_RANK[joined.assessment.level] > before:  # the messages together say more
                    screening = joined
                    asks = self.screener.wants_question(screening, evidence_needed=False)
            state.episode = state.episode[-EPISODE_MESSAGES:] + [[ctx.now.isoformat(), text]]
        result = screening.assessment
        waiting = state.mode == "human" and state.triage_level in EMERGENCY_LEVELS and not state.slots.get(STAFFED_SLOT)
        if result.level not in ("self_care", "consultation"):
            ctx.effects.append(RecordEvent("triage", {
                "level": result.level, "department": result.department,
                "rules": [m.rule for m in result.matched], "signs": signs_of(result), "layers": screening.explain()}))
        # an emergency read by the model alone, at no higher level, while one is open ("好的，已经打了，救护车说
        # 10分钟到"): not the alarm again over the doctor's replies — the message goes to the urgent ticket, and
        # while nobody has the thread yet the emergency follow-up answers it (below). A sign a rule names
        # ("嘴唇发紫 叫不醒了") is the alarm again, with its guidance.
        already = state.mode == "human" and state.triage_level in EMERGENCY_LEVELS and not signs_of(result) and \
            LEVEL_RANK[result.level] <= LEVEL_RANK[state.triage_level]
        state.triage_level = max_level(state.triage_level or "self_care", result.level)
        if result.is_emergency and not already:
            self._emergency(ctx, result, screening, earlier + [text])
            return
        # the safety question: the learned layer at its question level, and a rule or a department word saw
        # something medical (`Screener.wants_question` with evidence, from the reading above)
        if asks and self.screener.medical(screening) and state.mode != "human":
            self._ask_check(ctx, text, locale)
            return
        if waiting:  # after an emergency, until a person takes over, no message goes unanswered
            if self._goes_on(ctx, locale):
                ctx.bot_answers = True
            else:
                self._stay_with(ctx, locale)
        await call_next(ctx)

    def _goes_on(self, ctx: TurnContext, locale: str) -> bool:
        """An ordinary request after the emergency (prices, a reminder…) is answered, with the emergency
        route kept in sight; so are the answers to the questions of the flow it started. "Have you
        called?" answers and anything else get the emergency follow-up (`_stay_with`)."""
        state, inbound = ctx.state, ctx.inbound
        if self.requests is None:
            return False
        top = state.top
        if top is not None and top.wait == "ask":  # the emergency cleared the stack: a flow started since
            return True
        value = str(inbound.payload.get("value", "")) if isinstance(inbound.payload, dict) else ""
        said = canonical(inbound.text)
        if value in (CALLED_YES, CALLED_NO) or said_called(inbound.text) or \
                any(w in said for w in ROUTE_WORDS) or any(n and n in said for n in self._numbers(locale)):
            return False  # about the emergency itself ("救护车要多久"): the emergency follow-up answers
        flow = self.requests(state, inbound)
        if flow is None:
            return False
        if flow == "leave_queue":  # its own answer is about the emergency ticket: no "first, your question"
            return True
        values = {"numbers": " / ".join(self._numbers(locale))}
        ctx.effects.append(Send(Outbound(
            op="say", address=state.address, key="triage.route_kept",
            text=self.content.render("triage.route_kept", locale, values), extra={"priority": "emergency"})))
        return True

    def _stay_with(self, ctx: TurnContext, locale: str) -> None:
        """"Have you called 120?" — and what the answer means — while the emergency waits for a person.
        The message itself still goes on to the urgent ticket (the relay stage)."""
        value = str(ctx.inbound.payload.get("value", "")) if isinstance(ctx.inbound.payload, dict) else ""
        key, buttons = "triage.after_emergency", (("common.yes", CALLED_YES), ("common.no", CALLED_NO))
        said = canonical(ctx.inbound.text).strip(" 。.!！")
        try:
            if value in (CALLED_YES, CALLED_NO) or said:
                called = value == CALLED_YES or said_called(ctx.inbound.text) or (
                    value != CALLED_NO and parse_yes_no(ctx.inbound.text, value))
                key, buttons = ("triage.after_called", ()) if called else ("triage.after_not_called", buttons)
                if called:
                    ctx.state.slots[CALLED_SLOT] = True
        except Invalid:
            if ctx.state.slots.get(CALLED_SLOT):  # they said they called: don't ask again, just confirm
                key, buttons = "triage.still_with_you", ()
        values = {"numbers": " / ".join(self._numbers(locale))}
        ctx.effects.append(Send(Outbound(
            op="say", address=ctx.state.address, key=key, text=self.content.render(key, locale, values),
            buttons=tuple(Button(self.content.render(k, locale, {}), v, k) for k, v in buttons),
            extra={"priority": "emergency"})))

    def _says_something(self, screening: Screening, text: str, asks: bool) -> bool:
        """A message worth keeping for the episode: a rule saw a symptom, the learned layer is at least
        at its question level, or it carries a value (an age, a temperature…). "好的", "7" are not."""
        if screening.assessment.matched or asks:
            return True
        return _carries_value(text)

    def _window(self, state: State, now: datetime) -> list[str]:
        since = now - EPISODE_WINDOW
        return [t for at, t in state.episode if _parse(at) >= since]

    def _numbers(self, locale: str) -> list[str]:
        rules = self.screener.rules_for(locale)
        return list(self.screener.number_lists(rules).get("default", ())) if rules is not None else []

    def _ask_check(self, ctx: TurnContext, text: str, locale: str) -> None:
        state = ctx.state
        state.slots[CHECK_SLOT] = {"text": text, "kind": ctx.inbound.kind, "payload": ctx.inbound.payload}
        values = {"numbers": " / ".join(self._numbers(locale))}
        buttons = tuple(Button(self.content.render(k, locale, {}), v, k)
                        for k, v in (("triage.safety_yes", SAFETY_YES), ("triage.safety_no", SAFETY_NO)))
        ctx.effects.append(Send(Outbound(op="say", address=state.address, key="triage.safety_check",
                                         text=self.content.render("triage.safety_check", locale, values),
                                         buttons=buttons, extra={"priority": "emergency"})))
        ctx.effects.append(RecordEvent("safety_check", {"asked": True}))

    async def _answer_check(self, ctx: TurnContext, check: dict, call_next: Next) -> bool:
        """Act on the answer to the safety question; False when the message is not an answer (it is
        then screened as a new message)."""
        state, inbound = ctx.state, ctx.inbound
        value = str(inbound.payload.get("value", "")) if isinstance(inbound.payload, dict) else ""
        try:
            yes = value == SAFETY_YES or (value != SAFETY_NO and parse_yes_no(inbound.text, value))
        except Invalid:
            return False
        ctx.effects.append(RecordEvent("safety_check", {"answer": "yes" if yes else "no"}))
        locale = state.locale or self.base_locale
        if yes:
            rules = self.screener.rules_for(locale)
            assert rules is not None
            screening = self.screener.screen(check.get("text", ""), locale, patient_context(state))
            result = replace(screening.assessment, level=max_level(screening.assessment.level, "emergency"),
                             emergency_numbers=tuple(self._numbers(locale)),
                             reply_key=rules.replies.get("emergency", FALLBACK_REPLY))
            state.triage_level = max_level(state.triage_level or "self_care", result.level)
            self._emergency(ctx, result, screening, [str(check.get("text", "")), inbound.text])
            return True
        ctx.inbound = replace(inbound, kind=check.get("kind", "text"), text=str(check.get("text", "")),
                              payload=check.get("payload") or {})
        await call_next(ctx)
        return True

    def _emergency(self, ctx: TurnContext, result: Assessment, screening: Screening, words: list[str]) -> None:
        state = ctx.state
        state.slots.pop(CALLED_SLOT, None)  # a new emergency: ask again whether the ambulance was called
        numbers = list(result.emergency_numbers)
        key = result.reply_key if self.content.has(result.reply_key) else FALLBACK_REPLY
        locale = self._said_in(screening, state.locale or self.base_locale, key, words[-1] if words else "")
        if locale != (state.locale or self.base_locale):
            # written wholly in the other language: the rest of the emergency (paging news, "have you called?")
            # is said in it too — the conversation's language becomes the writer's
            state.locale = locale
        reply_ctx: dict[str, Any] = {"numbers": " / ".join(numbers), "emergency_numbers": numbers,
                                     "level": result.level, **state.slots}
        # "my father has crushing chest pain": the advice is about him, not the sender ("your father…")
        said = next((r for r in map(relation, words) if r), None) or state.slots.get("patient_relation")
        if isinstance(said, str) and said:
            reply_ctx["patient_ref"] = patient_ref(self.content, said, locale)
            state.slots.setdefault("patient_relation", said)  # the ticket's summary says who it is about
            state.slots.setdefault("patient_is", RELATIONS.get(said, "other"))
        told = len(ctx.effects)
        ctx.effects.append(Send(Outbound(
            op="say", address=state.address, key=key,
            text=self.content.render(key, locale, reply_ctx),
            extra={"priority": "emergency", "call": numbers})))  # call: tap-to-call, ambulance first
        self._guidance(ctx, result, locale)
        for frame in state.stack:  # no more intake questions: the emergency comes first
            if frame.timer:
                ctx.effects.append(CancelTimer(frame.timer))
        state.stack.clear()
        text = words[-1] if words else ctx.inbound.text
        if state.mode == "human":
            ctx.effects.append(UpdateTicket(message=text, priority="urgent"))
        else:
            said = [e.outbound.text for e in ctx.effects[told:] if isinstance(e, Send) and e.outbound.text]
            ctx.effects.append(OpenTicket(
                department=result.department or "emergency", priority="urgent", reason="red_flag",
                summary={"triage_level": result.level, "rules": [m.rule for m in result.matched], "signs": signs_of(result),
                         "layers": screening.explain(), "patient_words": words,
                         "slots": {k: v for k, v in state.slots.items() if not k.startswith("_")}},
                transcript=tuple(("patient", w) for w in words) + tuple(("bot", t) for t in said)))
            state.mode = "human"

    def _said_in(self, screening: Screening, locale: str, key: str, text: str) -> str:
        """The language the emergency reply is said in: the conversation's, unless the message is written
        wholly in another language and only that language's rules saw the emergency ("my husband collapsed
        and he's not breathing" in a Chinese conversation) — then that language, which the writer reads
        (found by the session 11 walkthrough). Mixed text ("我爸 heart attack") keeps the conversation's.
        The numbers stay the region's."""
        own = self.screener.rules_for(locale)
        if own is not None and has_script_of(text, own.locale):
            return locale  # some of it is in the conversation's own script
        levels = {layer.name.split(":", 1)[1]: layer.level for layer in screening.layers if layer.name.startswith("rules:")}
        if own is None or levels.get(own.locale) in EMERGENCY_LEVELS:
            return locale
        best = screening.assessment.level
        other = next((name for name, level in levels.items() if level == best and name != own.locale), None)
        return other if other is not None and key in self.content.messages.get(other, {}) else locale

    def _guidance(self, ctx: TurnContext, result: Assessment, locale: str = "") -> None:
        """What to do while waiting (content/guidance), for the kinds of red flag that fired."""
        if self.guidance is None:
            return
        locale = locale or ctx.state.locale or self.base_locale
        label = self.content.lookup("common.source", locale)
        for kind in self.guidance.kinds_for(m.rule for m in result.matched):
            text = self.guidance.render(kind, locale, self.region_numbers, label.source if label else "Source")
            sources = len(self.guidance.kinds[kind].sources)  # the text's last lines: a widget shows them small
            ctx.effects.append(Send(Outbound(op="say", address=ctx.state.address, key=f"guidance.{kind}", text=text,
                                             extra={"priority": "emergency", "guidance": kind, "sources": sources})))


@lru_cache(maxsize=1024)
def _carries_value(text: str) -> bool:
    """An age, a temperature, a blood pressure… in the message ("7" as a score is none)."""
    return bool(read_values(canonical(text)).flags())  # (no digit, no value: read_values returns at once)


def _parse(at: str) -> datetime:
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
