"""reminders: medication plans, doses and caregiver links

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    s = sqlmodel.sql.sqltypes.AutoString
    ts = bot.store.models.UTCDateTime
    op.create_table('med_plan',
    sa.Column('id', s(length=40), nullable=False),
    sa.Column('org', s(length=64), nullable=False),
    sa.Column('conversation_id', s(length=300), nullable=False),
    sa.Column('kind', s(length=32), nullable=False),
    sa.Column('medicine', s(length=80), nullable=False),
    sa.Column('dose', s(length=60), nullable=False),
    sa.Column('schedule', sa.Text(), nullable=False),
    sa.Column('timezone', s(length=64), nullable=False),
    sa.Column('status', s(length=16), nullable=False),
    sa.Column('created_by', s(length=80), nullable=False),
    sa.Column('created_at', ts(timezone=True), nullable=False),
    sa.Column('updated_at', ts(timezone=True), nullable=False),
    sa.Column('pills_left', sa.Integer(), nullable=True),
    sa.Column('pills_per_dose', sa.Integer(), nullable=False),
    sa.Column('refill_warned', sa.Boolean(), nullable=False),
    sa.Column('next_due_at', ts(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_med_plan_conversation', 'med_plan', ['conversation_id', 'status'])
    op.create_table('med_dose',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', s(length=64), nullable=False),
    sa.Column('plan_id', s(length=40), nullable=False),
    sa.Column('conversation_id', s(length=300), nullable=False),
    sa.Column('scheduled_at', ts(timezone=True), nullable=False),
    sa.Column('state', s(length=16), nullable=False),
    sa.Column('fired_at', ts(timezone=True), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('answered_at', ts(timezone=True), nullable=True),
    sa.Column('reason', s(length=64), nullable=False),
    sa.Column('nags', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('prn', sa.Boolean(), nullable=False),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'scheduled_at', name='uq_med_dose_plan_time')
    )
    op.create_index('ix_med_dose_conversation', 'med_dose', ['conversation_id', 'scheduled_at'])
    op.create_table('caregiver_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', s(length=64), nullable=False),
    sa.Column('patient_conversation_id', s(length=300), nullable=False),
    sa.Column('caregiver_conversation_id', s(length=300), nullable=False),
    sa.Column('code', s(length=16), nullable=False),
    sa.Column('code_expires_at', ts(timezone=True), nullable=False),
    sa.Column('status', s(length=16), nullable=False),
    sa.Column('consent_at', ts(timezone=True), nullable=False),
    sa.Column('created_at', ts(timezone=True), nullable=False),
    sa.Column('accepted_at', ts(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_caregiver_patient', 'caregiver_link', ['patient_conversation_id', 'status'])
    op.create_index(op.f('ix_caregiver_link_code'), 'caregiver_link', ['code'])


def downgrade() -> None:
    op.drop_table('caregiver_link')
    op.drop_table('med_dose')
    op.drop_table('med_plan')
