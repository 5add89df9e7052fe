"""web chat: message log and uploaded media

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webchat_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'seq', name='uq_webchat_message_seq'),
    sa.UniqueConstraint('idempotency_key', name='uq_webchat_message_key')
    )
    op.create_table('webchat_media',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('path', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('mime', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webchat_media', schema=None) as batch_op:
        batch_op.create_index('ix_webchat_media_conversation', ['conversation_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webchat_media', schema=None) as batch_op:
        batch_op.drop_index('ix_webchat_media_conversation')
    op.drop_table('webchat_media')
    op.drop_table('webchat_message')
