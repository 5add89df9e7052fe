"""inbox: what the patient wrote (body, media reference), so staff read the whole episode

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.add_column(sa.Column('body', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('media', sa.String(length=500), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.drop_column('media')
        batch.drop_column('body')
