"""The built-in `care.*` actions: figures the care flows show the patient, read from live records.

They are registered for every carebot (see `register_care_actions`); an operator's own action of
the same name replaces one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bot.actions.base import ActionContext, ActionResult
from bot.actions.registry import ActionRegistry
from bot.care.config import CareSettings
from bot.flow.content import Content
from bot.handoff.tickets import OPEN
from bot.triage import TriageRules, assess
from bot.understand.slots import RELATIONS, duration, relation


# The slots the built-in actions set (`carebot validate` counts them as known names in conditions and
# templates): keep it in step with the results below.
ACTION_SLOTS = frozenset({
    "department", "department_name", "department_confidence", "department_confident",  # care.suggest_department
    "price_text", "price_phone", "price_video", "currency", "limit_kind", "limit_value",  # care.pricing
    "quota_free_total", "quota_used", "quota_left",  # care.quota
    "complaint_id",  # care.complaint
    "reply_minutes", "reply_basis", "reply_sample", "reply_opens",  # care.reply_time
    "duration", "duration_typed", "patient_is", "patient_is_typed", "patient_relation", "patient_ref",  # care.read_complaint
})


def register_care_actions(registry: ActionRegistry, care: CareSettings, triage: dict[str, TriageRules],
                          base_locale: str, content: Content | None = None) -> None:
    def rules_for(locale: str) -> TriageRules | None:
        return triage.get(locale) or triage.get(base_locale) or next(iter(triage.values()), None)

    async def suggest_department(ctx: ActionContext) -> ActionResult:
        """A department for the complaint, from the department lexicon, with a confidence."""
        rules = rules_for(ctx.locale)
        complaint = str(ctx.slots.get("complaint") or ctx.latest_text or "")
        if rules is None or not complaint:
            return ActionResult(slots={"department": "", "department_name": "", "department_confidence": 0.0,
                                       "department_confident": False})
        result = assess(complaint, rules)
        confident = bool(result.department) and not result.ask_department
        return ActionResult(slots={
            "department": result.department,
            "department_name": rules.department_name(result.department, ctx.locale) if result.department else "",
            "department_confidence": round(result.department_confidence, 2),
            "department_confident": confident,
        })

    async def read_complaint(ctx: ActionContext) -> ActionResult:
        """What the complaint already says, so intake does not ask it again: how long it has lasted
        (`duration`) and who the patient is when it is someone else (`patient_is`, `patient_relation`,
        and `patient_ref` — "your mother" / 您母亲 — for the messages that address them). Each slot read
        is marked `<slot>_typed`; a slot already answered is kept."""
        complaint = str(ctx.args.get("text") or ctx.slots.get("complaint") or "")
        slots: dict[str, Any] = {}
        said = duration(complaint)
        if said and not ctx.slots.get("duration"):
            slots.update(duration=said, duration_typed=True)
        relation_said = relation(complaint)
        if relation_said and not ctx.slots.get("patient_is"):
            slots.update(patient_is=RELATIONS[relation_said], patient_is_typed=True)
        if relation_said:
            slots.update(patient_relation=relation_said, patient_ref=patient_ref(content, relation_said, ctx.locale))
        return ActionResult(slots=slots)

    async def department_name(ctx: ActionContext) -> ActionResult:
        rules = rules_for(ctx.locale)
        dept = str(ctx.args.get("department") or ctx.slots.get("department") or "")
        name = rules.department_name(dept, ctx.locale) if rules and dept else dept
        return ActionResult(slots={"department_name": name})

    async def pricing(ctx: ActionContext) -> ActionResult:
        p = care.pricing
        return ActionResult(slots={
            "price_text": _num(p.tiers.get("text", 0)), "price_phone": _num(p.tiers.get("phone", 0)),
            "price_video": _num(p.tiers.get("video", 0)), "currency": p.currency,
            "limit_kind": p.limit.kind, "limit_value": p.limit.value,
        })

    async def quota(ctx: ActionContext) -> ActionResult:
        """Free consultations left this calendar month (in the deployment's time zone)."""
        month_start = ctx.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        used = 0
        if ctx.store is not None:
            from bot.store.store import TICKET

            used = await ctx.store.read(lambda c: c.execute(
                sa.select(sa.func.count()).select_from(TICKET).where(
                    TICKET.c.conversation_id == ctx.conversation_id, TICKET.c.opened_at >= month_start,
                    TICKET.c.reason != "red_flag")).scalar() or 0)
        total = care.quota.free_per_month
        return ActionResult(slots={"quota_free_total": total, "quota_used": used,
                                   "quota_left": max(0, total - used)})

    async def always_fails(ctx: ActionContext) -> ActionResult:
        """For `/selftest_error`: proves the error repair flow works in this deployment."""
        return ActionResult(ok=False, error="self-test failure")

    for name, fn in (("care.suggest_department", suggest_department), ("care.department_name", department_name),
                     ("care.read_complaint", read_complaint),
                     ("care.pricing", pricing), ("care.quota", quota),
                     ("care.always_fails", always_fails)):
        if name not in registry.names():
            registry.register(name, fn)


def patient_ref(content: Content | None, relation_key: str, locale: str) -> str:
    """How a message names the patient the sender wrote about: "your mother", 您母亲 (`who.<relation>`)."""
    key = f"who.{relation_key}"
    if content is None or not content.has(key):
        return ""
    return content.render(key, content.normalize_locale(locale), {})


def _num(value: float) -> Any:
    return int(value) if float(value).is_integer() else value


def register_handoff_actions(registry: ActionRegistry, handoff: Any) -> None:
    from bot.store.store import TICKET

    """`care.complaint`: file the patient's complaint (slots `complaint_category`, `complaint_text`)
    for the customer-service queue and the quality review."""

    async def complaint(ctx: ActionContext) -> ActionResult:
        category = str(ctx.args.get("category") or ctx.slots.get("complaint_category") or "other")
        text = str(ctx.args.get("text") or ctx.slots.get("complaint_text") or "")
        complaint_id = await handoff.file_complaint(ctx.conversation_id, category, text)
        return ActionResult(slots={"complaint_id": complaint_id})

    async def reply_time(ctx: ActionContext) -> ActionResult:
        """When a doctor will reply (bot/handoff/promise.py): reply_minutes, reply_basis
        (live | promise | after_hours), reply_opens (after hours: when staff are back)."""
        department = str(ctx.args.get("department") or ctx.slots.get("department") or "")
        priority = str(ctx.args.get("priority") or "normal")
        promise = await handoff.promises.promise(department, priority, ctx.now)
        return ActionResult(slots=promise.slots(ctx.now))

    async def forget(ctx: ActionContext) -> ActionResult:
        """Erase what the patient told us and sent, in bot's records and in every adapter (see
        bot/care/erasure.py); keep ids, times and the audit trail. An open hand-off ends too — after
        this turn, since the conversation is busy with it now — and without a survey."""
        if ctx.store is None:
            return ActionResult(ok=False, error="no store")
        await handoff.runtime.erase(ctx.conversation_id, ctx.now)
        open_tickets = await ctx.store.read(lambda c: c.execute(sa.select(TICKET.c.id).where(
            TICKET.c.conversation_id == ctx.conversation_id,
            TICKET.c.status.in_(OPEN))).scalars().all())
        for ticket_id in open_tickets:
            handoff.spawn(handoff.abandon(ticket_id, "patient_erased_data"))
        return ActionResult()

    async def leave_queue(ctx: ActionContext) -> ActionResult:
        """`care.leave_queue`: the patient withdraws their request for a doctor. Sets `leave_status`:
        `nothing` (no open ticket), `emergency` (a red-flag ticket: the team keeps it; never withdrawn
        from the chat) or `open`; with `confirmed: true` the open ticket ends as withdrawn (abandoned,
        reason `patient_withdrew`, no survey) — after this turn, as `care.forget` does."""
        if ctx.store is None:
            return ActionResult(ok=False, error="no store")
        rows = await ctx.store.read(lambda c: c.execute(sa.select(TICKET.c.id, TICKET.c.reason).where(
            TICKET.c.conversation_id == ctx.conversation_id, TICKET.c.status.in_(OPEN))).all())
        if not rows:
            return ActionResult(slots={"leave_status": "nothing"})
        if any(r.reason == "red_flag" for r in rows):
            return ActionResult(slots={"leave_status": "emergency"})
        if ctx.args.get("confirmed") is True:
            for row in rows:
                handoff.spawn(handoff.abandon(row.id, "patient_withdrew"))
        return ActionResult(slots={"leave_status": "open"})

    for name, fn in (("care.complaint", complaint), ("care.forget", forget), ("care.reply_time", reply_time),
                     ("care.leave_queue", leave_queue)):
        if name not in registry.names():
            registry.register(name, fn)
