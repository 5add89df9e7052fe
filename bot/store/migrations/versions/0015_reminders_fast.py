"""timer: a partial index of pending dose timers by due time, so the fire path's ordered claim
reads only the batch it takes, whatever the backlog and however many plans

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0011'
branch_labels = None
depends_on = None

PENDING_DOSE = "status = 'pending' AND name LIKE 'dose:%'"


def upgrade() -> None:
    op.create_index('ix_timer_dose_due', 'timer', ['due_at', 'id'], unique=False,
                    postgresql_where=sa.text(PENDING_DOSE), sqlite_where=sa.text(PENDING_DOSE))


def downgrade() -> None:
    op.drop_index('ix_timer_dose_due', table_name='timer')
