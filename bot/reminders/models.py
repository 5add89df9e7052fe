"""The reminders' tables: plans (what was prescribed, as written), doses (what happened to each
one, and why) and caregiver links (given with the patient's consent). Migration 0008."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import _ts

PLAN_STATES = ("active", "stopped", "ended")
DOSE_STATES = ("due", "snoozed", "taken", "skipped", "missed")
OPEN_DOSE = ("due", "snoozed")


class MedPlan(SQLModel, table=True):
    """One medicine on one schedule for one patient (a conversation). Many per patient."""

    __tablename__ = "med_plan"
    __table_args__ = (sa.Index("ix_med_plan_conversation", "conversation_id", "status"),)
    id: str = Field(primary_key=True, max_length=40)
    org: str = Field(default="default", max_length=64)
    conversation_id: str = Field(max_length=300)
    kind: str = Field(max_length=32)  # a kind from content/reminders.yml
    medicine: str = Field(default="", max_length=80)  # as the patient or doctor wrote it (erased on forget me)
    dose: str = Field(default="", max_length=60)  # the prescribed amount as written; the bot never sets it
    schedule: str = Field(sa_type=sa.Text)  # JSON of bot.reminders.schedule.Schedule
    timezone: str = Field(max_length=64)  # the patient's zone: wall-clock times are read in it
    status: str = Field(default="active", max_length=16)
    created_by: str = Field(default="patient", max_length=80)  # patient | staff:<id>
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    pills_left: int | None = Field(default=None)  # optional pill count for the refill warning
    pills_per_dose: int = Field(default=1)
    refill_warned: bool = Field(default=False)
    next_due_at: datetime | None = _ts(default=None)


class MedDose(SQLModel, table=True):
    """One scheduled (or, PRN, logged) dose. Written when it comes due; one row per plan and time,
    so a second worker or a restart can never make a second."""

    __tablename__ = "med_dose"
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "scheduled_at", name="uq_med_dose_plan_time"),
        sa.Index("ix_med_dose_conversation", "conversation_id", "scheduled_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    plan_id: str = Field(max_length=40)
    conversation_id: str = Field(max_length=300)
    scheduled_at: datetime = _ts()  # what the schedule said; adherence is counted against it
    state: str = Field(default="due", max_length=16)  # due | snoozed | taken | skipped | missed
    fired_at: datetime | None = _ts(default=None)  # when the reminder went out (None: never sent)
    late: bool = Field(default=False)  # sent after its time (downtime) or taken after the on-time window
    answered_at: datetime | None = _ts(default=None)
    reason: str = Field(default="", max_length=64)  # why missed or skipped: a code, never free text
    nags: int = Field(default=0)
    step: int | None = Field(default=None)  # the taper step
    prn: bool = Field(default=False)
    escalated: bool = Field(default=False)


class CaregiverLink(SQLModel, table=True):
    """A caregiver (家属) the patient linked, with consent, to hear about missed doses."""

    __tablename__ = "caregiver_link"
    __table_args__ = (sa.Index("ix_caregiver_patient", "patient_conversation_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    org: str = Field(default="default", max_length=64)
    patient_conversation_id: str = Field(max_length=300)
    caregiver_conversation_id: str = Field(default="", max_length=300)
    code: str = Field(max_length=16, index=True)
    code_expires_at: datetime = _ts()
    status: str = Field(default="invited", max_length=16)  # invited | active | revoked
    consent_at: datetime = _ts()  # when the patient said yes to sharing missed doses
    created_at: datetime = _ts()
    accepted_at: datetime | None = _ts(default=None)
