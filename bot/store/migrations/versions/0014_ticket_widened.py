"""ticket.widened_to: a second department whose staff also see and may take the ticket

Set when a grab offer nobody took is re-offered to the department's backup, and at dispatch when
the ticket's department is not named in content/handoff.yml (no staff account can belong to it:
the intake suggests ENT, cardiology, … on the shipped content), so that some doctor sees it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('widened_to', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('ticket') as batch:
        batch.drop_column('widened_to')
