"""telegram: chats and their aliases, live keyboards, the polling offset, staff forum topics, staff links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('telegram_chat',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('address_chat_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('started', sa.Boolean(), nullable=False),
    sa.Column('blocked', sa.Boolean(), nullable=False),
    sa.Column('display_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False, server_default=''),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_telegram_chat_address', 'telegram_chat', ['address_chat_id'], unique=False)
    op.create_table('telegram_conversation',
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('keyboard_message_id', sa.BigInteger(), nullable=False),
    sa.Column('keyboard', sa.Text(), nullable=False),
    sa.Column('last_message_id', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('conversation_id')
    )
    op.create_index('ix_telegram_conversation_keyboard', 'telegram_conversation', ['chat_id', 'keyboard_message_id'],
                    unique=False)
    op.create_table('telegram_offset',
    sa.Column('bot_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('next_offset', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('bot_id')
    )
    op.create_table('telegram_topic',
    sa.Column('ticket_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('staff_chat_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('thread_id', sa.BigInteger(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('last_event_id', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('last_message_id', sa.BigInteger(), nullable=False, server_default='0'),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ticket_id'),
    sa.UniqueConstraint('staff_chat_id', 'thread_id', name='uq_telegram_topic_thread')
    )
    op.create_index('ix_telegram_topic_conversation', 'telegram_topic', ['conversation_id'], unique=False)
    op.create_table('telegram_staff',
    sa.Column('telegram_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('staff_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('linked_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('telegram_user_id')
    )
    op.create_index('ix_telegram_staff_staff', 'telegram_staff', ['staff_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_telegram_staff_staff', table_name='telegram_staff')
    op.drop_table('telegram_staff')
    op.drop_index('ix_telegram_topic_conversation', table_name='telegram_topic')
    op.drop_table('telegram_topic')
    op.drop_table('telegram_offset')
    op.drop_index('ix_telegram_conversation_keyboard', table_name='telegram_conversation')
    op.drop_table('telegram_conversation')
    op.drop_index('ix_telegram_chat_address', table_name='telegram_chat')
    op.drop_table('telegram_chat')
