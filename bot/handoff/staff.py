"""Staff accounts and what each role may do: the one place the role lists are written.

A `StaffMember` is the signed-in person the console acts for; `StaffAccounts` owns the `staff`
table (accounts with argon2 password hashes, added with an audit entry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from bot.handoff.models import ROLES, Staff
from bot.store.store import AUDIT

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.store.store import Store

STAFF = Staff.__table__
MANAGERS = ("admin", "operator")  # review quality, see every ticket and every alert
SEES_ALL = (*MANAGERS, "customer_service")  # see every department's tickets; handle complaints
PANEL = ("admin",)  # records the expert panel's verdict


class HandoffError(Exception):
    """A staff action that is not allowed or not possible; the message is for the staff member."""


@dataclass(frozen=True)
class StaffMember:
    id: str
    display_name: str
    title: str
    role: str
    departments: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.display_name} {self.title}".strip()

    @classmethod
    def from_row(cls, row: Any) -> StaffMember:
        return cls(row.id, row.display_name, row.title, row.role, tuple(json.loads(row.departments)))


def can_view(staff: StaffMember, ticket: Any) -> bool:
    """Doctors and assistants see their departments' tickets and their own; the others all."""
    if staff.role in SEES_ALL:
        return True
    return ticket.assignee == staff.id or ticket.department in staff.departments


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


class StaffAccounts:
    def __init__(self, store: Store, clock: Clock):
        self.store = store
        self.clock = clock

    async def add(self, staff_id: str, display_name: str, role: str, password: str, *, title: str = "",
                  departments: list[str] | None = None) -> None:
        if role not in ROLES:
            raise HandoffError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise HandoffError("a password needs at least 8 characters")
        hashed = hash_password(password)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(sa.select(STAFF.c.id).where(STAFF.c.id == staff_id)).first():
                raise HandoffError(f"staff {staff_id!r} exists already")
            conn.execute(STAFF.insert().values(
                id=staff_id, org="default", display_name=display_name, title=title, role=role,
                departments=json.dumps(departments or []), password_hash=hashed, active=True, created_at=now))
            conn.execute(AUDIT.insert().values(org="default", at=now, actor="system", action="staff_added",
                                               subject=staff_id, detail=json.dumps({"role": role})))

        await self.store.write(q)

    async def set_active(self, staff_id: str, active: bool, actor: str = "system") -> None:
        """Deactivate (or reactivate) an account: a deactivated member cannot sign in, and an open
        console session of theirs is refused on its next request. Tickets stay where they are."""
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(STAFF.update().where(STAFF.c.id == staff_id).values(active=active)).rowcount != 1:
                raise HandoffError(f"no staff account {staff_id!r}")
            conn.execute(AUDIT.insert().values(org="default", at=now, actor=actor,
                                               action="staff_activated" if active else "staff_deactivated",
                                               subject=staff_id, detail="{}"))

        await self.store.write(q)

    async def set_password(self, staff_id: str, password: str, actor: str = "system") -> None:
        if len(password) < 8:
            raise HandoffError("a password needs at least 8 characters")
        hashed = hash_password(password)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(STAFF.update().where(STAFF.c.id == staff_id).values(password_hash=hashed)).rowcount != 1:
                raise HandoffError(f"no staff account {staff_id!r}")
            conn.execute(AUDIT.insert().values(org="default", at=now, actor=actor, action="staff_password_reset",
                                               subject=staff_id, detail="{}"))

        await self.store.write(q)

    async def everyone(self) -> list[tuple[StaffMember, bool]]:
        """Every account with whether it is active, by id."""
        rows = await self.store.read(lambda c: c.execute(sa.select(STAFF).order_by(STAFF.c.id)).all())
        return [(StaffMember.from_row(r), bool(r.active)) for r in rows]

    async def authenticate(self, staff_id: str, password: str) -> StaffMember | None:
        row = await self.store.read(lambda c: c.execute(
            sa.select(STAFF).where(STAFF.c.id == staff_id, STAFF.c.active.is_(True))).first())
        if row is None or not verify_password(row.password_hash, password):
            return None
        return StaffMember.from_row(row)

    async def get(self, staff_id: str) -> StaffMember | None:
        row = await self.store.read(lambda c: c.execute(sa.select(STAFF).where(STAFF.c.id == staff_id)).first())
        return StaffMember.from_row(row) if row else None

    async def active(self) -> list[StaffMember]:
        rows = await self.store.read(lambda c: c.execute(sa.select(STAFF).where(STAFF.c.active.is_(True))).all())
        return [StaffMember.from_row(r) for r in rows]

    async def active_among(self, candidates: list[str]) -> set[str]:
        return set(await self.store.read(lambda c: c.execute(sa.select(STAFF.c.id).where(
            STAFF.c.id.in_(candidates), STAFF.c.active.is_(True))).scalars().all()))
