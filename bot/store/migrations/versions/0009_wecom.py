"""wecom: callbacks, kf cursor and sessions, contacts, tags, care-team and customer groups

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wecom_callback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('received_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key', name='uq_wecom_callback_key')
    )
    with op.batch_alter_table('wecom_callback', schema=None) as batch_op:
        batch_op.create_index('ix_wecom_callback_pending', ['processed_at'], unique=False)

    op.create_table('wecom_care_group',
    sa.Column('conversation_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('chatid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('members', sa.Text(), nullable=False),
    sa.Column('created_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('conversation_id')
    )
    op.create_table('wecom_contact',
    sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('added_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('welcomed_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('external_userid', 'userid')
    )
    op.create_table('wecom_customer_group',
    sa.Column('chat_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('members', sa.Integer(), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('chat_id')
    )
    op.create_table('wecom_kf_cursor',
    sa.Column('open_kfid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('cursor', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('open_kfid')
    )
    op.create_table('wecom_kf_session',
    sa.Column('external_userid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('open_kfid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('last_customer_at', bot.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_in_window', sa.Integer(), nullable=False),
    sa.Column('closing_told', sa.Boolean(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('servicer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('updated_at', bot.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('external_userid')
    )
    op.create_table('wecom_tag',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('org', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('tag_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('wecom_tag')
    op.drop_table('wecom_kf_session')
    op.drop_table('wecom_kf_cursor')
    op.drop_table('wecom_customer_group')
    op.drop_table('wecom_contact')
    op.drop_table('wecom_care_group')
    with op.batch_alter_table('wecom_callback', schema=None) as batch_op:
        batch_op.drop_index('ix_wecom_callback_pending')

    op.drop_table('wecom_callback')
