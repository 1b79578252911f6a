"""legal_holds.origin: the gateway a propagated hold came from (NULL: made on this side)

Revision ID: 0019
Revises: 0018
"""
from alembic import op
import sqlalchemy as sa

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("legal_holds") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("legal_holds") as batch:
        batch.drop_column("origin")
