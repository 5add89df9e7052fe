"""What a conversation test expects, checked against the run: the bot's messages (`key`, `text`,
`contains`, `buttons`, `to` …), the conversation's state (slots, mode, tags, locale, triage level,
flow stack) and the durable records (tickets, records, timers, reviews, ticket events).

`Expectations` is mixed into the transcript runner's `_Run` (bot/testing/transcript.py), which
provides the messages not yet read (`pending`), the bot, and the conversation of whoever speaks now.
"""

from __future__ import annotations

import re

import fnmatch
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bot.store.store import EVENT, TICKET, TIMER
from bot.types import Outbound

if TYPE_CHECKING:
    from bot.app import CareBot


class Failure(AssertionError):
    """A conversation test step that did not go as written."""


class Expectations:
    bot: CareBot
    pending: list[Outbound]
    saved: dict[str, str]  # what `save:` took from a message, said back with {{ name }}

    def _conversation_id(self) -> str:
        raise NotImplementedError

    async def _open_ticket(self) -> str:
        raise NotImplementedError

    async def do_expect(self, exp: Any) -> None:
        if not isinstance(exp, dict):
            raise Failure(f"expect takes a mapping, got {exp!r}")
        message_checks = {k: exp[k] for k in ("key", "contains", "text", "buttons", "sender_name", "not_contains",
                                              "to") if k in exp}
        if exp.get("none"):
            if self.pending:
                raise Failure("expected no message, got: " + " | ".join(
                    f"[{o.key}] {o.text[:60]}" for o in self.pending))
        if message_checks:
            matched = self._expect_message(message_checks)
            for name, pattern in (exp.get("save") or {}).items():  # `save: {code: "\\d{6}"}` → `{{ code }}` later
                found = re.search(str(pattern), matched.text)
                if found is None:
                    raise Failure(f"save: {pattern!r} not found in [{matched.key}] {matched.text[:80]}")
                self.saved[str(name)] = found.group(0)
        state_checks = {k: exp[k] for k in ("slot", "mode", "tags", "locale", "level", "stack") if k in exp}
        if state_checks:
            await self._expect_state(state_checks)
        if "ticket" in exp:
            await self._expect_ticket(exp["ticket"])
        if "record" in exp:
            await self._expect_record(exp["record"])
        if "timer" in exp:
            await self._expect_timer(exp["timer"])
        if "review" in exp:
            await self._expect_review(exp["review"])
        if "ticket_events" in exp:
            await self._expect_ticket_events(exp["ticket_events"])
        unknown = set(exp) - {"none", *message_checks, *state_checks, "ticket", "record", "timer", "review",
                              "ticket_events", "save"}
        if unknown:
            raise Failure(f"unknown expectation {sorted(unknown)}; valid: key, contains, not_contains, text, "
                          "buttons, sender_name, to, none, save, slot, mode, tags, locale, level, stack, ticket, record, "
                          "timer, review, ticket_events")

    def _expect_message(self, checks: dict[str, Any]) -> Outbound:
        for i, ob in enumerate(self.pending):
            if self._matches(ob, checks):
                del self.pending[: i + 1]
                return ob
        got = " | ".join(f"[{o.key}] {o.text[:80]}" for o in self.pending) or "nothing"
        raise Failure(f"expected a message with {checks}; unread messages: {got}")

    @staticmethod
    def _matches(ob: Outbound, checks: dict[str, Any]) -> bool:
        if "key" in checks and ob.key != checks["key"]:
            return False
        if "contains" in checks and str(checks["contains"]) not in ob.text:
            return False
        if "not_contains" in checks and str(checks["not_contains"]) in ob.text:
            return False
        if "text" in checks and ob.text != str(checks["text"]).strip():
            return False
        if "sender_name" in checks and ob.sender_name != str(checks["sender_name"]):
            return False
        if "to" in checks and ob.address.user_id != str(checks["to"]):  # the member a group reply is for
            return False
        if "buttons" in checks:
            want = [str(b) for b in checks["buttons"]]
            have = [b.value for b in ob.buttons]
            labels = [b.label for b in ob.buttons]
            if want != have and want != labels:
                return False
        return True

    async def _state(self) -> dict[str, Any]:
        conv = self._conversation_id()
        data, _ = await self.bot.store.load(conv)
        if data is None:
            raise Failure("no conversation yet")
        return data

    async def _expect_state(self, checks: dict[str, Any]) -> None:
        state = await self._state()
        if "slot" in checks:
            for name, want in checks["slot"].items():
                have = state["slots"].get(name)
                if have != want:
                    raise Failure(f"slot {name}: expected {want!r}, got {have!r}")
        for fld, attr in (("mode", "mode"), ("locale", "locale"), ("level", "triage_level")):
            if fld in checks and state[attr] != checks[fld]:
                raise Failure(f"{fld}: expected {checks[fld]!r}, got {state[attr]!r}")
        if "tags" in checks:
            missing = [t for t in checks["tags"] if t not in state["tags"]]
            if missing:
                raise Failure(f"tags {missing} missing; tags are {state['tags']}")
        if "stack" in checks:
            have = [f["flow"] for f in state["stack"]]
            if have != list(checks["stack"]):
                raise Failure(f"flow stack: expected {checks['stack']}, got {have}")

    async def _expect_ticket(self, want: Any) -> None:
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(TICKET).where(TICKET.c.conversation_id == conv).order_by(TICKET.c.opened_at)).all())
        if want is None or want is False:
            if rows:
                raise Failure(f"expected no ticket, found {len(rows)}")
            return
        if not rows:
            raise Failure("expected a ticket, found none")
        last = rows[-1]._mapping
        for k, v in (want.items() if isinstance(want, dict) else ()):
            if str(last.get(k)) != str(v):
                raise Failure(f"ticket {k}: expected {v!r}, got {last.get(k)!r}")

    async def _expect_record(self, want: Any) -> None:
        want = want if isinstance(want, dict) else {"kind": str(want)}
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(EVENT.c.kind, EVENT.c.data).where(EVENT.c.conversation_id == conv)).all())
        for row in rows:
            data = json.loads(row.data)
            if row.kind == want.get("kind") and all(data.get(k) == v for k, v in want.get("data", {}).items()):
                return
        raise Failure(f"expected a record {want}; records: {[(r.kind, r.data) for r in rows]}")

    async def _expect_review(self, want: Any) -> None:
        from bot.handoff.complaints import REVIEWS

        ticket = await self._open_ticket()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(REVIEWS.c.source, REVIEWS.c.reasons).where(REVIEWS.c.ticket_id == ticket)).all())
        for row in rows:
            reasons = json.loads(row.reasons)
            if row.source == want.get("source", row.source) and all(r in reasons for r in want.get("reasons", [])):
                return
        raise Failure(f"expected a review {want}; reviews: {[(r.source, r.reasons) for r in rows]}")

    async def _expect_ticket_events(self, want: Any) -> None:
        from bot.handoff.tickets import EVENTS

        ticket = await self._open_ticket()
        kinds = await self.bot.store.read(lambda c: c.execute(
            sa.select(EVENTS.c.kind).where(EVENTS.c.ticket_id == ticket).order_by(EVENTS.c.id)).scalars().all())
        it = iter(kinds)
        if not all(any(k == w for k in it) for w in want):  # in this order, others may come between
            raise Failure(f"ticket events: expected {want} in order; got {list(kinds)}")

    async def _expect_timer(self, want: Any) -> None:
        want = want if isinstance(want, dict) else {"name": str(want)}
        conv = self._conversation_id()
        rows = await self.bot.store.read(lambda c: c.execute(
            sa.select(TIMER.c.name, TIMER.c.status).where(TIMER.c.conversation_id == conv)).all())
        status = want.get("status", "pending")
        if not any(fnmatch.fnmatchcase(r.name, want["name"]) and r.status == status for r in rows):  # "sla:first:*"
            raise Failure(f"expected timer {want['name']} {status}; timers: {[(r.name, r.status) for r in rows]}")
