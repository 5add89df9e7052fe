"""paging: an emergency ticket's page ladder state and who acknowledged it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import bot.store.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paging', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('acknowledged_at', bot.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('acknowledged_at')
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('paging')
