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


# What a staff member reads when an action is refused: (中文, English), `{name}` placeholders.
REFUSALS: dict[str, tuple[str, str]] = {
    "other_department": ("该工单属于其他科室。", "this ticket belongs to another department"),
    "ticket_status": ("工单当前状态为 {status}，不能这样操作。", "the ticket is {status}"),
    "no_ticket": ("工单 {ticket} 不存在。", "ticket {ticket} does not exist"),
    "conversation_gone": ("会话 {conversation} 已不存在。", "conversation {conversation} is gone"),
    "complaints_role": ("投诉由客服、运营和管理员处理。", "complaints are handled by customer service, operators and admins"),
    "review_role": ("只有运营和管理员可以复核。", "only operators and admins review"),
    "verdict_one_of": ("结论须为以下之一：{verdicts}。", "verdict is one of {verdicts}"),
    "panel_admin": ("专家组结论由管理员录入。", "the expert panel's verdict is recorded by an admin"),
    "transfer_where": ("请选择转给哪个科室或哪位同事。", "transfer to a department or to a colleague"),
    "no_staff": ("没有工号为「{staff}」的员工。", "no staff member {staff!r}"),
    "no_account": ("没有工号为「{staff}」的账号。", "no staff account {staff!r}"),
    "staff_exists": ("工号「{staff}」已存在。", "staff {staff!r} exists already"),
    "role_one_of": ("角色「{role}」无效，可选：{roles}。", "role {role!r} is not one of {roles}"),
    "short_password": ("密码至少需要 8 个字符。", "a password needs at least 8 characters"),
    "not_paged": ("这条急诊呼叫没有发给您。", "this emergency was not paged to you"),
    "taken_by_other": ("该工单已由其他医生接诊，请申请转诊。", "another doctor has this ticket; ask for a transfer"),
    "no_canned": ("没有快捷回复「{canned}」；可用：{known}。", "no canned reply {canned!r}; known: {known}"),
    "empty_reply": ("回复内容为空。", "an empty reply"),
    "empty_note": ("备注为空。", "the note is empty"),
}


class HandoffError(Exception):
    """A staff action that is not allowed or not possible, said in the staff member's language.

    `str(exc)` is the English text (the CLI, logs); `exc.text(locale)` what the console or a staff
    topic shows."""

    def __init__(self, key: str, **values: Any) -> None:
        self.key, self.values = key, values
        super().__init__(self.text("en"))

    def text(self, locale: str) -> str:
        zh, en = REFUSALS[self.key]
        return (en if locale == "en" else zh).format(**self.values)


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
    """Doctors and assistants see their departments' tickets (the ticket's own, or the one it was widened
    to: a backup after an offer nobody took) and their own; the others all."""
    if staff.role in SEES_ALL:
        return True
    widened = getattr(ticket, "widened_to", "")
    return (ticket.assignee == staff.id or ticket.department in staff.departments
            or bool(widened) and widened in staff.departments)


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
            raise HandoffError("role_one_of", role=role, roles=", ".join(ROLES))
        if len(password) < 8:
            raise HandoffError("short_password")
        hashed = hash_password(password)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(sa.select(STAFF.c.id).where(STAFF.c.id == staff_id)).first():
                raise HandoffError("staff_exists", staff=staff_id)
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
                raise HandoffError("no_account", staff=staff_id)
            conn.execute(AUDIT.insert().values(org="default", at=now, actor=actor,
                                               action="staff_activated" if active else "staff_deactivated",
                                               subject=staff_id, detail="{}"))

        await self.store.write(q)

    async def set_password(self, staff_id: str, password: str, actor: str = "system") -> None:
        if len(password) < 8:
            raise HandoffError("short_password")
        hashed = hash_password(password)
        now = self.clock.now()

        def q(conn: Connection) -> None:
            if conn.execute(STAFF.update().where(STAFF.c.id == staff_id).values(password_hash=hashed)).rowcount != 1:
                raise HandoffError("no_account", staff=staff_id)
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
