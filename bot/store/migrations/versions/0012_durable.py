"""staff sign-ins in the database: revoked console sessions and per-client sign-in throttling

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa

from bot.store.models import UTCDateTime


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_session_revoked',
        sa.Column('nonce', sa.String(length=64), primary_key=True),
        sa.Column('org', sa.String(length=64), nullable=False, server_default='default'),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
    )
    op.create_index('ix_staff_session_revoked_expires_at', 'staff_session_revoked', ['expires_at'])
    op.create_table(
        'staff_login_throttle',
        sa.Column('client', sa.String(length=64), primary_key=True),
        sa.Column('staff_id', sa.String(length=64), primary_key=True),
        sa.Column('org', sa.String(length=64), nullable=False, server_default='default'),
        sa.Column('failures', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('locked_until', UTCDateTime(), nullable=True),
        sa.Column('last_failed_at', UTCDateTime(), nullable=False),
    )
    op.create_index('ix_staff_login_throttle_last_failed_at', 'staff_login_throttle', ['last_failed_at'])


def downgrade() -> None:
    op.drop_index('ix_staff_login_throttle_last_failed_at', 'staff_login_throttle')
    op.drop_table('staff_login_throttle')
    op.drop_index('ix_staff_session_revoked_expires_at', 'staff_session_revoked')
    op.drop_table('staff_session_revoked')
