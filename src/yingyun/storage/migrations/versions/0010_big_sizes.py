"""byte sizes as 64-bit integers: instances, superseded copies and studies over 2 GiB

Migration 0001 made instances.size, superseded_instances.size and
dicom_studies.size_bytes INTEGER while the schema declared BigInteger. On
PostgreSQL INTEGER is 32 bits, so indexing an instance of 2 GiB or more (STOW
takes up to 4 GiB), or a study whose instances add up to that, failed with
"integer out of range". SQLite stores INTEGER and BIGINT alike (up to 8
bytes), so nothing changes there and no table is rebuilt.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (("instances", "size"), ("superseded_instances", "size"), ("dicom_studies", "size_bytes"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger(), existing_nullable=False)
