"""Paging on-call staff for an emergency ticket, with a ladder (急诊呼叫).

    emergency ticket ──page──► the on-call person now ──ack_timeout──► the next on-call
        ──ack_timeout──► the backup ──ack_timeout──► everyone on call in the organisation
        ──ack_timeout──► ladder exhausted: the patient is told nobody can be reached, call 120 now

A rung pages each of its people on every configured staff channel: the console (a durable alert,
listed until acknowledged, pushed live over the `console` feed) and every adapter that declares the
`page` op — the pager webhook (channel `pager`, signed), WeCom (a textcard and the patient's
care-team group) — as an outbox row per channel, retried with backoff. A rung with nobody in it is
skipped at once. The ladder's clock is a durable timer (`page:ladder:<ticket>`, payload `handoff:
page_ladder`) like the SLA clocks. Every step is a ticket event (shown on the ticket) and an audit
entry (append-only).

The patient hears only what happened: "the on-call doctor has been alerted" once a page was
delivered (the gateway answered 2xx, or a console displayed the alert), "Dr X has seen your message"
once someone acknowledged, "nobody can be reached — call 120 now" when the ladder ran out. Each is
said once: a conditional UPDATE of `ticket.paging` decides who says it.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.flow.compiler import parse_duration
from bot.handoff import clocks, tickets
from bot.handoff.config import OnCall, OnCallShift
from bot.handoff.staff import MANAGERS, HandoffError, StaffMember, can_view
from bot.handoff.tickets import EVENTS, OPEN
from bot.store.store import EVENT, TICKET, Claimed
from bot.types import Address, Outbound

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService
    from bot.runtime.sender import Sender
    from bot.store.store import DueTimer

log = logging.getLogger("carebot.paging")

RUNGS = ("on_call", "next_on_call", "backup", "everyone")
PAGER = "pager"  # the outbox channel of the pager webhook (adapters/pager)
LIVE = ("paging", "delivered", "unreachable")  # states in which the alert is still open


class Paging:
    def __init__(self, service: HandoffService, sender: Sender, ambulance: str, *,
                 channels: tuple[str, ...] = ()):
        self.service = service
        self.sender = sender
        self.ambulance = ambulance  # from content/care.yml region: the number the patient is told
        self.channels = channels  # the adapters that take `page` outbounds (pager webhook, WeCom)
        sender.on_sent.append(self._on_sent)

    @property
    def webhook(self) -> bool:
        """Some channel besides the console reaches people by id or contacts."""
        return bool(self.channels)

    @property
    def on_call(self) -> OnCall | None:
        return self.service.settings.on_call

    def on_call_now(self) -> list[OnCallShift]:
        """Who is on call for emergencies right now (the console shows it)."""
        return self.on_call.on_duty(self.service.clock.now()) if self.on_call else []

    async def unstaffed(self) -> list[str]:
        """On-call entries (`staff:` ids of on_call.shifts and backup) with no active console account,
        in roster order. Without a pager gateway nobody can page them: an emergency in their hours
        climbs the ladder past them, and if every rung is like that it reaches no one."""
        if self.on_call is None or self.webhook:  # the gateway reaches ids and contacts without an account
            return []
        active = {m.id for m in await self.service.all_staff()}
        wanted = [e.staff for e in (*self.on_call.shifts, *self.on_call.backup) if e.staff]
        return list(dict.fromkeys(w for w in wanted if w not in active))

    async def warn_unstaffed(self) -> list[str]:
        """Say at start-up, in the log an operator reads, whom the on-call roster names but cannot page."""
        missing = await self.unstaffed()
        if missing:
            log.warning("emergency on call: no console account for %s (content/handoff.yml on_call); an emergency "
                        "cannot page them and, when nobody on the ladder is reachable, shows to every signed-in "
                        "staff member as unanswered. Create the accounts: carebot staff add ID --name … --role doctor",
                        ", ".join(missing))
        return missing

    # -- the ladder --------------------------------------------------------------------------------

    async def start(self, ticket_id: str) -> bool:
        """Page for an emergency ticket. Idempotent: only the first call starts the ladder."""
        now = self.service.clock.now()
        started = await self.service.store.write(lambda c: c.execute(TICKET.update().where(
            TICKET.c.id == ticket_id, TICKET.c.paging == "").values(paging="paging")).rowcount == 1)
        if started:
            await self._audit(ticket_id, "page_ladder_started", {"at": now.isoformat()})
            await self._rung(ticket_id, 0, [])
        return bool(started)

    async def sweep(self) -> int:
        """Start the ladder for emergency tickets whose process died before paging."""
        ids = await self.service.store.read(lambda c: c.execute(sa.select(TICKET.c.id).where(
            TICKET.c.reason == "red_flag", TICKET.c.paging == "",
            TICKET.c.status.in_(OPEN))).scalars().all())
        for ticket_id in ids:
            await self.start(ticket_id)
        return len(ids)

    async def _people(self, rung: int, paged: list[str]) -> list[OnCallShift]:
        """Whom a rung pages: only people some configured channel can reach."""
        on_call, now = self.on_call, self.service.clock.now()
        if on_call is None:
            return []
        duty = on_call.on_duty(now)
        if rung == 0:
            people = duty[:1]
        elif rung == 1:
            people = [p for p in duty if p.who not in paged]
        elif rung == 2:
            people = [p for p in on_call.backup_now(now) if p.who not in paged]
        else:  # everyone on call in the organisation: emergency on-call, backup, every shift on duty now
            roster = self.service.settings.roster
            on_shift = [OnCallShift(staff=s) for d in {s.department for s in roster.shifts}
                        for s in roster.on_duty(d, now)]
            people = duty + on_call.backup_now(now) + on_shift
        unique = list({p.who: p for p in people}.values())
        if self.webhook:  # the gateway reaches anyone with an id or contacts
            return unique
        active = {m.id for m in await self.service.all_staff()}  # the console reaches active accounts only
        return [p for p in unique if p.staff in active]

    async def _rung(self, ticket_id: str, rung: int, paged: list[str]) -> None:
        people = await self._people(rung, paged) if rung < len(RUNGS) else []
        while not people and rung < len(RUNGS):
            await self._event(ticket_id, "page_rung_empty", {"rung": RUNGS[rung]})
            rung += 1
            people = await self._people(rung, paged) if rung < len(RUNGS) else []
        if not people:
            await self._exhausted(ticket_id)
            return
        ticket = await self.service.tickets.get(ticket_id)
        now = self.service.clock.now()
        assert self.on_call is not None
        due = now + timedelta(seconds=parse_duration(self.on_call.ack_timeout))
        everyone = sorted(set(paged) | {p.who for p in people})

        def q(conn: Connection) -> list[Claimed]:
            row = conn.execute(sa.select(TICKET.c.paging, TICKET.c.acknowledged_by).where(TICKET.c.id == ticket_id)).first()
            if row is None or row.acknowledged_by or row.paging not in LIVE:
                return []
            claimed = []
            for person in people:
                channels = (["console"] if person.staff else []) + [
                    "webhook" if c == PAGER else c for c in self.channels]
                detail = {"rung": RUNGS[rung], "who": person.who, "channels": channels}
                tickets.event(conn, ticket_id, now, "system", "paged", detail)
                tickets.audit(conn, now, "page", ticket_id, detail)
                for channel in self.channels:
                    claimed.append(self.service.store.outbox_row(conn, f"page:{ticket_id}", Outbound(
                        op="page", address=Address(channel, person.who), extra={"ticket_id": ticket_id, "who": person.who,
                        "page": {"type": "emergency_page", "ticket": ticket_id, "rung": RUNGS[rung],
                                 "department": ticket.department, "priority": ticket.priority,
                                 "to": {"staff": person.staff, "name": person.name, "contacts": person.contacts},
                                 "paged_at": now.isoformat()}}), now))
            clocks.set_clock(conn, ticket.conversation_id, clocks.ladder_name(ticket_id), due,
                             {"handoff": "page_ladder", "ticket": ticket_id, "rung": rung + 1, "paged": everyone}, now)
            return claimed

        claimed = await self.service.store.write(q)
        self.sender.enqueue(claimed)
        for person in people:
            if person.staff:
                await self.service.coord.publish("console", json.dumps({
                    "type": "page", "ticket": ticket_id, "department": ticket.department,
                    "priority": ticket.priority, "staff": person.staff, "rung": RUNGS[rung]}))

    async def on_timer(self, timer: DueTimer) -> None:
        """A `page:ladder:` clock came due: nobody acknowledged within ack_timeout, so the next rung
        (or the end of the ladder)."""
        payload = timer.payload
        ticket = await self.service.tickets.get(str(payload.get("ticket", "")))
        now = self.service.clock.now()
        live = ticket.paging in LIVE and not ticket.acknowledged_by and ticket.status in OPEN
        rung = int(payload.get("rung", len(RUNGS)))

        def q(conn: Connection) -> None:
            clocks.fired(conn, timer.id, now)
            if live:
                detail = {"rung": RUNGS[rung - 1] if 0 < rung <= len(RUNGS) else "", "after": self.on_call.ack_timeout
                          if self.on_call else ""}
                tickets.event(conn, ticket.id, now, "system", "page_unanswered", detail)
                tickets.audit(conn, now, "page_unanswered", ticket.id, detail)

        await self.service.store.write(q)
        if live:
            await self._rung(ticket.id, rung, list(payload.get("paged", [])))

    async def _exhausted(self, ticket_id: str) -> None:
        ticket = await self.service.tickets.get(ticket_id)
        now = self.service.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(TICKET.update().where(
                TICKET.c.id == ticket_id, TICKET.c.acknowledged_by == "",
                TICKET.c.paging.in_(("paging", "delivered"))).values(paging="unreachable")).rowcount == 1
            if done:
                tickets.event(conn, ticket_id, now, "system", "page_ladder_exhausted", {})
                tickets.audit(conn, now, "page_ladder_exhausted", ticket_id, {})
            return done

        if await self.service.store.write(q):
            await self.service.publish("page_unanswered", ticket_id, ticket.department, ticket.priority)
            await self.service.tell_patient(ticket.conversation_id, {
                "event": "unreachable", "ticket_id": ticket_id, "numbers": self.ambulance})

    # -- delivery and acknowledgement ----------------------------------------------------------------

    def _on_sent(self, row: Claimed) -> None:
        """The sender recorded a delivery: a 2xx from the pager gateway, or WeCom's acceptance of the
        textcard, is a delivered page."""
        ob = row.outbound
        if ob.address.channel in self.channels and ob.op == "page":
            channel = "webhook" if ob.address.channel == PAGER else ob.address.channel
            self.service.spawn(self.delivered(str(ob.extra.get("ticket_id", "")), str(ob.extra.get("who", "")),
                                               channel))

    async def seen(self, ticket_id: str, staff: StaffMember) -> None:
        """A console displayed the alert to a paged staff member (the browser says so). Someone shown an
        emergency the ladder reached nobody with becomes one of its paged people: the alert stays theirs
        to open and acknowledge once it counts as delivered (before, it vanished from their console)."""
        ticket = await self.service.tickets.get(ticket_id)
        paged, broadcast = await self.page_facts(ticket_id)
        if not self.may_acknowledge(staff, ticket, paged, broadcast):
            raise HandoffError("not_paged")
        if staff.id in await self.delivered_to(ticket_id):
            return  # shown again (another page load): already counted, nothing new to tell anyone
        await self.delivered(ticket_id, staff.id, "console", join=staff.id not in paged)

    async def delivered(self, ticket_id: str, who: str, channel: str, join: bool = False) -> None:
        ticket = await self.service.tickets.get(ticket_id)
        now = self.service.clock.now()

        def q(conn: Connection) -> bool:
            if join:  # shown to them although not paged (the ladder reached nobody): now they are
                detail = {"rung": "shown", "who": who, "channels": [channel]}
                tickets.event(conn, ticket_id, now, "system", "paged", detail)
                tickets.audit(conn, now, "page", ticket_id, detail)
            tickets.event(conn, ticket_id, now, "system", "page_delivered", {"who": who, "channel": channel})
            tickets.audit(conn, now, "page_delivered", ticket_id, {"who": who, "channel": channel})
            return conn.execute(TICKET.update().where(
                TICKET.c.id == ticket_id, TICKET.c.acknowledged_by == "",
                TICKET.c.paging.in_(("paging", "unreachable"))).values(paging="delivered")).rowcount == 1

        if await self.service.store.write(q) and ticket.status in OPEN:
            # after "no one can be reached", the news is an update, not a second, contradicting first word
            await self.service.tell_patient(ticket.conversation_id, {
                "event": "paged", "ticket_id": ticket_id, "numbers": self.ambulance,
                "update": getattr(ticket, "paging", "") == "unreachable"})

    def may_acknowledge(self, staff: StaffMember, ticket: Any, paged: list[str], broadcast: bool = False) -> bool:
        """Paged to them, on call now, a ticket they may see anyway, or an emergency the ladder reached
        nobody with (then whoever is signed in may take it: better than no one). `broadcast`: the ladder
        ran out at some point — the alert stays everyone's until acknowledged, even once one console
        has shown it (before, the first console to show it took it from every other one)."""
        return staff.id in paged or staff.id in {p.staff for p in self.on_call_now()} or broadcast or \
            getattr(ticket, "paging", "") == "unreachable" or can_view(staff, ticket)

    async def paged_staff(self, ticket_id: str) -> list[str]:
        return (await self.page_facts(ticket_id))[0]

    async def page_facts(self, ticket_id: str) -> tuple[list[str], bool]:
        """Who was paged, and whether the ladder ran out (reached nobody) at some point."""
        rows = await self.service.store.read(lambda c: c.execute(sa.select(EVENTS.c.kind, EVENTS.c.detail).where(
            EVENTS.c.ticket_id == ticket_id, EVENTS.c.kind.in_(("paged", "page_ladder_exhausted")))).all())
        paged = sorted({json.loads(r.detail).get("who", "") for r in rows if r.kind == "paged"})
        return paged, any(r.kind == "page_ladder_exhausted" for r in rows)

    async def delivered_to(self, ticket_id: str) -> set[str]:
        rows = await self.service.store.read(lambda c: c.execute(sa.select(EVENTS.c.detail).where(
            EVENTS.c.ticket_id == ticket_id, EVENTS.c.kind == "page_delivered")).scalars().all())
        return {json.loads(d).get("who", "") for d in rows}

    async def acknowledge(self, ticket_id: str, staff: StaffMember) -> bool:
        """A paged person (or anyone who may see the ticket) acknowledges: the ladder stops, the
        ticket becomes theirs, the patient is told who has seen the message. First one wins."""
        ticket = await self.service.tickets.get(ticket_id)
        if not self.may_acknowledge(staff, ticket, *await self.page_facts(ticket_id)):
            raise HandoffError("not_paged")
        now = self.service.clock.now()

        def q(conn: Connection) -> bool:
            done = conn.execute(TICKET.update().where(
                TICKET.c.id == ticket_id, TICKET.c.acknowledged_by == "", TICKET.c.paging != "",
                TICKET.c.status.in_(OPEN)).values(
                acknowledged_by=staff.id, acknowledged_at=now, paging="acknowledged", assignee=staff.id,
                status="assigned", assigned_at=now)).rowcount == 1
            if done:
                detail = {"previous_assignee": ticket.assignee, "seconds": int((now - ticket.opened_at).total_seconds())}
                tickets.event(conn, ticket_id, now, staff.id, "acknowledged", detail)
                tickets.audit(conn, now, "page_acknowledged", ticket_id, detail, actor=f"staff:{staff.id}")
                clocks.cancel(conn, ticket.conversation_id, clocks.ladder_name(ticket_id))
            return done

        won = bool(await self.service.store.write(q))
        if won:
            await self.service.publish("page_acknowledged", ticket_id, ticket.department, ticket.priority, staff.id)
            await self.service.tell_patient(ticket.conversation_id, {
                "event": "acknowledged", "ticket_id": ticket_id, "staff_name": staff.signature})
        return won

    async def open_alerts(self, staff: StaffMember) -> list[dict[str, Any]]:
        """Emergency alerts not yet acknowledged that this staff member should see (paged to them,
        or their department's, or all for managers; one that reached nobody on the ladder, everyone):
        the console lists them until acknowledged."""
        rows = await self.service.store.read(lambda c: c.execute(sa.select(TICKET).where(
            TICKET.c.paging.in_(LIVE), TICKET.c.acknowledged_by == "",
            TICKET.c.status.in_(OPEN)).order_by(TICKET.c.opened_at)).all())
        alerts = []
        for row in rows:
            paged, broadcast = await self.page_facts(row.id)
            if staff.role in MANAGERS or self.may_acknowledge(staff, row, paged, broadcast):
                alerts.append({"ticket": row.id, "department": row.department, "opened_at": row.opened_at,
                               "paging": row.paging, "paged": paged, "words": _alert_words(row.summary)})
        return alerts

    # -- an emergency inside an open ticket ----------------------------------------------------------

    async def reroute(self, ticket_id: str) -> bool:
        """An emergency typed into an open, normal ticket: move it to on-call with the urgent clocks
        (not the old department's normal ones), record why, and page. Once per ticket."""
        ticket = await self.service.tickets.get(ticket_id)
        if ticket.paging or ticket.status not in OPEN:
            return False
        now = self.service.clock.now()
        sla = self.service.settings.sla_for("urgent")
        first_due = now + timedelta(seconds=sla.seconds("first_response"))
        resolution_due = now + timedelta(seconds=sla.seconds("resolution"))

        def q(conn: Connection) -> bool:
            triage = conn.execute(sa.select(EVENT.c.data).where(
                EVENT.c.conversation_id == ticket.conversation_id, EVENT.c.kind == "triage").order_by(
                EVENT.c.id.desc())).scalar()
            done = conn.execute(TICKET.update().where(TICKET.c.id == ticket_id, TICKET.c.paging == "").values(
                department="emergency", priority="urgent", assignee="", status="escalated", paging="paging",
                first_response_due=first_due, resolution_due=resolution_due,
                first_response_at=None, next_response_due=None)).rowcount == 1
            if not done:
                return False
            found = json.loads(triage) if triage else {}
            why = {"why": "emergency during an open ticket", "from_department": ticket.department,
                   "from_priority": ticket.priority, "from_assignee": ticket.assignee,
                   "level": found.get("level", ""), "rules": found.get("rules", [])}
            # the ticket's clinical summary says what the emergency is now (it held the earlier, ordinary
            # consultation's "no red flag"); the words before it stay in the transcript
            summary = json.loads(ticket.summary) if isinstance(ticket.summary, str) and ticket.summary else {}
            summary.update({"triage_level": found.get("level", ""), "rules": found.get("rules", []),
                            "signs": found.get("signs", [])})
            conn.execute(TICKET.update().where(TICKET.c.id == ticket_id).values(
                summary=json.dumps(summary, ensure_ascii=False, default=str)))
            tickets.event(conn, ticket_id, now, "system", "rerouted", why)
            tickets.audit(conn, now, "ticket_rerouted", ticket_id, why)
            clocks.cancel_sla(conn, ticket.conversation_id, ticket_id)
            clocks.start_response_clocks(conn, ticket.conversation_id, ticket_id, sla, first_due, resolution_due, now)
            return True

        if not await self.service.store.write(q):
            return False
        await self.service.publish("ticket_escalated", ticket_id, "emergency", "urgent")
        await self._rung(ticket_id, 0, [])
        return True

    # -- helpers -------------------------------------------------------------------------------------

    async def _event(self, ticket_id: str, kind: str, detail: dict[str, Any]) -> None:
        now = self.service.clock.now()

        def q(conn: Connection) -> None:
            tickets.event(conn, ticket_id, now, "system", kind, detail)
            tickets.audit(conn, now, kind, ticket_id, detail)

        await self.service.store.write(q)

    async def _audit(self, ticket_id: str, action: str, detail: dict[str, Any]) -> None:
        await self.service.store.audit(self.service.clock.now(), "system", action, ticket_id, detail)


def _alert_words(summary: Any, limit: int = 80) -> str:
    """What the alert says the emergency is (see `emergency_words`)."""
    try:
        data = json.loads(summary) if isinstance(summary, str) and summary else {}
    except ValueError:
        return ""
    return emergency_words(data if isinstance(data, dict) else {}, limit)


def emergency_words(summary: dict[str, Any], limit: int = 80) -> str:
    """What an emergency is, for a line that has `limit` characters (the alert, the inbox row): the
    patient's own sentence when it fits — it reads better than the matched fragments — else the signs
    the rules matched first (a long message's red flag is often at its end: "…睡不好 今天胸口压着疼"),
    then the sentence, cut. Signs contained in another sign are left out."""
    signs = [str(s) for s in summary.get("signs") or [] if s]
    signs = [s for s in dict.fromkeys(signs) if not any(s != o and s in o for o in signs)]
    words = " / ".join(str(w) for w in summary.get("patient_words") or [] if w)
    if signs and len(words) > limit:
        words = f"{' · '.join(signs)} — {words}"
    words = words or " · ".join(signs)
    return words if len(words) <= limit else words[:limit - 1] + "…"
