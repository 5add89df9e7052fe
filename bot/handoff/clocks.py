"""Staff-side clocks: the hand-off's rows in `timer`, and the one set of rules for them.

    sla:first:<ticket>        remind staff before the first response is due    → first_reminder
    sla:first_breach:<ticket> the first response is late                      → first_breach
    sla:next:<ticket>         remind before the next response is due           → next_reminder
    sla:next_breach:<ticket>  the next response is late                        → next_breach
    sla:resolution:<ticket>   the ticket should be resolved by now             → resolution_breach
    sla:offer:<ticket>        nobody took the grab ticket: offer it again      → reoffer
    sla:waiting:<ticket>      tell the waiting patient their place             → patient_update
    page:ladder:<ticket>      nobody acknowledged the page: the next rung      (bot/handoff/paging.py)

The timer loop routes them by kind (`sla`, `page`; `bot/timer_names.py`). They are never
proactive-held (quiet hours and weekly caps are for messages a patient did not ask for). Setting a
clock replaces a pending one of the same name; cancelling touches only pending ones (a claimed
clock is already firing, and its handler marks it fired).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from bot.store.store import TIMER
from bot.timer_names import PAGE, SLA

if TYPE_CHECKING:
    from bot.handoff.config import Sla

# clock → what its handler does (the payload's `handoff`)
CLOCKS = {"first": "first_reminder", "first_breach": "first_breach", "next": "next_reminder",
          "next_breach": "next_breach", "resolution": "resolution_breach", "offer": "reoffer",
          "waiting": "patient_update"}
ANSWERED = ("first", "first_breach", "next", "next_breach", "waiting", "offer")  # a staff reply stops these
TAKEN = ("offer", "waiting")  # someone took the ticket: no re-offer, no queue news


def sla_name(clock: str, ticket_id: str) -> str:
    return f"{SLA}:{clock}:{ticket_id}"


def ladder_name(ticket_id: str) -> str:
    return f"{PAGE}:ladder:{ticket_id}"


def set_clock(conn: Connection, conversation_id: str, name: str, due: datetime, payload: dict[str, Any],
              now: datetime) -> None:
    cancel(conn, conversation_id, name)
    conn.execute(TIMER.insert().values(
        org="default", conversation_id=conversation_id, name=name, due_at=due, claimed_by="",
        payload=json.dumps({**payload, "name": name, "proactive": False}), status="pending", created_at=now))


def set_sla(conn: Connection, conversation_id: str, clock: str, ticket_id: str, due: datetime, now: datetime) -> None:
    set_clock(conn, conversation_id, sla_name(clock, ticket_id), due, {"handoff": CLOCKS[clock], "ticket": ticket_id},
              now)


def cancel(conn: Connection, conversation_id: str, name: str) -> None:
    conn.execute(TIMER.update().where(TIMER.c.conversation_id == conversation_id, TIMER.c.name == name,
                                      TIMER.c.status == "pending").values(status="cancelled"))


def cancel_sla(conn: Connection, conversation_id: str, ticket_id: str, clocks: tuple[str, ...] | None = None) -> None:
    """Cancel the ticket's SLA clocks: these, or all of them."""
    if clocks is None:
        conn.execute(TIMER.update().where(TIMER.c.conversation_id == conversation_id,
                                          TIMER.c.name.like(sla_name("%", ticket_id)),
                                          TIMER.c.status == "pending").values(status="cancelled"))
        return
    for clock in clocks:
        cancel(conn, conversation_id, sla_name(clock, ticket_id))


def start_response_clocks(conn: Connection, conversation_id: str, ticket_id: str, sla: Sla, first_due: datetime,
                          resolution_due: datetime, now: datetime) -> None:
    """The clocks every dispatched ticket runs: a reminder before the first response is due, its
    breach, and the resolution breach."""
    set_sla(conn, conversation_id, "first", ticket_id, first_due - timedelta(seconds=sla.seconds("remind_before")), now)
    set_sla(conn, conversation_id, "first_breach", ticket_id, first_due, now)
    set_sla(conn, conversation_id, "resolution", ticket_id, resolution_due, now)


def fired(conn: Connection, timer_id: int, now: datetime) -> None:
    conn.execute(TIMER.update().where(TIMER.c.id == timer_id).values(status="fired", fired_at=now))
