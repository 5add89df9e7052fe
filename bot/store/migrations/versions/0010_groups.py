"""groups: the moderation log, the organisation's banlist, reports, flags and appeals

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = bot.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table('moderation_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', S(length=64), nullable=False),
    sa.Column('at', T(timezone=True), nullable=False),
    sa.Column('policy', S(length=64), nullable=False),
    sa.Column('channel', S(length=32), nullable=False),
    sa.Column('chat_id', S(length=128), nullable=False),
    sa.Column('member', S(length=128), nullable=False),
    sa.Column('conversation_id', S(length=300), nullable=False),
    sa.Column('message_id', S(length=200), nullable=False),
    sa.Column('trigger', S(length=120), nullable=False),
    sa.Column('action', S(length=16), nullable=False),
    sa.Column('done', S(length=64), nullable=False),
    sa.Column('fallback', S(length=200), nullable=False),
    sa.Column('actor', S(length=64), nullable=False),
    sa.Column('excerpt', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_moderation_log_chat', 'moderation_log', ['org', 'channel', 'chat_id', 'id'], unique=False)
    op.create_table('group_ban',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', S(length=64), nullable=False),
    sa.Column('channel', S(length=32), nullable=False),
    sa.Column('user_id', S(length=128), nullable=False),
    sa.Column('reason', S(length=200), nullable=False),
    sa.Column('policy', S(length=64), nullable=False),
    sa.Column('chat_id', S(length=128), nullable=False),
    sa.Column('by', S(length=64), nullable=False),
    sa.Column('at', T(timezone=True), nullable=False),
    sa.Column('lifted_at', T(timezone=True), nullable=True),
    sa.Column('lifted_by', S(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_group_ban_member', 'group_ban', ['org', 'channel', 'user_id'], unique=False)
    op.create_table('group_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', S(length=64), nullable=False),
    sa.Column('kind', S(length=16), nullable=False),
    sa.Column('status', S(length=16), nullable=False),
    sa.Column('policy', S(length=64), nullable=False),
    sa.Column('channel', S(length=32), nullable=False),
    sa.Column('chat_id', S(length=128), nullable=False),
    sa.Column('reporter', S(length=128), nullable=False),
    sa.Column('member', S(length=128), nullable=False),
    sa.Column('conversation_id', S(length=300), nullable=False),
    sa.Column('message_id', S(length=200), nullable=False),
    sa.Column('trigger', S(length=120), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('assignee', S(length=64), nullable=False),
    sa.Column('created_at', T(timezone=True), nullable=False),
    sa.Column('resolved_at', T(timezone=True), nullable=True),
    sa.Column('resolved_by', S(length=64), nullable=False),
    sa.Column('decision', S(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_group_case_status', 'group_case', ['org', 'status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_group_case_status', table_name='group_case')
    op.drop_table('group_case')
    op.drop_index('ix_group_ban_member', table_name='group_ban')
    op.drop_table('group_ban')
    op.drop_index('ix_moderation_log_chat', table_name='moderation_log')
    op.drop_table('moderation_log')
