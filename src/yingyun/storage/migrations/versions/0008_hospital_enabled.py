"""hospitals.enabled: an operator disables a hospital instead of removing it

Revision ID: 0008
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hospitals", sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("hospitals") as batch:
        batch.drop_column("enabled")
