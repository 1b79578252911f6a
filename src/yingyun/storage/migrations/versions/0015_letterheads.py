"""hospital letterheads: the contact phone and logo on reports and error pages

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hospital_letterheads",
        sa.Column("hospital_id", sa.String(length=64), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("hospital_id", name=op.f("pk_hospital_letterheads")),
    )


def downgrade() -> None:
    op.drop_table("hospital_letterheads")
