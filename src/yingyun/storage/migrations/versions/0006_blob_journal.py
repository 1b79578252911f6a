"""blob journal: bytes of small blobs until their files are durable

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_journal",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("blob_key", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_blob_journal")),
    )


def downgrade() -> None:
    op.drop_table("blob_journal")
