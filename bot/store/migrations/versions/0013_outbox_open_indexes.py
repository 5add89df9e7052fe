"""PostgreSQL: the outbox's and the timer's search indexes hold only live rows; conversation fillfactor

PostgreSQL only: SQLite's planner uses a partial index only for a query that repeats its WHERE
word for word, so its indexes stay as they were. A delivery mark (`status = 'sent'`) changes an
indexed column, so PostgreSQL writes a new entry into every index of the row; with the due and
open indexes partial (`status IN ('pending', 'sending')`) the delivered row enters neither, and
both stay the size of what is in flight. Likewise the timer's due index holds only timers still
to fire (`pending`, `claimed`): firing, cancelling or replacing a timer adds no entry to it.

The conversation table leaves 30 % of each page free (fillfactor 70): every turn rewrites its
conversation's row, and with room on the page the new version is a heap-only tuple (no index
entry); with full pages about three updates in ten moved and entered every index again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'sending')")
LIVE = sa.text("status IN ('pending', 'claimed')")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index('ix_outbox_due', 'outbox')
    op.drop_index('ix_outbox_open', 'outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'], postgresql_where=OPEN)
    op.create_index('ix_outbox_open', 'outbox', ['conversation_id', 'status'], postgresql_where=OPEN)
    op.drop_index('ix_timer_due', 'timer')
    op.create_index('ix_timer_due', 'timer', ['status', 'due_at'], postgresql_where=LIVE)
    op.execute("ALTER TABLE conversation SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE conversation RESET (fillfactor)")
    op.drop_index('ix_timer_due', 'timer')
    op.create_index('ix_timer_due', 'timer', ['status', 'due_at'])
    op.drop_index('ix_outbox_open', 'outbox')
    op.drop_index('ix_outbox_due', 'outbox')
    op.create_index('ix_outbox_due', 'outbox', ['status', 'next_attempt_at'])
    op.create_index('ix_outbox_open', 'outbox', ['conversation_id', 'status'])
