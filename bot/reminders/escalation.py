"""After missed doses in a row: tell the caregiver the patient linked, else the care team.

Only doses the patient did not answer count (`no_response`): a dose the bot could not send
(`downtime`) or one held because the patient said STOP (`opted_out`) is not the patient's miss, and
a Taken or a Skip ends the run. A run is told about once: its doses are marked `escalated` in the
same transaction that writes the notices to the outbox.

Where the notice goes is the ladder the people chose: every caregiver the patient linked with
consent, each on the chat they linked from (`caregiver_link`); when there is none, the care team on
the staff channel (`notify_staff`: the console's live feed).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.flow.compiler import parse_duration
from bot.reminders.service import DOSE_T, LINK, Plan, record
from bot.store.store import Claimed
from bot.types import Address, Outbound

if TYPE_CHECKING:
    from bot.reminders.service import Reminders


def missed_run(conn: Connection, plan_id: str, limit: int) -> list[Any]:
    """The plan's latest doses while they are unanswered misses, newest first."""
    rows = conn.execute(sa.select(DOSE_T.c.id, DOSE_T.c.state, DOSE_T.c.reason, DOSE_T.c.escalated).where(
        DOSE_T.c.plan_id == plan_id, DOSE_T.c.prn.is_(False), DOSE_T.c.state != "due",
        DOSE_T.c.state != "snoozed").order_by(DOSE_T.c.scheduled_at.desc()).limit(limit)).all()
    run = []
    for r in rows:
        if r.state == "missed" and r.reason == "no_response":
            run.append(r)
        elif r.state == "missed":  # not the patient's miss: neither counts nor breaks the run
            continue
        else:
            break
    return run


async def escalate_if_due(reminders: Reminders, plan: Plan, now: datetime) -> bool:
    n = reminders.timing(plan).escalate_after
    if n <= 0:
        return False
    content = reminders.content

    def q(conn: Connection) -> list[Claimed]:
        run = missed_run(conn, plan.id, 4 * n + 10)
        if len(run) < n or any(r.escalated for r in run[:n]):
            return []
        ids = [r.id for r in run[:n]]
        conn.execute(DOSE_T.update().where(DOSE_T.c.id.in_(ids)).values(escalated=True))
        patient = reminders.address_of(conn, plan.conversation_id)
        values = {"medicine": plan.medicine, "missed": len(run[:n]), "patient": patient[0].user_id if patient else ""}
        claimed: list[Claimed] = []
        links = conn.execute(sa.select(LINK.c.caregiver_conversation_id).where(
            LINK.c.patient_conversation_id == plan.conversation_id, LINK.c.status == "active")).scalars().all()
        for caregiver in links:
            found = reminders.address_of(conn, caregiver)
            if found is None:
                continue
            address, locale = found
            key = "reminder.caregiver_alert"
            text = content.render(key, content.normalize_locale(locale or content.base_locale), values)
            claimed.append(reminders.outbound_row(conn, caregiver, Outbound(
                op="say", address=address, text=text, key=key), now))
        channel = "caregiver"
        if not claimed and reminders.staff_channel:
            key = "reminder.team_alert"
            text = content.render(key, content.base_locale, {**values, "conversation": plan.conversation_id})
            staff = Address(reminders.staff_channel, "staff", "", org=plan.org)
            claimed.append(reminders.outbound_row(conn, plan.conversation_id, Outbound(
                op="notify_staff", address=staff, text=text, key=key,
                extra={"conversation": plan.conversation_id, "reason": "missed_doses", "plan": plan.id}), now))
            channel = "care_team"
        record(conn, plan.org, plan.conversation_id, "dose_escalated",
               {"plan": plan.id, "doses": ids, "to": channel if claimed else "nobody", "notices": len(claimed)}, now)
        return claimed

    claimed = await reminders.store.write(q)
    reminders.enqueue(claimed)
    return bool(claimed)


async def invite_caregiver(reminders: Reminders, patient_conversation_id: str, org: str, now: datetime) -> str:
    """The patient said yes to sharing missed doses: a one-time code for the caregiver to send."""
    ttl = timedelta(seconds=parse_duration(reminders.settings.caregiver_code_ttl))
    code = f"{secrets.randbelow(10**6):06d}"
    await reminders.store.write(lambda c: c.execute(LINK.insert().values(
        org=org, patient_conversation_id=patient_conversation_id, caregiver_conversation_id="", code=code,
        code_expires_at=now + ttl, status="invited", consent_at=now, created_at=now)))
    return code


async def accept_caregiver(reminders: Reminders, caregiver_conversation_id: str, code: str,
                           now: datetime) -> str | None:
    """A caregiver sent the code from their own chat: link them. Returns the patient's conversation."""
    code = "".join(ch for ch in code if ch.isdigit())

    def q(conn: Connection) -> str | None:
        row = conn.execute(LINK.update().where(
            LINK.c.code == code, LINK.c.status == "invited", LINK.c.code_expires_at > now,
            LINK.c.patient_conversation_id != caregiver_conversation_id).values(
            status="active", caregiver_conversation_id=caregiver_conversation_id, accepted_at=now).returning(
            LINK.c.patient_conversation_id, LINK.c.org)).first()
        if row is None:
            return None
        record(conn, row.org, row.patient_conversation_id, "caregiver_linked", {"caregiver": caregiver_conversation_id}, now)
        return str(row.patient_conversation_id)

    return await reminders.store.write(q)


async def unlink_caregivers(reminders: Reminders, patient_conversation_id: str, now: datetime) -> int:
    """The patient withdrew consent: no caregiver hears anything more."""
    def q(conn: Connection) -> int:
        n = conn.execute(LINK.update().where(LINK.c.patient_conversation_id == patient_conversation_id,
                                             LINK.c.status.in_(("invited", "active"))).values(status="revoked")).rowcount
        record(conn, "default", patient_conversation_id, "caregiver_unlinked", {"links": n}, now)
        return int(n)

    return int(await reminders.store.write(q))
