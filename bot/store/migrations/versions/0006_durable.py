"""durable: a sequence row per web chat conversation; worker heartbeats; open outbox rows by
conversation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webchat_seq',
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('conversation_id')
    )
    # conversations logged before this revision continue from their highest number
    op.execute("INSERT INTO webchat_seq (conversation_id, org, last_seq) "
               "SELECT conversation_id, MIN(org), MAX(seq) FROM webchat_message GROUP BY conversation_id")


    op.create_table('worker',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('started_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('beat_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_open', ['conversation_id', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_open')
    op.drop_table('worker')
    op.drop_table('webchat_seq')
